//! Record batches in Produce requests: the rules Kafka's broker applies to the batches a client
//! writes, read from their fixed headers alone. Pure: it never decompresses, never reads a
//! record, and never panics on short or hostile bytes.
//!
//! Written by hand: `kafka-protocol`'s `RecordBatchDecoder` decodes (and decompresses) whole
//! batches, which is what this must not do. The layout and the rules are Kafka's
//! (`DefaultRecordBatch`, `ByteBufferLogInputStream.nextBatchSize`,
//! `ProduceRequest.validateRecords`, `LogValidator.validateBatch`).

/// `baseOffset` (i64) and `batchLength` (i32): the part of a batch its length does not count.
const LOG_OVERHEAD: usize = 12;
const LENGTH_OFFSET: usize = 8;
/// Every batch format has its magic byte here, after `partitionLeaderEpoch` (v2) or `crc` (v0, v1).
const MAGIC_OFFSET: usize = 16;
/// v2: after `magic` (i8) and `crc` (u32).
const ATTRIBUTES_OFFSET: usize = 21;
/// The v2 header, up to the records (`RECORD_BATCH_OVERHEAD`).
const V2_HEADER: usize = 61;
/// The smallest `batchLength` Kafka reads on (`LegacyRecord.RECORD_OVERHEAD_V0`).
const MIN_LENGTH: i32 = 14;
const MAGIC_V2: i8 = 2;
const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;

const CORRUPT_MESSAGE: i16 = 2;
const INVALID_RECORD: i16 = 87;

/// What one partition's records hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Inspection {
    /// A whole v2 batch has the transactional bit set (then Write on a transactional id is
    /// needed, as Kafka's `RequestUtils.hasTransactionalRecords`).
    pub(super) transactional: bool,
    /// The first rule broken, if any: then the partition is refused.
    pub(super) invalid: Option<Invalid>,
}

/// A rule of Kafka's that a partition's records break.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Invalid {
    /// No whole batch: null or empty records, or a first batch cut short. Produce v3+ needs one
    /// (`validateRecords`).
    NoBatch,
    /// Bytes after the last whole batch, too short to be one. Kafka stops reading there and
    /// drops them; the gateway refuses the partition instead of forwarding bytes it did not read.
    Trailing,
    /// A batch of magic 0 or 1: Produce v3+ takes magic 2 only (`validateRecords`).
    OldMagic,
    /// More than one batch: Produce v3+ takes exactly one per partition (`validateRecords`).
    SeveralBatches,
    /// A control batch: clients may not write them (`LogValidator.validateBatch`).
    Control,
    /// A batch length under 14 or a magic byte outside 0..=2 (`nextBatchSize`), or a v2 batch
    /// shorter than its header (`DefaultRecordBatch.ensureValid`).
    Corrupt,
}

impl Invalid {
    /// The partition error Kafka answers with: CORRUPT_MESSAGE (2) for a corrupt batch,
    /// INVALID_RECORD (87) for the others.
    pub(super) const fn code(self) -> i16 {
        match self {
            Invalid::Corrupt => CORRUPT_MESSAGE,
            _ => INVALID_RECORD,
        }
    }
}

/// One step through the records.
enum Step {
    /// A whole batch of `size` bytes (its length plus [`LOG_OVERHEAD`]).
    Batch {
        magic: i8,
        /// v2 attributes; 0 for older formats, whose attributes are elsewhere and unread.
        attributes: i16,
        size: usize,
    },
    /// Fewer bytes than the next batch announces: where Kafka's reader stops.
    Partial,
}

