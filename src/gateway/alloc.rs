//! The binary's global allocator: the system allocator, except that a request of 4 GiB or more
//! reserves address space lazily (`mmap` with `MAP_NORESERVE`) instead of failing.
//!
//! Why: `kafka-protocol`'s decoders allocate an array for its claimed length (up to 2^32
//! elements) before reading any element. A hostile 20-byte request claiming 2^31 topics asks
//! for about 200 GB; the system allocator refuses, and Rust aborts the process on a failed
//! allocation, so one authenticated client could stop the gateway for everyone. With a lazy
//! reservation the decoder instead runs out of bytes after a few elements, the untouched
//! reservation is returned, and the request fails to decode like any other malformed one.
//! Real allocations that large do not happen in the gateway (frames are capped well below).

use std::alloc::{GlobalAlloc, Layout, System};

/// Requests at least this large are lazily reserved.
const HUGE: usize = 4 << 30;
/// The alignment `mmap` guarantees.
const PAGE: usize = 4096;

/// See the module documentation.
pub struct LazyHuge;

fn lazy(layout: &Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= PAGE
}

// SAFETY: every block is allocated and freed by the same path, chosen by `lazy(layout)`, which
// depends only on the layout that `GlobalAlloc` callers must pass back unchanged to `dealloc`.
unsafe impl GlobalAlloc for LazyHuge {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if lazy(&layout) {
            // SAFETY: an anonymous private mapping of a non-zero size; no memory is touched.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    layout.size(),
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                std::ptr::null_mut()
            } else {
                p.cast()
            }
        } else {
            // SAFETY: forwarded unchanged.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if lazy(&layout) {
            // SAFETY: as `alloc`; anonymous mappings are zero-filled.
            unsafe { self.alloc(layout) }
        } else {
            // SAFETY: forwarded unchanged.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if lazy(&layout) {
            // SAFETY: `ptr` came from `mmap` with exactly this size (same layout, same path).
            unsafe {
                libc::munmap(ptr.cast(), layout.size());
            }
        } else {
            // SAFETY: forwarded unchanged.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with this alignment is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !lazy(&layout) && !lazy(&new_layout) {
            // SAFETY: forwarded unchanged.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: a fresh block of the new layout, the overlapping prefix copied, the old
        // block freed by its own path.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_claimed_array_of_two_billion_topics_is_a_decode_error() {
        use bytes::{BufMut, BytesMut};
        use kafka_protocol::messages::ProduceRequest;
        use kafka_protocol::protocol::Decodable;
        let mut b = BytesMut::new();
        b.put_i16(-1); // no transactional id
        b.put_i16(1); // acks
        b.put_i32(1000); // timeout
        b.put_i32(i32::MAX); // topic_data: 2^31 - 1 topics, and no bytes for them
        let mut body = b.freeze();
        assert!(ProduceRequest::decode(&mut body, 7).is_err());
    }

    #[test]
    fn ordinary_and_large_blocks_round_trip() {
        let small: Vec<u64> = (0..1000).collect();
        assert_eq!(small.iter().sum::<u64>(), 499_500);
        let mut v: Vec<u8> = Vec::with_capacity(1 << 20);
        v.extend(std::iter::repeat_n(7u8, 1 << 20));
        v.shrink_to_fit();
        assert!(v.iter().all(|&b| b == 7));
    }
}
