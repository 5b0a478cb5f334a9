//! InitProducerId and the transaction APIs.

use super::*;

/// A request gated by one or two resources (a transactional id, a group, the cluster): forwarded
/// as received, or answered alone with one error code.
struct Gated {
    api: ApiKey,
    session: fn() -> Arc<Session>,
    request: fn(i16) -> Request,
    denials: &'static [(Operation, &'static str)],
    /// The error code of the gateway's answer; `None`: forwarded as received.
    refused: Option<i16>,
}

fn check_gated(cases: &[Gated]) {
    for case in cases {
        let session = (case.session)();
        let want: Vec<Denial> = case
            .denials
            .iter()
            .map(|&(op, resource)| denial(op, resource))
            .collect();
        let api = case.api;
        for version in versions(api) {
            let req = (case.request)(version);
            let (verdict, denials) = run(&session, &req);
            let at = format!("{api:?} v{version}");
            assert_eq!(denials, want, "{at}");
            match case.refused {
                None => assert_untouched(verdict),
                Some(code) => assert_eq!(refusal(verdict, &req), code, "{at}"),
            }
        }
    }
}

/// The error code of a gated API's answer, after checking the rest of it.
fn refusal(verdict: Verdict, req: &Request) -> i16 {
    match req.api {
        ApiKey::InitProducerId => {
            let resp: InitProducerIdResponse = answer_of(verdict, req);
            assert_eq!(resp.producer_id, ProducerId(-1));
            assert_eq!(resp.producer_epoch, -1);
            resp.error_code
        }
        ApiKey::AddOffsetsToTxn => answer_of::<AddOffsetsToTxnResponse>(verdict, req).error_code,
        ApiKey::EndTxn => answer_of::<EndTxnResponse>(verdict, req).error_code,
        other => panic!("{other:?} is not gated"),
    }
}

/// Read on every topic, Write on none: no IdempotentWrite on the cluster.
fn reader() -> Arc<Session> {
    session_with(&["role DeveloperRead Topic:*"])
}

/// Write on some topic implies IdempotentWrite on the cluster.
#[test]
fn init_producer_id_without_transactional_id_needs_idempotent_write() {
    check_gated(&[
        Gated {
            api: ApiKey::InitProducerId,
            session: app,
            request: |v| request(ApiKey::InitProducerId, v, &init_producer_id(None)),
            denials: &[],
            refused: None,
        },
        Gated {
            api: ApiKey::InitProducerId,
            session: reader,
            request: |v| request(ApiKey::InitProducerId, v, &init_producer_id(None)),
            denials: &[(Operation::IdempotentWrite, "Cluster:kafka-cluster")],
            refused: Some(CLUSTER_DENIED),
        },
    ]);
}

#[test]
fn init_producer_id_with_transactional_id_needs_write_on_it() {
    check_gated(&[
        Gated {
            api: ApiKey::InitProducerId,
            session: app,
            request: |v| {
                request(
                    ApiKey::InitProducerId,
                    v,
                    &init_producer_id(Some("txn-app")),
                )
            },
            denials: &[],
            refused: None,
        },
        Gated {
            api: ApiKey::InitProducerId,
            session: app,
            request: |v| {
                request(
                    ApiKey::InitProducerId,
                    v,
                    &init_producer_id(Some("txn-other")),
                )
            },
            denials: &[(Operation::Write, "TransactionalId:txn-other")],
            refused: Some(TXN_DENIED),
        },
    ]);
}

fn add_partitions_codes(r: &AddPartitionsToTxnResponse) -> PartitionCodes {
    codes(
        &r.results_by_topic_v3_and_below,
        |t| (&t.name, t.results_by_partition.as_slice()),
        |p| (p.partition_index, p.partition_error_code),
    )
}

fn txn_offset_commit_codes(r: &TxnOffsetCommitResponse) -> PartitionCodes {
    codes(
        &r.topics,
        |t| (&t.name, t.partitions.as_slice()),
        |p| (p.partition_index, p.error_code),
    )
}