fn bytes<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// The batch at the start of `rest`, framed as `ByteBufferLogInputStream` does.
fn step(rest: &[u8]) -> Result<Step, Invalid> {
    let Some(length) = bytes(rest, LENGTH_OFFSET).map(i32::from_be_bytes) else {
        return Ok(Step::Partial);
    };
    if length < MIN_LENGTH {
        return Err(Invalid::Corrupt);
    }
    let Some(magic) = bytes(rest, MAGIC_OFFSET).map(i8::from_be_bytes) else {
        return Ok(Step::Partial);
    };
    if !(0..=MAGIC_V2).contains(&magic) {
        return Err(Invalid::Corrupt);
    }
    let size = usize::try_from(length)
        .ok()
        .and_then(|n| n.checked_add(LOG_OVERHEAD))
        .ok_or(Invalid::Corrupt)?;
    if rest.len() < size {
        return Ok(Step::Partial);
    }
    if magic != MAGIC_V2 {
        return Ok(Step::Batch {
            magic,
            attributes: 0,
            size,
        });
    }
    if size < V2_HEADER {
        return Err(Invalid::Corrupt);
    }
    let attributes = bytes(rest, ATTRIBUTES_OFFSET).map_or(0, i16::from_be_bytes);
    Ok(Step::Batch {
        magic,
        attributes,
        size,
    })
}

/// Reads every batch header in one partition's `records` (`None`: null records) and reports
/// whether any is transactional and the first of Kafka's rules they break.
pub(super) fn inspect(records: Option<&[u8]>) -> Inspection {
    let mut out = Inspection {
        transactional: false,
        invalid: None,
    };
    let mut broken = |e: Invalid| {
        out.invalid.get_or_insert(e);
    };
    let mut transactional = false;
    let mut rest = records.unwrap_or_default();
    let mut count = 0usize;
    while !rest.is_empty() {
        match step(rest) {
            Err(e) => {
                broken(e);
                break;
            }
            Ok(Step::Partial) => {
                broken(if count == 0 {
                    Invalid::NoBatch
                } else {
                    Invalid::Trailing
                });
                break;
            }
            Ok(Step::Batch {
                magic,
                attributes,
                size,
            }) => {
                count += 1;
                if count > 1 {
                    broken(Invalid::SeveralBatches);
                }
                if magic != MAGIC_V2 {
                    broken(Invalid::OldMagic);
                }
                transactional |= attributes & TRANSACTIONAL_FLAG != 0;
                if attributes & CONTROL_FLAG != 0 {
                    broken(Invalid::Control);
                }
                rest = rest.get(size..).unwrap_or_default();
            }
        }
    }
    if count == 0 {
        broken(Invalid::NoBatch);
    }
    out.transactional = transactional;
    out
}

#[cfg(test)]
mod tests {
    use super::{Inspection, Invalid, inspect};

    /// A v2 batch header with `attributes` and `length` (the batch length field), followed by
    /// `payload`.
    fn header(magic: u8, attributes: i16, length: i32, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(7i64.to_be_bytes());
        b.extend(length.to_be_bytes());
        b.extend(0i32.to_be_bytes());
        b.push(magic);
        b.extend(0u32.to_be_bytes());
        b.extend(attributes.to_be_bytes());
        b.extend([0; 38]);
        b.extend_from_slice(payload);
        b
    }

    fn v2(attributes: i16, payload: &[u8]) -> Vec<u8> {
        header(
            2,
            attributes,
            i32::try_from(49 + payload.len()).unwrap(),
            payload,
        )
    }

