//! ListOffsets, OffsetCommit and OffsetFetch.

use super::*;

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
