//! InitProducerId and the transaction APIs.

use super::*;

#[test]
fn init_producer_id_without_transactional_id_needs_idempotent_write() {
    // Write on some topic implies IdempotentWrite on the cluster.
    let writer = app();
    let reader = session_with(&["role DeveloperRead Topic:*"]);
    for version in versions(ApiKey::InitProducerId) {
        let req = request(ApiKey::InitProducerId, version, &init_producer_id(None));
        let (verdict, denials) = run(&writer, &req);
        assert_untouched(verdict);
        assert!(denials.is_empty());

        let (verdict, denials) = run(&reader, &req);
        assert_eq!(
            denials,
            [denial(Operation::IdempotentWrite, "Cluster:kafka-cluster")]
        );
        let resp: InitProducerIdResponse = answer_of(verdict, &req);
        assert_eq!(resp.error_code, CLUSTER_DENIED, "v{version}");
        assert_eq!(resp.producer_id, ProducerId(-1));
        assert_eq!(resp.producer_epoch, -1);
    }
}

#[test]
fn init_producer_id_with_transactional_id_needs_write_on_it() {
    let session = app();
    for version in versions(ApiKey::InitProducerId) {
        let req = request(
            ApiKey::InitProducerId,
            version,
            &init_producer_id(Some("txn-app")),
        );
        assert_untouched(run(&session, &req).0);

        let req = request(
            ApiKey::InitProducerId,
            version,
            &init_producer_id(Some("txn-other")),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [denial(Operation::Write, "TransactionalId:txn-other")]
        );
        let resp: InitProducerIdResponse = answer_of(verdict, &req);
        assert_eq!(resp.error_code, TXN_DENIED, "v{version}");
        assert_eq!(resp.producer_id, ProducerId(-1));
    }
}

fn add_partitions_codes(r: &AddPartitionsToTxnResponse) -> Vec<(String, Vec<(i32, i16)>)> {
    r.results_by_topic_v3_and_below
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.results_by_partition
                    .iter()
                    .map(|p| (p.partition_index, p.partition_error_code))
                    .collect(),
            )
        })
        .collect()
}

fn txn_offset_commit_codes(r: &TxnOffsetCommitResponse) -> Vec<(String, Vec<(i32, i16)>)> {
    r.topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code))
                    .collect(),
            )
        })
        .collect()
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
    let session = app();
    for version in versions(ApiKey::AddOffsetsToTxn) {
        let ok = request(
            ApiKey::AddOffsetsToTxn,
            version,
            &add_offsets_to_txn("txn-app", "app-1"),
        );
        assert_untouched(run(&session, &ok).0);
        let group_refused = request(
            ApiKey::AddOffsetsToTxn,
            version,
            &add_offsets_to_txn("txn-app", "other-1"),
        );
        let (verdict, denials) = run(&session, &group_refused);
        assert_eq!(denials, [denial(Operation::Read, "Group:other-1")]);
        let resp: AddOffsetsToTxnResponse = answer_of(verdict, &group_refused);
        assert_eq!(resp.error_code, GROUP_DENIED);
        let txn_refused = request(
            ApiKey::AddOffsetsToTxn,
            version,
            &add_offsets_to_txn("txn-other", "app-1"),
        );
        let resp: AddOffsetsToTxnResponse = answer_of(run(&session, &txn_refused).0, &txn_refused);
        assert_eq!(resp.error_code, TXN_DENIED, "v{version}");
    }
    for version in versions(ApiKey::EndTxn) {
        assert_untouched(
            run(
                &session,
                &request(ApiKey::EndTxn, version, &end_txn("txn-app")),
            )
            .0,
        );
        let req = request(ApiKey::EndTxn, version, &end_txn("txn-other"));
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [denial(Operation::Write, "TransactionalId:txn-other")]
        );
        let resp: EndTxnResponse = answer_of(verdict, &req);
        assert_eq!(resp.error_code, TXN_DENIED, "v{version}");
    }
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