#[test]
fn add_partitions_to_txn_needs_write_on_the_transaction_and_every_topic() {
    let session = app();
    for version in versions(ApiKey::AddPartitionsToTxn) {
        let ok = request(
            ApiKey::AddPartitionsToTxn,
            version,
            &add_partitions_to_txn("txn-app", &[("orders-eu", &[0, 1])]),
        );
        let (verdict, denials) = run(&session, &ok);
        assert_untouched(verdict);
        assert!(denials.is_empty());

        let mixed = request(
            ApiKey::AddPartitionsToTxn,
            version,
            &add_partitions_to_txn("txn-app", &[("orders-eu", &[0]), ("secret", &[1, 2])]),
        );
        let (verdict, denials) = run(&session, &mixed);
        assert_eq!(denials, [denial(Operation::Write, "Topic:secret")]);
        let resp: AddPartitionsToTxnResponse = answer_of(verdict, &mixed);
        assert_eq!(
            add_partitions_codes(&resp),
            [
                ("orders-eu".to_owned(), vec![(0, 55)]),
                (
                    "secret".to_owned(),
                    vec![(1, TOPIC_DENIED), (2, TOPIC_DENIED)]
                ),
            ],
            "v{version}: nothing is added when any topic is refused"
        );

        let txn = request(
            ApiKey::AddPartitionsToTxn,
            version,
            &add_partitions_to_txn("txn-other", &[("orders-eu", &[0])]),
        );
        let (verdict, denials) = run(&session, &txn);
        assert_eq!(
            denials,
            [denial(Operation::Write, "TransactionalId:txn-other")]
        );
        let resp: AddPartitionsToTxnResponse = answer_of(verdict, &txn);
        assert_eq!(
            add_partitions_codes(&resp),
            [("orders-eu".to_owned(), vec![(0, TXN_DENIED)])]
        );
    }
}

#[test]
fn add_offsets_and_end_txn_check_the_transaction_then_the_group() {
    check_gated(&[
        Gated {
            api: ApiKey::AddOffsetsToTxn,
            session: app,
            request: |v| {
                request(
                    ApiKey::AddOffsetsToTxn,
                    v,
                    &add_offsets_to_txn("txn-app", "app-1"),
                )
            },
            denials: &[],
            refused: None,
        },
        Gated {
            api: ApiKey::AddOffsetsToTxn,
            session: app,
            request: |v| {
                request(
                    ApiKey::AddOffsetsToTxn,
                    v,
                    &add_offsets_to_txn("txn-app", "other-1"),
                )
            },
            denials: &[(Operation::Read, "Group:other-1")],
            refused: Some(GROUP_DENIED),
        },
        Gated {
            api: ApiKey::AddOffsetsToTxn,
            session: app,
            request: |v| {
                request(
                    ApiKey::AddOffsetsToTxn,
                    v,
                    &add_offsets_to_txn("txn-other", "app-1"),
                )
            },
            denials: &[(Operation::Write, "TransactionalId:txn-other")],
            refused: Some(TXN_DENIED),
        },
        Gated {
            api: ApiKey::EndTxn,
            session: app,
            request: |v| request(ApiKey::EndTxn, v, &end_txn("txn-app")),
            denials: &[],
            refused: None,
        },
        Gated {
            api: ApiKey::EndTxn,
            session: app,
            request: |v| request(ApiKey::EndTxn, v, &end_txn("txn-other")),
            denials: &[(Operation::Write, "TransactionalId:txn-other")],
            refused: Some(TXN_DENIED),
        },
    ]);
}

#[test]
fn txn_offset_commit_refuses_topics_one_by_one_and_groups_whole() {
    let session = app();
    for version in versions(ApiKey::TxnOffsetCommit) {
        let req = request(
            ApiKey::TxnOffsetCommit,
            version,
            &txn_offset_commit("txn-app", "app-1", &[("events-a", &[0]), ("secret", &[1])]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Read, "Topic:secret")]);
        let f = forwarded(verdict);
        let sent: TxnOffsetCommitRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(sent.topics.len(), 1);
        assert_eq!(sent.topics[0].name, topic("events-a"));
        let mut upstream = TxnOffsetCommitResponse::default();
        upstream.topics = vec![{
            let mut t = TxnOffsetCommitResponseTopic::default();
            t.name = topic("events-a");
            t.partitions = vec![TxnOffsetCommitResponsePartition::default()];
            t
        }];
        let resp = patched(f.patch.expect("a patch"), version, &upstream);
        assert_eq!(
            txn_offset_commit_codes(&resp),
            [
                ("events-a".to_owned(), vec![(0, 0)]),
                ("secret".to_owned(), vec![(1, TOPIC_DENIED)]),
            ],
            "v{version}"
        );

        let other_group = request(
            ApiKey::TxnOffsetCommit,
            version,
            &txn_offset_commit("txn-app", "other-1", &[("events-a", &[0])]),
        );
        let (verdict, denials) = run(&session, &other_group);
        assert_eq!(denials, [denial(Operation::Read, "Group:other-1")]);
        let resp: TxnOffsetCommitResponse = answer_of(verdict, &other_group);
        assert_eq!(
            txn_offset_commit_codes(&resp),
            [("events-a".to_owned(), vec![(0, GROUP_DENIED)])]
        );
    }
}
