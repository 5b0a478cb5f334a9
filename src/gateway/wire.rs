//! Kafka framing: size-capped frame reads, request headers, and response encoding.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a frame could not be read or understood. Every one of these closes the connection.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The peer closed the connection (cleanly, between frames).
    #[error("connection closed")]
    Closed,
    /// An I/O error, including a connection closed mid-frame.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The frame's length prefix is negative or over the cap.
    #[error("frame of {len} bytes is over the {cap}-byte cap")]
    Oversized {
        /// The announced length.
        len: i64,
        /// The cap in force.
        cap: usize,
    },
    /// The request header is not a Kafka request header.
    #[error("malformed request header: {0}")]
    Header(String),
    /// The body does not decode as the announced API and version.
    #[error("malformed {api:?} v{version} body: {reason}")]
    Body {
        /// The API.
        api: ApiKey,
        /// Its version.
        version: i16,
        /// What the decoder said.
        reason: String,
    },
    /// A response from the upstream broker does not fit the request it answers.
    #[error("upstream: {0}")]
    Upstream(String),
}

/// Bytes read ahead for a frame whose length is not known yet.
const READ_AHEAD: usize = 8 * 1024;

/// A cancel-safe frame reader. Every byte read stays in `self` until its frame is whole, so a
/// `select!` that drops a pending [`Frames::next`] (a timer, a response, a shutdown) loses
/// nothing: the next call carries on where the last one stopped. A frame is returned whole or
/// not at all; there is no way to skip bytes.
#[derive(Debug, Default)]
pub struct Frames {
    buf: BytesMut,
    /// Keep the buffer between frames (until [`Frames::release`]) instead of releasing it as
    /// soon as it is empty.
    keep: bool,
    /// Whether `buf` may hold an allocation.
    holds: bool,
    /// Whether the last frame was large enough to keep its allocation for the next one.
    large: bool,
}

/// A kept reader keeps the allocation of frames at least this large (fetch responses); smaller
/// ones are released as soon as they are read, as by any reader.
const KEEP_FROM: usize = 64 * 1024;

impl Frames {
    /// A reader that keeps its buffer between large frames (at least 64 KiB), so that the next
    /// frame reuses it (a large response then costs no new pages) until [`Frames::release`].
    pub fn keeping() -> Frames {
        Frames {
            keep: true,
            ..Frames::default()
        }
    }

    /// Whether the reader holds memory between frames (a [`Frames::keeping`] reader that has
    /// read since its last release).
    pub fn holds_memory(&self) -> bool {
        self.keeping_now() && self.holds && self.buf.is_empty()
    }

    /// Whether the buffer is kept between frames now.
    fn keeping_now(&self) -> bool {
        self.keep && self.large
    }

