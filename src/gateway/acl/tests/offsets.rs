//! ListOffsets, OffsetCommit and OffsetFetch.

use super::*;

#[test]
fn list_offsets_partly_refused_forwards_the_describable_topics() {
    let session = app();
    for version in versions(ApiKey::ListOffsets) {
        // Describe is implied by Read (events-*) and Write (orders-*); `secret` has nothing.
        let req = request(
            ApiKey::ListOffsets,
            version,
            &list_offsets(&[("events-a", &[0]), ("secret", &[1, 2]), ("orders-eu", &[0])]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Describe, "Topic:secret")]);
        let f = forwarded(verdict);
        let sent: ListOffsetsRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        let names: Vec<_> = sent.topics.iter().map(|t| t.name.0.as_str()).collect();
        assert_eq!(names, ["events-a", "orders-eu"], "v{version}");

        let mut upstream = ListOffsetsResponse::default();
        upstream.topics = ["events-a", "orders-eu"]
            .iter()
            .map(|n| {
                ListOffsetsTopicResponse::default()
                    .with_name(topic(n))
                    .with_partitions(vec![
                        ListOffsetsPartitionResponse::default()
                            .with_partition_index(0)
                            .with_offset(12),
                    ])
            })
            .collect();
        let resp = patched(f.patch.expect("a patch"), version, &upstream);
        assert_eq!(
            list_offsets_codes(&resp),
            [
                ("events-a".to_owned(), vec![(0, 0)]),
                ("orders-eu".to_owned(), vec![(0, 0)]),
                (
                    "secret".to_owned(),
                    vec![(1, TOPIC_DENIED), (2, TOPIC_DENIED)]
                ),
            ],
            "v{version}"
        );
    }
}

#[test]
fn list_offsets_all_refused_or_all_allowed() {
    let session = app();
    for version in versions(ApiKey::ListOffsets) {
        let req = request(
            ApiKey::ListOffsets,
            version,
            &list_offsets(&[("secret", &[0])]),
        );
        let resp: ListOffsetsResponse = answer_of(run(&session, &req).0, &req);
        assert_eq!(
            list_offsets_codes(&resp),
            [("secret".to_owned(), vec![(0, TOPIC_DENIED)])]
        );

        let req = request(
            ApiKey::ListOffsets,
            version,
            &list_offsets(&[("events-a", &[0])]),
        );
        assert_untouched(run(&session, &req).0);
    }
}

#[test]
fn offset_commit_with_a_refused_group_fails_every_partition_with_30() {
    let session = app();
    for version in versions(ApiKey::OffsetCommit) {
        let req = request(
            ApiKey::OffsetCommit,
            version,
            &offset_commit("other-1", &[("events-a", &[0, 1]), ("secret", &[2])]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Read, "Group:other-1")]);
        let resp: OffsetCommitResponse = answer_of(verdict, &req);
        assert_eq!(
            offset_commit_codes(&resp),
            [
                (
                    "events-a".to_owned(),
                    vec![(0, GROUP_DENIED), (1, GROUP_DENIED)]
                ),
                ("secret".to_owned(), vec![(2, GROUP_DENIED)]),
            ],
            "v{version}"
        );
    }
}

#[test]
fn offset_commit_with_an_allowed_group_refuses_only_the_unreadable_topic() {
    let session = app();
    for version in versions(ApiKey::OffsetCommit) {
        let req = request(
            ApiKey::OffsetCommit,
            version,
            &offset_commit("app-1", &[("events-a", &[0, 1]), ("secret", &[2])]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Read, "Topic:secret")]);
        let f = forwarded(verdict);
        let sent: OffsetCommitRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(sent.group_id, group("app-1"));
        let names: Vec<_> = sent.topics.iter().map(|t| t.name.0.as_str()).collect();
        assert_eq!(names, ["events-a"], "v{version}");
        let resp = patched(
            f.patch.expect("a patch"),
            version,
            &offset_commit_ok(&[("events-a", &[0, 1])]),
        );
        assert_eq!(
            offset_commit_codes(&resp),
            [
                ("events-a".to_owned(), vec![(0, 0), (1, 0)]),
                ("secret".to_owned(), vec![(2, TOPIC_DENIED)]),
            ],
            "v{version}"
        );
    }
}

