//! Fetch: Read on each topic, follower fetches, and no fetch sessions.

use super::*;

#[test]
fn follower_fetch_is_refused_with_31() {
    let session = session_with(&["allow All Topic:*"]);
    for version in 7..=12 {
        let mut body = fetch(&[("events-a", &[0])]);
        body.replica_id = BrokerId(1);
        let req = request(ApiKey::Fetch, version, &body);
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [denial(Operation::ClusterAction, "Cluster:kafka-cluster")]
        );
        let resp: FetchResponse = answer_of(verdict, &req);
        assert_eq!(resp.error_code, CLUSTER_DENIED, "v{version}");
        assert_eq!(
            fetch_codes(&resp),
            [("events-a".to_owned(), vec![(0, CLUSTER_DENIED)])],
            "and on each partition, as below v7"
        );
    }
}

#[test]
fn follower_fetch_below_v7_still_carries_an_error() {
    let session = session_with(&["allow All Topic:*"]);
    for version in 4..=6 {
        let mut body = fetch(&[("events-a", &[0, 1])]);
        body.replica_id = BrokerId(1);
        let req = request(ApiKey::Fetch, version, &body);
        let (verdict, _) = run(&session, &req);
        let resp: FetchResponse = answer_of(verdict, &req);
        // No top-level error code below v7: the refusal must show per partition (Kafka's own
        // broker answers an unauthorized follower fetch with TOPIC_AUTHORIZATION_FAILED there).
        assert_eq!(
            fetch_codes(&resp),
            [(
                "events-a".to_owned(),
                vec![(0, CLUSTER_DENIED), (1, CLUSTER_DENIED)]
            )],
            "v{version}: the client cannot tell it was refused"
        );
    }
}

#[test]
fn a_fetch_asking_for_a_session_is_forwarded_as_a_sessionless_full_fetch() {
    let session = app();
    for version in 7..=12 {
        // Session id 0, epoch 0: a Java client asking the broker to create a fetch session.
        let mut body = fetch(&[("events-a", &[0, 1])]);
        body.session_epoch = 0;
        let req = request(ApiKey::Fetch, version, &body);
        let (verdict, denials) = run(&session, &req);
        assert!(denials.is_empty(), "{denials:?}");
        let f = forwarded(verdict);
        assert!(
            f.patch.is_none(),
            "v{version}: nothing to merge into the response"
        );
        let sent: FetchRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(
            (sent.session_id, sent.session_epoch),
            (0, -1),
            "v{version}: a full fetch that creates no session"
        );
        assert_eq!(sent.topics, body.topics);
        assert_eq!(sent.max_wait_ms, 500);

        // Partly refused: still sessionless, the refusals merged into the response.
        let mut body = fetch(&[("events-a", &[0]), ("secret", &[1])]);
        body.session_epoch = 0;
        let req = request(ApiKey::Fetch, version, &body);
        let f = forwarded(run(&session, &req).0);
        let sent: FetchRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!((sent.session_id, sent.session_epoch), (0, -1));
        assert_eq!(sent.topics.len(), 1);
        let resp = patched(
            f.patch.expect("a patch"),
            version,
            &fetch_ok(&[("events-a", &[0])]),
        );
        assert_eq!(
            fetch_codes(&resp),
            [
                ("events-a".to_owned(), vec![(0, 0)]),
                ("secret".to_owned(), vec![(1, TOPIC_DENIED)]),
            ]
        );
    }
}

#[test]
fn a_fetch_naming_a_fetch_session_is_answered_with_70_and_never_forwarded() {
    // (session id, epoch, topics): incremental fetches in a session (KIP-227), with or without
    // topics, full fetches that would close a session (and the broker would close it even if
    // another connection made it), and an incremental epoch without a session.
    type Topics<'a> = &'a [(&'a str, &'a [i32])];
    let cases: &[(i32, i32, Topics<'_>)] = &[
        (77, 3, &[]),
        (77, 3, &[("events-a", &[0])]),
        (77, 1, &[("secret", &[0])]),
        (77, 0, &[("events-a", &[0])]),
        (77, -1, &[("events-a", &[0])]),
        (-5, -1, &[]),
        (0, 5, &[("events-a", &[0])]),
        (0, -2, &[]),
    ];
    let session = app();
    for version in 7..=12 {
        for &(session_id, epoch, topics) in cases {
            let case = format!("v{version} session {session_id} epoch {epoch} {topics:?}");
            let mut body = fetch(topics);
            body.session_id = session_id;
            body.session_epoch = epoch;
            body.forgotten_topics_data = vec![
                ForgottenTopic::default()
                    .with_topic(topic("events-b"))
                    .with_partitions(vec![0]),
            ];
            let req = request(ApiKey::Fetch, version, &body);
            let (verdict, denials) = run(&session, &req);
            let resp: FetchResponse = answer_of(verdict, &req);
            assert_eq!(resp.error_code, FETCH_SESSION_ID_NOT_FOUND, "{case}");
            assert_eq!(resp.session_id, 0, "{case}");
            assert!(resp.responses.is_empty(), "{case}");
            assert_eq!(
                denials,
                [denial_for(
                    Operation::Read,
                    &format!("FetchSession:{session_id}"),
                    Reason::FetchSession
                )],
                "{case}"
            );
        }
    }
}

#[test]
fn forgotten_topics_are_dropped_from_a_sessionless_fetch() {
    let session = app();
    for version in 7..=12 {
        for epoch in [0, -1] {
            let mut body = fetch(&[("events-a", &[0])]);
            body.session_epoch = epoch;
            body.forgotten_topics_data = vec![
                ForgottenTopic::default()
                    .with_topic(topic("secret"))
                    .with_partitions(vec![0]),
            ];
            let req = request(ApiKey::Fetch, version, &body);
            let (verdict, denials) = run(&session, &req);
            assert!(denials.is_empty());
            let f = forwarded(verdict);
            assert!(f.patch.is_none());
            let sent: FetchRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
            assert!(
                sent.forgotten_topics_data.is_empty(),
                "v{version} epoch {epoch}: no session, nothing to forget"
            );
            assert_eq!((sent.session_id, sent.session_epoch), (0, -1));
        }
    }
}

#[test]
fn a_sessionless_fetch_without_topics_is_forwarded() {
    let session = app();
    for version in versions(ApiKey::Fetch) {
        let req = request(ApiKey::Fetch, version, &fetch(&[]));
        let (verdict, denials) = run(&session, &req);
        assert_untouched(verdict);
        assert!(denials.is_empty());
    }
}