    /// Releases the buffer, unless part of a frame is in it.
    pub fn release(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
            self.holds = false;
            self.large = false;
        }
    }

    /// Whether part of a frame has been read.
    pub fn is_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next frame from `io`, length prefix included, refusing lengths over `cap` before
    /// allocating. Cancel-safe.
    ///
    /// # Errors
    /// [`WireError::Closed`] when `io` ends between frames, an I/O error when it ends inside one,
    /// [`WireError::Oversized`] for a length over `cap`.
    pub async fn next<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        cap: usize,
    ) -> Result<Bytes, WireError> {
        loop {
            if let Some(frame) = self.take(cap)? {
                return Ok(frame);
            }
            self.holds = true;
            let read = if self.buf.is_empty() && !self.keeping_now() {
                // Between frames, wait without holding a buffer: the first bytes land on the
                // stack of this poll and are copied at once (nothing is awaited in between, so
                // this stays cancel-safe). An idle connection holds no read buffer at all.
                let buf = &mut self.buf;
                std::future::poll_fn(|cx| {
                    let mut first = [0u8; READ_AHEAD];
                    let mut rb = tokio::io::ReadBuf::new(&mut first);
                    std::task::ready!(std::pin::Pin::new(&mut *io).poll_read(cx, &mut rb))?;
                    buf.extend_from_slice(rb.filled());
                    std::task::Poll::Ready(Ok::<usize, std::io::Error>(rb.filled().len()))
                })
                .await?
            } else {
                // `read_buf` is cancel-safe: bytes it read are in `self.buf`.
                io.read_buf(&mut self.buf).await?
            };
            if read == 0 {
                return Err(if self.buf.is_empty() {
                    WireError::Closed
                } else {
                    std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()
                });
            }
        }
    }

    /// Splits off the first frame when it is whole; otherwise makes room for the rest of it.
    fn take(&mut self, cap: usize) -> Result<Option<Bytes>, WireError> {
        let Some(prefix) = self.buf.first_chunk::<4>() else {
            if self.buf.is_empty() && !self.keeping_now() {
                // Release what is left of the last frame's allocation (see `next`).
                self.release();
            } else {
                // Kept: the allocation of frames already handed out and dropped is reused.
                self.buf.reserve(READ_AHEAD);
            }
            return Ok(None);
        };
        let len = i32::from_be_bytes(*prefix);
        let Some(size) = usize::try_from(len).ok().filter(|&n| n <= cap) else {
            return Err(WireError::Oversized {
                len: i64::from(len),
                cap,
            });
        };
        let total = size + 4;
        if self.buf.len() >= total {
            self.large = total >= KEEP_FROM;
            return Ok(Some(self.buf.split_to(total).freeze()));
        }
        self.buf.reserve(total - self.buf.len());
        Ok(None)
    }
}

/// A decoded request: its header, the API it names, and the undecoded body.
#[derive(Debug)]
pub struct Request {
    /// The frame as received, length prefix included, to forward untouched.
    pub wire: Bytes,
    /// The frame's payload (header and body).
    pub frame: Bytes,
    /// The request header.
    pub header: RequestHeader,
    /// The API.
    pub api: ApiKey,
    /// The body, after the header.
    pub body: Bytes,
}

impl Request {
    /// Parses a frame as [`Frames::next`] returns it (length prefix included), without copying.
    /// Never panics on short or hostile input.
    pub fn from_wire(wire: Bytes) -> Result<Request, WireError> {
        let frame = wire.slice(4.min(wire.len())..);
        if frame.len() < 8 {
            return Err(WireError::Header(format!(
                "{} bytes is shorter than a header",
                frame.len()
            )));
        }
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let api = ApiKey::try_from(key)
            .map_err(|()| WireError::Header(format!("unknown API key {key}")))?;
        if version < 0 {
            return Err(WireError::Header(format!("negative version {version}")));
        }
        let mut body = frame.clone();
        let header = RequestHeader::decode(&mut body, api.request_header_version(version))
            .map_err(|e| WireError::Header(e.to_string()))?;
        Ok(Request {
            wire,
            frame,
            header,
            api,
            body,
        })
    }

    /// Parses a frame payload (no length prefix), copying it once to add the prefix.
    #[cfg(test)]
    pub fn parse(payload: Bytes) -> Result<Request, WireError> {
        let mut wire = BytesMut::with_capacity(payload.len() + 4);
        wire.put_u32(u32::try_from(payload.len()).unwrap_or(u32::MAX));
        wire.put_slice(&payload);
        Request::from_wire(wire.freeze())
    }

    /// The API version.
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }

    /// The correlation id.
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }

    /// Decodes the body as `T`.
    pub fn decode<T: Decodable>(&self) -> Result<T, WireError> {
        let mut body = self.body.clone();
        T::decode(&mut body, self.version()).map_err(|e| WireError::Body {
            api: self.api,
            version: self.version(),
            reason: e.to_string(),
        })
    }

    /// Re-encodes this request with a new body (the header is kept as received).
    pub fn with_body<T: Encodable>(&self, body: &T) -> Result<Bytes, WireError> {
        let header_len = self.frame.len() - self.body.len();
        let mut out = BytesMut::with_capacity(self.frame.len() + 4);
        out.put_i32(0);
        out.put_slice(&self.frame[..header_len]);
        body.encode(&mut out, self.version())
            .map_err(|e| WireError::Header(e.to_string()))?;
        finish_frame(out)
    }
}

