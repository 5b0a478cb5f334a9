//! Produce: Write on each topic and the transactional id, and the batch rules.

use super::*;

#[test]
fn produce_with_every_topic_allowed_is_forwarded_untouched() {
    let session = app();
    for version in versions(ApiKey::Produce) {
        let req = request(
            ApiKey::Produce,
            version,
            &produce(-1, &[("orders-eu", &[0, 1]), ("orders-us", &[0])]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_untouched(verdict);
        assert!(denials.is_empty(), "{denials:?}");
    }
}

#[test]
fn produce_partly_refused_forwards_the_allowed_topic_and_merges_29() {
    let session = app();
    for version in versions(ApiKey::Produce) {
        let req = request(
            ApiKey::Produce,
            version,
            &produce(
                -1,
                &[
                    ("secret", &[2, 3]),
                    ("orders-eu", &[0, 1]),
                    ("events-a", &[0]),
                ],
            ),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [
                denial(Operation::Write, "Topic:secret"),
                denial(Operation::Write, "Topic:events-a"),
            ]
        );
        let f = forwarded(verdict);
        assert!(f.respond);
        let sent: ProduceRequest = decode_forwarded(&f.frame.expect("a re-encoded request"), &req);
        assert_eq!(sent.acks, -1);
        assert_eq!(sent.timeout_ms, 1500);
        assert_eq!(sent.topic_data.len(), 1, "v{version}");
        assert_eq!(sent.topic_data[0].name, topic("orders-eu"));
        let records: Vec<_> = sent.topic_data[0]
            .partition_data
            .iter()
            .map(|p| (p.index, p.records.clone()))
            .collect();
        assert_eq!(
            records,
            [
                (0, Some(records_for("orders-eu", 0))),
                (1, Some(records_for("orders-eu", 1))),
            ],
            "the records are forwarded intact"
        );

        let resp = patched(
            f.patch.expect("a patch"),
            version,
            &produce_ok(&[("orders-eu", &[0, 1])]),
        );
        assert_eq!(
            produce_codes(&resp),
            [
                ("orders-eu".to_owned(), vec![(0, 0), (1, 0)]),
                (
                    "secret".to_owned(),
                    vec![(2, TOPIC_DENIED), (3, TOPIC_DENIED)]
                ),
                ("events-a".to_owned(), vec![(0, TOPIC_DENIED)]),
            ],
            "v{version}"
        );
        assert_eq!(resp.responses[0].partition_responses[1].base_offset, 1001);
        assert_eq!(resp.responses[1].partition_responses[0].base_offset, -1);
    }
}

#[test]
fn produce_with_every_topic_refused_is_answered_with_29_per_partition() {
    let session = app();
    for version in versions(ApiKey::Produce) {
        let req = request(
            ApiKey::Produce,
            version,
            &produce(-1, &[("secret", &[0, 1]), ("events-a", &[4])]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials.len(), 2);
        let resp: ProduceResponse = answer_of(verdict, &req);
        assert_eq!(
            produce_codes(&resp),
            [
                (
                    "secret".to_owned(),
                    vec![(0, TOPIC_DENIED), (1, TOPIC_DENIED)]
                ),
                ("events-a".to_owned(), vec![(4, TOPIC_DENIED)]),
            ],
            "v{version}"
        );
        for p in resp.responses.iter().flat_map(|t| &t.partition_responses) {
            assert_eq!(p.base_offset, -1);
        }
    }
}

#[test]
fn produce_acks_0_gets_no_response_for_refused_topics() {
    let session = app();
    for version in versions(ApiKey::Produce) {
        // Everything refused: nothing forwarded, nothing answered.
        let req = request(ApiKey::Produce, version, &produce(0, &[("secret", &[0])]));
        let (verdict, denials) = run(&session, &req);
        assert!(answered(verdict).is_none(), "acks=0 gets no response");
        assert_eq!(denials, [denial(Operation::Write, "Topic:secret")]);

        // Partly refused: the allowed topic is forwarded, no response is awaited.
        let req = request(
            ApiKey::Produce,
            version,
            &produce(0, &[("secret", &[0]), ("orders-eu", &[1])]),
        );
        let (verdict, _) = run(&session, &req);
        let f = forwarded(verdict);
        assert!(!f.respond, "the broker does not answer acks=0");
        assert!(f.patch.is_none());
        let sent: ProduceRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(sent.acks, 0);
        let names: Vec<_> = sent.topic_data.iter().map(|t| t.name.0.as_str()).collect();
        assert_eq!(names, ["orders-eu"]);

        // All allowed: forwarded as is, still without a response.
        let req = request(
            ApiKey::Produce,
            version,
            &produce(0, &[("orders-eu", &[1])]),
        );
        let f = forwarded(run(&session, &req).0);
        assert!(f.frame.is_none() && f.patch.is_none() && !f.respond);
    }
}

#[test]
fn produce_with_a_refused_transactional_id_fails_every_partition_with_53() {
    let session = app();
    for version in versions(ApiKey::Produce) {
        let mut body = produce(-1, &[("orders-eu", &[0, 1]), ("secret", &[2])]);
        body.transactional_id = Some(TransactionalId(s("txn-other")));
        let req = request(ApiKey::Produce, version, &body);
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [denial(Operation::Write, "TransactionalId:txn-other")]
        );
        let resp: ProduceResponse = answer_of(verdict, &req);
        assert_eq!(
            produce_codes(&resp),
            [
                (
                    "orders-eu".to_owned(),
                    vec![(0, TXN_DENIED), (1, TXN_DENIED)]
                ),
                ("secret".to_owned(), vec![(2, TXN_DENIED)]),
            ],
            "even the topics the session may write fail: the transaction is refused"
        );

        body.acks = 0;
        let req = request(ApiKey::Produce, version, &body);
        assert!(answered(run(&session, &req).0).is_none());
    }
}

#[test]
fn produce_with_an_allowed_transactional_id_checks_the_topics() {
    let session = app();
    let mut body = produce(-1, &[("orders-eu", &[0])]);
    body.transactional_id = Some(TransactionalId(s("txn-app")));
    let req = request(ApiKey::Produce, 9, &body);
    let (verdict, denials) = run(&session, &req);
    assert_untouched(verdict);
    assert!(denials.is_empty());

    let mut body = produce(-1, &[("orders-eu", &[0]), ("secret", &[0])]);
    body.transactional_id = Some(TransactionalId(s("txn-app")));
    let req = request(ApiKey::Produce, 9, &body);
    let (verdict, denials) = run(&session, &req);
    assert_eq!(denials, [denial(Operation::Write, "Topic:secret")]);
    let f = forwarded(verdict);
    let sent: ProduceRequest = decode_forwarded(&f.frame.unwrap(), &req);
    assert_eq!(
        sent.transactional_id,
        Some(TransactionalId(s("txn-app"))),
        "the transactional id is forwarded"
    );
}

#[test]
fn produce_with_transactional_batches_needs_write_on_a_transactional_id() {
    // (transactional id, attributes of every batch, forwarded): as Kafka's
    // KafkaApis.handleProduceRequest, transactional batches need Write on the transactional id,
    // and a null id fails; the batches are read, not only the field.
    let cases: &[(Option<&str>, i16, bool)] = &[
        (None, 0, true),
        (None, GZIP, true),
        (None, TRANSACTIONAL, false),
        (None, TRANSACTIONAL | CONTROL, false),
        (None, TRANSACTIONAL | ZSTD, false),
        (Some("txn-app"), TRANSACTIONAL, true),
        (Some("txn-app"), TRANSACTIONAL | GZIP, true),
        (Some("txn-other"), TRANSACTIONAL, false),
    ];
    let session = app();
    for version in versions(ApiKey::Produce) {
        for &(txn, attributes, allowed) in cases {
            let case = format!("v{version} {txn:?} {attributes:#x}");
            let mut body = produce_records(
                -1,
                &[("orders-eu", &[0, 1]), ("orders-us", &[2])],
                &batch(attributes, b"records"),
            );
            body.transactional_id = txn.map(|t| TransactionalId(s(t)));
            let req = request(ApiKey::Produce, version, &body);
            let (verdict, denials) = run(&session, &req);
            if allowed {
                assert_untouched(verdict);
                assert!(denials.is_empty(), "{case}: {denials:?}");
                continue;
            }
            let resp: ProduceResponse = answer_of(verdict, &req);
            assert_eq!(
                produce_codes(&resp),
                [
                    (
                        "orders-eu".to_owned(),
                        vec![(0, TXN_DENIED), (1, TXN_DENIED)]
                    ),
                    ("orders-us".to_owned(), vec![(2, TXN_DENIED)]),
                ],
                "{case}: nothing is forwarded"
            );
            let expected = match txn {
                Some(t) => denial(Operation::Write, &format!("TransactionalId:{t}")),
                None => denial_for(
                    Operation::Write,
                    "TransactionalId:",
                    Reason::TransactionalBatches,
                ),
            };
            assert_eq!(denials, [expected], "{case}");
        }
    }
}

#[test]
fn produce_of_transactional_batches_without_a_transactional_id_is_refused_for_a_pool_without_any() {
    // The review's case: a pool with no TransactionalId grant writes transactional and control
    // batches with `transactional_id = null`.
    let session = session_with(&["role DeveloperWrite Topic:orders-*"]);
    for attributes in [TRANSACTIONAL, TRANSACTIONAL | CONTROL] {
        let req = request(
            ApiKey::Produce,
            9,
            &produce_records(-1, &[("orders-eu", &[0])], &batch(attributes, b"x")),
        );
        let resp: ProduceResponse = answer_of(run(&session, &req).0, &req);
        assert_eq!(
            produce_codes(&resp),
            [("orders-eu".to_owned(), vec![(0, TXN_DENIED)])]
        );
        // acks=0: refused all the same, without a response.
        let req = request(
            ApiKey::Produce,
            9,
            &produce_records(0, &[("orders-eu", &[0])], &batch(attributes, b"x")),
        );
        assert!(answered(run(&session, &req).0).is_none());
    }
}

/// A valid plain batch with the bytes at `at` replaced by `with`.
fn batch_patched(at: usize, with: &[u8]) -> Vec<u8> {
    let mut b = batch(0, b"payload");
    b[at..at + with.len()].copy_from_slice(with);
    b
}

#[test]
fn produce_batches_kafka_refuses_are_refused_per_partition() {
    let good = batch(0, b"payload");
    // (case, records, partition error): the checks of Kafka's ProduceRequest.validateRecords,
    // ByteBufferLogInputStream.nextBatchSize, DefaultRecordBatch.ensureValid and
    // LogValidator.validateBatch (client origin), read from the batch headers alone.
    let cases: Vec<(&str, Vec<u8>, i16)> = vec![
        ("a control batch", batch(CONTROL, b"marker"), INVALID_RECORD),
        (
            "a transactional control batch",
            batch(TRANSACTIONAL | CONTROL, b"marker"),
            INVALID_RECORD,
        ),
        (
            "a compressed control batch",
            batch(CONTROL | ZSTD, b"\xff"),
            INVALID_RECORD,
        ),
        ("no batch", vec![], INVALID_RECORD),
        ("a cut length", good[..10].to_vec(), INVALID_RECORD),
        ("a cut header", good[..30].to_vec(), INVALID_RECORD),
        (
            "a cut batch",
            good[..good.len() - 1].to_vec(),
            INVALID_RECORD,
        ),
        (
            "two batches",
            [good.clone(), good.clone()].concat(),
            INVALID_RECORD,
        ),
        (
            "a second batch, a control one",
            [good.clone(), batch(CONTROL, b"m")].concat(),
            INVALID_RECORD,
        ),
        (
            "trailing bytes",
            [good.clone(), vec![0; 5]].concat(),
            INVALID_RECORD,
        ),
        ("magic 1", batch_patched(16, &[1]), INVALID_RECORD),
        ("magic 0", batch_patched(16, &[0]), INVALID_RECORD),
        ("magic 3", batch_patched(16, &[3]), CORRUPT_MESSAGE),
        ("magic -1", batch_patched(16, &[0xff]), CORRUPT_MESSAGE),
        (
            "a length under 14",
            batch_patched(8, &13i32.to_be_bytes()),
            CORRUPT_MESSAGE,
        ),
        (
            "a negative length",
            batch_patched(8, &(-1i32).to_be_bytes()),
            CORRUPT_MESSAGE,
        ),
        (
            "a length under the v2 header",
            batch_patched(8, &40i32.to_be_bytes()),
            CORRUPT_MESSAGE,
        ),
    ];
    let session = app();
    for version in versions(ApiKey::Produce) {
        for (case, records, code) in &cases {
            let case = format!("v{version} {case}");
            // With Write on the transactional id: the batch rules apply all the same.
            let mut body = produce(-1, &[("orders-eu", &[0, 1])]);
            body.transactional_id = Some(TransactionalId(s("txn-app")));
            body.topic_data[0].partition_data[0].records = Some(Bytes::from(records.clone()));
            let req = request(ApiKey::Produce, version, &body);
            let (verdict, denials) = run(&session, &req);
            let reason = if case.contains("control batch") {
                Reason::ControlBatch
            } else {
                Reason::InvalidBatch
            };
            assert_eq!(
                denials,
                [denial_for(Operation::Write, "Topic:orders-eu", reason)],
                "{case}"
            );
            let f = forwarded(verdict);
            let sent: ProduceRequest =
                decode_forwarded(&f.frame.expect("re-encoded: {case}"), &req);
            let kept: Vec<_> = sent.topic_data[0]
                .partition_data
                .iter()
                .map(|p| p.index)
                .collect();
            assert_eq!(kept, [1], "{case}: only the valid partition is forwarded");
            let resp = patched(
                f.patch.expect("a patch"),
                version,
                &produce_ok(&[("orders-eu", &[1])]),
            );
            assert_eq!(
                produce_codes(&resp),
                [("orders-eu".to_owned(), vec![(1, 0), (0, *code)])],
                "{case}: merged into the topic's entry, as Kafka answers per partition"
            );

            // Every partition refused: answered alone.
            let mut body = produce_records(-1, &[("orders-eu", &[0])], records);
            body.transactional_id = Some(TransactionalId(s("txn-app")));
            let req = request(ApiKey::Produce, version, &body);
            let resp: ProduceResponse = answer_of(run(&session, &req).0, &req);
            assert_eq!(
                produce_codes(&resp),
                [("orders-eu".to_owned(), vec![(0, *code)])],
                "{case}"
            );
        }
    }
}

#[test]
fn produce_with_null_records_is_refused_as_kafka_requires_one_batch() {
    let session = app();
    let mut body = produce(-1, &[("orders-eu", &[0])]);
    body.topic_data[0].partition_data[0].records = None;
    let req = request(ApiKey::Produce, 9, &body);
    let resp: ProduceResponse = answer_of(run(&session, &req).0, &req);
    assert_eq!(
        produce_codes(&resp),
        [("orders-eu".to_owned(), vec![(0, INVALID_RECORD)])]
    );
}

#[test]
fn produce_of_truncated_batches_is_refused_never_panics() {
    let session = app();
    let good = batch(TRANSACTIONAL, b"payload");
    for cut in 0..good.len() {
        let mut body = produce_records(-1, &[("orders-eu", &[0])], &good[..cut]);
        body.transactional_id = Some(TransactionalId(s("txn-app")));
        let req = request(ApiKey::Produce, 9, &body);
        let resp: ProduceResponse = answer_of(run(&session, &req).0, &req);
        assert_eq!(
            produce_codes(&resp),
            [("orders-eu".to_owned(), vec![(0, INVALID_RECORD)])],
            "cut at {cut}"
        );
    }
}

#[test]
fn compressed_batches_are_read_by_their_header_only() {
    // Payloads that no codec would accept: the gateway never decompresses; and a batch that
    // kafka-protocol encodes, as a producer would.
    let session = app();
    let mut batches: Vec<Vec<u8>> = [GZIP, 0x02, 0x03, ZSTD]
        .into_iter()
        .map(|codec| batch(codec, b"\xff\xfe not compressed at all"))
        .collect();
    batches.push(
        poolgate::testkit::kafka::record_batch(&[(None, b"one"), (Some(b"k"), b"two")]).to_vec(),
    );
    for records in batches {
        let req = request(
            ApiKey::Produce,
            9,
            &produce_records(-1, &[("orders-eu", &[0])], &records),
        );
        let (verdict, denials) = run(&session, &req);
        assert_untouched(verdict);
        assert!(denials.is_empty());
    }
}
