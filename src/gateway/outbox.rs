//! Writing frames without holding memory while idle: a write buffer that exists only while
//! frames wait to be written, and vectored writes that join a frame's parts in one system call.
//!
//! A `BufWriter` keeps its buffer for the life of the connection; with two per connection
//! (client and upstream) the pages it touched made up a good part of an idle connection's
//! memory. Here the buffer grows to what a burst of responses needs and is released once they
//! are written.

use std::io::IoSlice;

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Parts at least this large are written straight from where they are, not copied.
const COPY_BELOW: usize = 16 * 1024;
/// The buffer is written out before it grows past this.
const MAX_BUFFERED: usize = 64 * 1024;

/// Writes all of `parts`, in order, with as few (vectored) writes as the writer allows.
///
/// # Errors
/// The writer's I/O error; `WriteZero` if it accepts nothing.
pub async fn write_all_parts<W: AsyncWrite + Unpin>(
    io: &mut W,
    parts: &[&[u8]],
) -> std::io::Result<()> {
    let mut parts: Vec<&[u8]> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    let mut first = 0;
    while first < parts.len() {
        let slices: Vec<IoSlice<'_>> = parts[first..].iter().map(|p| IoSlice::new(p)).collect();
        let mut n = io.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while first < parts.len() && n >= parts[first].len() {
            n -= parts[first].len();
            first += 1;
        }
        if n > 0
            && let Some(p) = parts.get_mut(first)
        {
            *p = &p[n..];
        }
    }
    Ok(())
}

/// A writer that gathers small frames until [`Outbox::flush`], holding no buffer between bursts.
#[derive(Debug)]
pub struct Outbox<W> {
    io: W,
    buf: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> Outbox<W> {
    /// Wraps `io`.
    pub fn new(io: W) -> Outbox<W> {
        Outbox {
            io,
            buf: Vec::new(),
        }
    }

    /// Queues a frame made of `parts`: small parts are copied into the buffer, a large one is
    /// written at once together with what the buffer holds (one vectored write).
    ///
    /// # Errors
    /// The writer's I/O error.
    pub async fn put(&mut self, parts: &[&[u8]]) -> std::io::Result<()> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if parts.iter().all(|p| p.len() < COPY_BELOW) && self.buf.len() + total <= MAX_BUFFERED {
            for p in parts {
                self.buf.extend_from_slice(p);
            }
            return Ok(());
        }
        let mut all: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
        all.push(&self.buf);
        all.extend_from_slice(parts);
        write_all_parts(&mut self.io, &all).await?;
        self.buf.clear();
        Ok(())
    }

    /// Writes out what is buffered and flushes the writer; the buffer's memory is released.
    ///
    /// # Errors
    /// The writer's I/O error.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.io.write_all(&self.buf).await?;
        }
        self.buf = Vec::new();
        self.io.flush().await
    }

    /// Flushes, then shuts the writer down.
    ///
    /// # Errors
    /// The writer's I/O error.
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        self.flush().await?;
        self.io.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    /// A writer that takes at most `step` bytes per call, across slices, and records calls.
    struct Trickle {
        out: Vec<u8>,
        step: usize,
        calls: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.step);
            self.out.extend_from_slice(&buf[..n]);
            self.calls += 1;
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            let mut left = self.step;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(left);
                self.out.extend_from_slice(&b[..take]);
                n += take;
                left -= take;
                if left == 0 {
                    break;
                }
            }
            self.calls += 1;
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn partial_vectored_writes_write_every_byte_in_order() {
        let parts: [&[u8]; 4] = [b"abc", b"", b"defgh", b"i"];
        for step in 1..=10 {
            let mut w = Trickle {
                out: Vec::new(),
                step,
                calls: 0,
            };
            write_all_parts(&mut w, &parts).await.unwrap();
            assert_eq!(w.out, b"abcdefghi", "step {step}");
        }
    }

    #[tokio::test]
    async fn small_frames_wait_for_flush_and_large_ones_go_out_with_them() {
        let mut o = Outbox::new(Trickle {
            out: Vec::new(),
            step: usize::MAX,
            calls: 0,
        });
        o.put(&[b"len0", b"id00", b"small"]).await.unwrap();
        o.put(&[b"more"]).await.unwrap();
        assert_eq!(o.io.calls, 0, "buffered");
        let large = vec![7u8; COPY_BELOW];
        o.put(&[b"len1", &large]).await.unwrap();
        assert_eq!(
            o.io.calls, 1,
            "one vectored write for the buffer and the large frame"
        );
        o.put(&[b"tail"]).await.unwrap();
        o.flush().await.unwrap();
        assert_eq!(o.io.calls, 2);
        assert_eq!(o.buf.capacity(), 0, "no buffer held after a flush");
        let mut want = b"len0id00smallmorelen1".to_vec();
        want.extend_from_slice(&large);
        want.extend_from_slice(b"tail");
        assert_eq!(o.io.out, want);
    }
}