/// Writes the frame length into the first four bytes.
fn finish_frame(mut out: BytesMut) -> Result<Bytes, WireError> {
    let len = i32::try_from(out.len() - 4)
        .map_err(|_| WireError::Header("frame over 2 GiB".to_owned()))?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out.freeze())
}

/// Encodes a response frame (length, response header, body) for `api` at `version`.
pub fn response_frame<T: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<Bytes, WireError> {
    let mut out = BytesMut::with_capacity(64);
    out.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header
        .encode(&mut out, api.response_header_version(version))
        .map_err(|e| WireError::Header(e.to_string()))?;
    body.encode(&mut out, version)
        .map_err(|e| WireError::Body {
            api,
            version,
            reason: e.to_string(),
        })?;
    finish_frame(out)
}

/// Splits a response payload into its correlation id and body, for `api` at `version`.
pub fn split_response(
    api: ApiKey,
    version: i16,
    payload: Bytes,
) -> Result<(i32, Bytes), WireError> {
    let mut body = payload;
    let header = ResponseHeader::decode(&mut body, api.response_header_version(version))
        .map_err(|e| WireError::Upstream(format!("response header: {e}")))?;
    Ok((header.correlation_id, body))
}

/// Checks [`Frames`] against a one-pass parse: the tests' and the fuzz target's oracle.
#[cfg(any(test, fuzzing))]
pub mod oracle {
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use super::{Bytes, Frames, Request, WireError};
    use tokio::io::{AsyncRead, ReadBuf};

    /// How a stream of frames ends.
    #[derive(Debug, PartialEq, Eq)]
    pub enum End {
        /// At a frame boundary.
        Closed,
        /// Inside a frame.
        Cut,
        /// At a length over the cap (or negative).
        Oversized,
    }

    /// The frames of `data` read in one pass, and how it ends.
    pub fn one_pass(data: &[u8], cap: usize) -> (Vec<&[u8]>, End) {
        let mut frames = Vec::new();
        let mut rest = data;
        loop {
            let Some(prefix) = rest.first_chunk::<4>() else {
                return (
                    frames,
                    if rest.is_empty() {
                        End::Closed
                    } else {
                        End::Cut
                    },
                );
            };
            let len = i32::from_be_bytes(*prefix);
            let Some(size) = usize::try_from(len).ok().filter(|&n| n <= cap) else {
                return (frames, End::Oversized);
            };
            let Some((frame, tail)) = rest.split_at_checked(size + 4) else {
                return (frames, End::Cut);
            };
            frames.push(frame);
            rest = tail;
        }
    }

