//! Which upstream response answers which forwarded request. The gateway numbers the requests
//! it forwards with its own correlation ids; brokers answer in request order. Pure: no I/O.

use std::collections::VecDeque;

use bytes::Bytes;

/// How an upstream response relates to the requests waiting for one.
#[derive(Debug, PartialEq, Eq)]
pub enum Pairing {
    /// It answers the request being waited for.
    Answer,
    /// It answers a request sent with no response expected (`acks=0`): dropped.
    AnsweredAnyway,
    /// It answers no request: the connection is closed, and nothing is forwarded.
    Stray,
}

/// Pairs the response with correlation id `got` with the request the writer waits for
/// (`expected`, if any) and the `unanswered` ones before it, oldest first. Brokers answer in
/// request order, so a response to a later request means the earlier unanswered ones never
/// will be answered: they are forgotten.
pub fn pair(expected: Option<i32>, got: i32, unanswered: &mut VecDeque<i32>) -> Pairing {
    if expected == Some(got) {
        unanswered.clear();
        return Pairing::Answer;
    }
    match unanswered.iter().position(|&id| id == got) {
        Some(i) => {
            unanswered.drain(..=i);
            Pairing::AnsweredAnyway
        }
        None => Pairing::Stray,
    }
}

/// The largest number of unanswered (`acks=0`) requests remembered: a broker that answers them
/// answers before the next ones, and Kafka brokers never do.
pub const MAX_UNANSWERED: usize = 1024;

/// The correlation id of a response frame (length prefix included).
pub fn response_id(wire: &Bytes) -> Option<i32> {
    wire.get(4..8)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(i32::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (expected, unanswered before, got) -> (pairing, unanswered after)
    type Case = (Option<i32>, &'static [i32], i32, Pairing, &'static [i32]);

    #[test]
    fn responses_pair_with_their_request_or_with_nothing() {
        let cases: &[Case] = &[
            (Some(5), &[], 5, Pairing::Answer, &[]),
            (Some(5), &[3, 4], 5, Pairing::Answer, &[]),
            (Some(5), &[3, 4], 3, Pairing::AnsweredAnyway, &[4]),
            (Some(5), &[3, 4], 4, Pairing::AnsweredAnyway, &[]),
            (Some(5), &[3, 4], 6, Pairing::Stray, &[3, 4]),
            (Some(5), &[], 4, Pairing::Stray, &[]),
            (None, &[], 0, Pairing::Stray, &[]),
            (None, &[7], 7, Pairing::AnsweredAnyway, &[]),
            // The client's correlation ids never matter: only the gateway's.
            (Some(i32::MIN), &[i32::MAX], i32::MIN, Pairing::Answer, &[]),
        ];
        for (expected, before, got, pairing, after) in cases {
            let mut unanswered: VecDeque<i32> = before.iter().copied().collect();
            assert_eq!(
                pair(*expected, *got, &mut unanswered),
                *pairing,
                "{cases:?}"
            );
            assert_eq!(unanswered, after.to_vec(), "{expected:?} {before:?} {got}");
        }
    }

    #[test]
    fn response_ids_need_four_bytes_after_the_length() {
        assert_eq!(
            response_id(&Bytes::from_static(&[0, 0, 0, 4, 0, 0, 1, 2])),
            Some(258)
        );
        assert_eq!(
            response_id(&Bytes::from_static(&[0, 0, 0, 4, 0, 0, 1])),
            None
        );
        assert_eq!(response_id(&Bytes::new()), None);
    }
}