#[test]
fn offset_commit_all_allowed_or_all_topics_refused() {
    let session = app();
    let req = request(
        ApiKey::OffsetCommit,
        8,
        &offset_commit("app-1", &[("events-a", &[0])]),
    );
    assert_untouched(run(&session, &req).0);

    let req = request(
        ApiKey::OffsetCommit,
        8,
        &offset_commit("app-1", &[("secret", &[0])]),
    );
    let resp: OffsetCommitResponse = answer_of(run(&session, &req).0, &req);
    assert_eq!(
        offset_commit_codes(&resp),
        [("secret".to_owned(), vec![(0, TOPIC_DENIED)])]
    );
}

#[test]
fn offset_fetch_with_a_refused_group_is_answered_with_30() {
    let session = app();
    for version in versions(ApiKey::OffsetFetch) {
        let req = request(
            ApiKey::OffsetFetch,
            version,
            &offset_fetch("other-1", Some(&[("events-a", &[0, 1])])),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Describe, "Group:other-1")]);
        let resp: OffsetFetchResponse = answer_of(verdict, &req);
        if version >= 2 {
            assert_eq!(resp.error_code, GROUP_DENIED, "v{version}: top-level error");
            assert!(resp.topics.is_empty());
        } else {
            // v1 has no top-level error code: each partition carries it.
            assert_eq!(
                offset_fetch_codes(&resp),
                [(
                    "events-a".to_owned(),
                    vec![(0, GROUP_DENIED), (1, GROUP_DENIED)]
                )]
            );
            assert_eq!(resp.topics[0].partitions[0].committed_offset, -1);
        }
    }
    // Every topic (null, from v2).
    for version in 2..=7 {
        let req = request(ApiKey::OffsetFetch, version, &offset_fetch("other-1", None));
        let resp: OffsetFetchResponse = answer_of(run(&session, &req).0, &req);
        assert_eq!(resp.error_code, GROUP_DENIED, "v{version}");
    }
}

#[test]
fn offset_fetch_partly_refused_topics_get_29() {
    let session = app();
    for version in versions(ApiKey::OffsetFetch) {
        let req = request(
            ApiKey::OffsetFetch,
            version,
            &offset_fetch("app-1", Some(&[("secret", &[3]), ("events-a", &[0])])),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Describe, "Topic:secret")]);
        let f = forwarded(verdict);
        let sent: OffsetFetchRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        let names: Vec<_> = sent
            .topics
            .as_ref()
            .unwrap()
            .iter()
            .map(|t| t.name.0.as_str())
            .collect();
        assert_eq!(names, ["events-a"], "v{version}");
        let resp = patched(
            f.patch.expect("a patch"),
            version,
            &offset_fetch_ok(&[("events-a", &[0])]),
        );
        assert_eq!(
            offset_fetch_codes(&resp),
            [
                ("events-a".to_owned(), vec![(0, 0)]),
                ("secret".to_owned(), vec![(3, TOPIC_DENIED)]),
            ],
            "v{version}"
        );
        assert_eq!(resp.topics[0].partitions[0].committed_offset, 77);

        let req = request(
            ApiKey::OffsetFetch,
            version,
            &offset_fetch("app-1", Some(&[("secret", &[3])])),
        );
        let resp: OffsetFetchResponse = answer_of(run(&session, &req).0, &req);
        assert_eq!(
            offset_fetch_codes(&resp),
            [("secret".to_owned(), vec![(3, TOPIC_DENIED)])]
        );
    }
}

#[test]
fn offset_fetch_for_every_topic_hides_undescribable_topics() {
    let session = app();
    for version in 2..=7 {
        let req = request(ApiKey::OffsetFetch, version, &offset_fetch("app-1", None));
        let f = forwarded(run(&session, &req).0);
        let upstream = offset_fetch_ok(&[("events-a", &[0]), ("secret", &[0])]);
        let resp = match f.patch {
            Some(p) => patched(p, version, &upstream),
            None => upstream,
        };
        assert_eq!(
            offset_fetch_codes(&resp),
            [("events-a".to_owned(), vec![(0, 0)])],
            "v{version}: the offsets of `secret` leak"
        );
    }
}