    /// A reader that hands out `data` in the chunk sizes of `chunks` (cycled, 0 read as 1),
    /// answering `Pending` before every other chunk.
    struct Chunked<'a> {
        data: &'a [u8],
        chunks: &'a [u8],
        turn: usize,
        pending: bool,
    }

    impl AsyncRead for Chunked<'_> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            self.pending = !self.pending;
            if self.pending {
                return Poll::Pending;
            }
            let chunk = self
                .chunks
                .get(self.turn % self.chunks.len().max(1))
                .map_or(1, |&c| usize::from(c.max(1)));
            self.turn += 1;
            let n = chunk.min(buf.remaining()).min(self.data.len());
            let (head, tail) = self.data.split_at(n);
            buf.put_slice(head);
            self.data = tail;
            Poll::Ready(Ok(()))
        }
    }

    /// Reads `data` through [`Frames`] in `chunks`, dropping the pending read wherever
    /// `cancel` (cycled) says so, as a `select!` that another branch wins does; asserts that
    /// the frames and the end are those of [`one_pass`], and parses each frame's header.
    ///
    /// # Panics
    /// When [`Frames`] loses, adds or reorders a byte.
    pub fn chunked_reads(data: &[u8], chunks: &[u8], cancel: &[bool], cap: usize) {
        chunked_reads_with(Frames::default(), data, chunks, cancel, cap, false);
    }

    /// [`chunked_reads`] with a given reader, which is also released after every frame when
    /// `release` is set (as an idle response reader is).
    ///
    /// # Panics
    /// As [`chunked_reads`].
    pub fn chunked_reads_with(
        mut frames: Frames,
        data: &[u8],
        chunks: &[u8],
        cancel: &[bool],
        cap: usize,
        release: bool,
    ) {
        let (expected, end) = one_pass(data, cap);
        let mut io = Chunked {
            data,
            chunks,
            turn: 0,
            pending: false,
        };
        let mut cx = Context::from_waker(Waker::noop());
        let mut got: Vec<Bytes> = Vec::new();
        let mut polls = 0usize;
        let result = loop {
            let outcome = {
                let mut read = std::pin::pin!(frames.next(&mut io, cap));
                loop {
                    polls += 1;
                    if let Poll::Ready(r) = read.as_mut().poll(&mut cx) {
                        break Some(r);
                    }
                    if cancel.get(polls % cancel.len().max(1)) == Some(&true) {
                        break None;
                    }
                }
            };
            match outcome {
                None => {}
                Some(Ok(frame)) => {
                    let _ = Request::from_wire(frame.clone());
                    got.push(frame);
                    if release {
                        frames.release();
                    }
                }
                Some(Err(e)) => break e,
            }
        };
        let got: Vec<&[u8]> = got.iter().map(|f| &f[..]).collect();
        assert_eq!(got, expected, "frames differ from a one-pass read");
        let ended = match result {
            WireError::Closed => End::Closed,
            WireError::Oversized { .. } => End::Oversized,
            WireError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => End::Cut,
            other => panic!("unexpected error {other}"),
        };
        assert_eq!(ended, end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};

    fn request_payload<T: Encodable>(api: ApiKey, version: i16, body: &T) -> Bytes {
        let mut out = BytesMut::new();
        let mut header = RequestHeader::default();
        header.request_api_key = api as i16;
        header.request_api_version = version;
        header.correlation_id = 7;
        header
            .encode(&mut out, api.request_header_version(version))
            .unwrap();
        body.encode(&mut out, version).unwrap();
        out.freeze()
    }

    #[test]
    fn request_round_trips_and_reencodes() {
        let payload = request_payload(ApiKey::Metadata, 12, &MetadataRequest::default());
        let req = Request::parse(payload.clone()).unwrap();
        assert_eq!(req.api, ApiKey::Metadata);
        assert_eq!(req.version(), 12);
        assert_eq!(req.correlation_id(), 7);
        let body: MetadataRequest = req.decode().unwrap();
        let frame = req.with_body(&body).unwrap();
        assert_eq!(&frame[4..], &payload[..]);
    }

    #[test]
    fn hostile_headers_are_errors_not_panics() {
        for bad in [
            &b""[..],
            &[0, 18, 0][..],
            &[0x7f, 0x7f, 0, 0, 0, 0, 0, 1][..],
            &[0, 18, 0xff, 0xff, 0, 0, 0, 1, 0, 0][..],
            &[0, 18, 0, 3, 0, 0, 0, 1, 0x7f, 0x7f, 0x7f][..],
        ] {
            assert!(
                Request::parse(Bytes::copy_from_slice(bad)).is_err(),
                "{bad:?}"
            );
        }
        let ok = request_payload(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        for cut in 0..ok.len() {
            let r = Request::parse(ok.slice(..cut));
            if let Ok(r) = r {
                let _ = r.decode::<ApiVersionsRequest>();
            }
        }
    }

    proptest::proptest! {
        /// Frames read in any chunking, with reads dropped at any point, are the frames of a
        /// one-pass read: no byte lost, added or reordered.
        #[test]
        fn frames_survive_any_chunking_and_cancellation(
            frames in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..300), 0..8),
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..8),
            chunks in proptest::collection::vec(proptest::num::u8::ANY, 1..16),
            cancel in proptest::collection::vec(proptest::bool::ANY, 1..16),
            cap in 0usize..400,
        ) {
            let mut data = Vec::new();
            for f in &frames {
                data.extend_from_slice(&u32::try_from(f.len()).unwrap().to_be_bytes());
                data.extend_from_slice(f);
            }
            data.extend_from_slice(&tail);
            oracle::chunked_reads(&data, &chunks, &cancel, cap);
        }
    }

    #[test]
    fn a_kept_reader_reuses_large_frames_without_losing_a_byte() {
        // Frames around the 64 KiB keeping threshold, read in chunks up to 255 bytes with
        // reads dropped, by a kept reader (released after each frame, or never).
        let mut data = Vec::new();
        for (i, len) in [70_000usize, 10, 65_532, 65_531, 100_000, 0]
            .into_iter()
            .enumerate()
        {
            data.extend_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
            data.extend((0..len).map(|j| u8::try_from((i * 7 + j) % 251).unwrap()));
        }
        for release in [false, true] {
            oracle::chunked_reads_with(
                Frames::keeping(),
                &data,
                &[255, 17, 200, 3],
                &[false, true, false],
                1 << 20,
                release,
            );
        }
        let mut kept = Frames::keeping();
        assert!(!kept.holds_memory(), "nothing read yet");
        kept.large = true;
        kept.holds = true;
        assert!(kept.holds_memory());
        kept.release();
        assert!(!kept.holds_memory());
    }

    #[test]
    fn a_read_dropped_mid_frame_loses_nothing() {
        // One frame of 10 bytes, delivered 3 bytes at a time, every read cancelled once.
        let data: Vec<u8> = [&[0, 0, 0, 10][..], &[1; 10], &[0, 0, 0, 1, 9]].concat();
        oracle::chunked_reads(&data, &[3], &[true], 1024);
        let (frames, end) = oracle::one_pass(&data, 1024);
        assert_eq!(frames.len(), 2);
        assert_eq!(end, oracle::End::Closed);
    }

    #[tokio::test]
    async fn frames_over_the_cap_are_refused_before_allocation() {
        let mut input: &[u8] = &[0x7f, 0xff, 0xff, 0xff, 1, 2, 3];
        let err = Frames::default().next(&mut input, 1024).await.unwrap_err();
        let mut two: &[u8] = &[0, 0, 0, 2, 7, 8, 0, 0, 0, 1, 9];
        let mut frames = Frames::default();
        let first = frames.next(&mut two, 1024).await.unwrap();
        assert_eq!(
            &first[..],
            &[0, 0, 0, 2, 7, 8],
            "one frame, prefix included, no more"
        );
        assert_eq!(&frames.next(&mut two, 1024).await.unwrap()[4..], &[9]);
        assert!(
            matches!(err, WireError::Oversized { cap: 1024, .. }),
            "{err}"
        );
        let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xfe];
        assert!(matches!(
            Frames::default().next(&mut negative, 1024).await,
            Err(WireError::Oversized { .. })
        ));
        let mut empty: &[u8] = &[];
        assert!(matches!(
            Frames::default().next(&mut empty, 1024).await,
            Err(WireError::Closed)
        ));
        let mut short: &[u8] = &[0, 0, 0, 9, 1];
        assert!(matches!(
            Frames::default().next(&mut short, 1024).await,
            Err(WireError::Io(_))
        ));
    }
}