    /// A legacy (magic 0 or 1) message: offset, size, crc, magic, attributes, then the rest.
    fn legacy(magic: u8) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(0i64.to_be_bytes());
        b.extend(20i32.to_be_bytes());
        b.extend(0u32.to_be_bytes());
        b.push(magic);
        b.push(0x10);
        b.extend([0; 14]);
        b
    }

    fn ok(transactional: bool) -> Inspection {
        Inspection {
            transactional,
            invalid: None,
        }
    }

    fn bad(transactional: bool, e: Invalid) -> Inspection {
        Inspection {
            transactional,
            invalid: Some(e),
        }
    }

    #[test]
    fn batch_headers_decide() {
        let plain = v2(0, b"records");
        let cases: Vec<(&str, Option<Vec<u8>>, Inspection)> = vec![
            ("plain", Some(plain.clone()), ok(false)),
            ("no records bytes", Some(v2(0, b"")), ok(false)),
            ("transactional", Some(v2(0x10, b"r")), ok(true)),
            ("gzip, not read", Some(v2(0x01, b"\xff\xff")), ok(false)),
            ("zstd transactional", Some(v2(0x14, b"\x00")), ok(true)),
            (
                "timestamp type and delete horizon bits",
                Some(v2(0x48, b"r")),
                ok(false),
            ),
            (
                "control",
                Some(v2(0x20, b"m")),
                bad(false, Invalid::Control),
            ),
            (
                "transactional control",
                Some(v2(0x30, b"m")),
                bad(true, Invalid::Control),
            ),
            ("null", None, bad(false, Invalid::NoBatch)),
            ("empty", Some(vec![]), bad(false, Invalid::NoBatch)),
            (
                "cut",
                Some(plain[..plain.len() - 1].to_vec()),
                bad(false, Invalid::NoBatch),
            ),
            (
                "two",
                Some([plain.clone(), plain.clone()].concat()),
                bad(false, Invalid::SeveralBatches),
            ),
            (
                "a transactional second",
                Some([plain.clone(), v2(0x10, b"")].concat()),
                bad(true, Invalid::SeveralBatches),
            ),
            (
                "trailing",
                Some([plain.clone(), vec![1, 2, 3]].concat()),
                bad(false, Invalid::Trailing),
            ),
            (
                "a trailing cut batch",
                Some([plain.clone(), plain[..20].to_vec()].concat()),
                bad(false, Invalid::Trailing),
            ),
            ("magic 0", Some(legacy(0)), bad(false, Invalid::OldMagic)),
            ("magic 1", Some(legacy(1)), bad(false, Invalid::OldMagic)),
            (
                "magic 3",
                Some(header(3, 0, 49, b"")),
                bad(false, Invalid::Corrupt),
            ),
            (
                "magic -128",
                Some(header(0x80, 0, 49, b"")),
                bad(false, Invalid::Corrupt),
            ),
            (
                "length 13",
                Some(header(2, 0, 13, b"")),
                bad(false, Invalid::Corrupt),
            ),
            (
                "length i32::MIN",
                Some(header(2, 0, i32::MIN, b"")),
                bad(false, Invalid::Corrupt),
            ),
            (
                "length under the v2 header",
                Some(header(2, 0, 48, b"")),
                bad(false, Invalid::Corrupt),
            ),
            (
                "length i32::MAX",
                Some(header(2, 0x10, i32::MAX, b"")),
                bad(false, Invalid::NoBatch),
            ),
        ];
        for (case, records, expected) in cases {
            assert_eq!(inspect(records.as_deref()), expected, "{case}");
        }
    }

    #[test]
    fn a_batch_encoded_by_kafka_protocol_is_whole() {
        let b = poolgate::testkit::kafka::record_batch(&[(None, b"one"), (Some(b"k"), b"two")]);
        assert_eq!(inspect(Some(&b)), ok(false), "{b:?}");
    }

    #[test]
    fn codes_are_kafkas() {
        assert_eq!(Invalid::Corrupt.code(), 2);
        for e in [
            Invalid::NoBatch,
            Invalid::Trailing,
            Invalid::OldMagic,
            Invalid::SeveralBatches,
            Invalid::Control,
        ] {
            assert_eq!(e.code(), 87, "{e:?}");
        }
    }

    #[test]
    fn every_cut_and_mutation_is_an_answer_never_a_panic() {
        let whole = [v2(0x10, b"records"), v2(0, b"more")].concat();
        for cut in 0..=whole.len() {
            let _ = inspect(Some(&whole[..cut]));
        }
        // A small deterministic generator (xorshift).
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut b = whole.clone();
            for _ in 0..4 {
                let at = usize::try_from(next()).unwrap() % b.len();
                b[at] = next().to_be_bytes()[0];
            }
            let cut = usize::try_from(next()).unwrap() % (b.len() + 1);
            let _ = inspect(Some(&b[..cut]));
        }
    }
}
