//! Consumer groups: membership, DescribeGroups, ListGroups, DeleteGroups.

use super::*;

/// A group membership API: its request for a group, and its answer to a refused one, read as
/// its error code (after checking the rest of the answer).
struct Membership {
    api: ApiKey,
    request: fn(&str, i16) -> Request,
    refused: fn(Verdict, &Request) -> i16,
}

const MEMBERSHIP: &[Membership] = &[
    Membership {
        api: ApiKey::JoinGroup,
        request: |g, v| request(ApiKey::JoinGroup, v, &join_group(g)),
        refused: |verdict, req| {
            let resp: JoinGroupResponse = answer_of(verdict, req);
            assert_eq!(resp.generation_id, -1);
            resp.error_code
        },
    },
    Membership {
        api: ApiKey::Heartbeat,
        request: |g, v| request(ApiKey::Heartbeat, v, &heartbeat(g)),
        refused: |verdict, req| answer_of::<HeartbeatResponse>(verdict, req).error_code,
    },
    Membership {
        api: ApiKey::SyncGroup,
        request: |g, v| request(ApiKey::SyncGroup, v, &sync_group(g)),
        refused: |verdict, req| answer_of::<SyncGroupResponse>(verdict, req).error_code,
    },
    Membership {
        api: ApiKey::LeaveGroup,
        request: |g, v| request(ApiKey::LeaveGroup, v, &leave_group(g, v)),
        refused: |verdict, req| answer_of::<LeaveGroupResponse>(verdict, req).error_code,
    },
];

#[test]
fn group_membership_requests_need_read_on_the_group() {
    let session = app();
    for m in MEMBERSHIP {
        for version in versions(m.api) {
            let at = format!("{:?} v{version}", m.api);
            let req = (m.request)("other-1", version);
            let (verdict, denials) = run(&session, &req);
            assert_eq!(denials, [denial(Operation::Read, "Group:other-1")], "{at}");
            assert_eq!((m.refused)(verdict, &req), GROUP_DENIED, "{at}");

            let req = (m.request)("app-1", version);
            let (verdict, denials) = run(&session, &req);
            assert_untouched(verdict);
            assert!(denials.is_empty(), "{at}");
        }
    }
}

#[test]
fn describe_on_a_group_is_not_enough_to_join_it() {
    let session = session_with(&["allow Describe Group:app-*"]);
    let req = request(ApiKey::JoinGroup, 9, &join_group("app-1"));
    let (verdict, denials) = run(&session, &req);
    assert_eq!(denials, [denial(Operation::Read, "Group:app-1")]);
    let resp: JoinGroupResponse = answer_of(verdict, &req);
    assert_eq!(resp.error_code, GROUP_DENIED);
}

#[test]
fn describe_groups_authorized_operations_are_the_sessions() {
    let session = app();
    for version in 3..=6 {
        let mut body = describe_groups(&["app-1"]);
        body.include_authorized_operations = true;
        let req = request(ApiKey::DescribeGroups, version, &body);
        let f = forwarded(run(&session, &req).0);
        let mut upstream = DescribeGroupsResponse::default();
        upstream.groups = vec![described("app-1").with_authorized_operations(bits(&[
            OP_READ,
            OP_DELETE,
            OP_DESCRIBE,
        ]))];
        let resp = match f.patch {
            Some(p) => patched(p, version, &upstream),
            None => upstream,
        };
        assert_eq!(
            resp.groups[0].authorized_operations,
            bits(&[OP_READ, OP_DESCRIBE]),
            "v{version}: the session may not Delete `app-1`"
        );
    }
}

#[test]
fn list_groups_shows_only_describable_groups() {
    let session = app();
    for version in versions(ApiKey::ListGroups) {
        let req = request(ApiKey::ListGroups, version, &ListGroupsRequest::default());
        let (verdict, denials) = run(&session, &req);
        assert!(denials.is_empty(), "filtering a listing is not a denial");
        let f = forwarded(verdict);
        assert!(f.frame.is_none());
        let mut upstream = ListGroupsResponse::default();
        upstream.groups = ["app-1", "other-1", "app-tmp-2", "secret-group"]
            .iter()
            .map(|g| {
                ListedGroup::default()
                    .with_group_id(group(g))
                    .with_protocol_type(s("consumer"))
            })
            .collect();
        let resp = patched(f.patch.expect("a filter"), version, &upstream);
        let names: Vec<_> = resp.groups.iter().map(|g| g.group_id.0.as_str()).collect();
        assert_eq!(names, ["app-1", "app-tmp-2"], "v{version}");
    }
}

#[test]
fn list_groups_shows_every_group_with_describe_on_the_cluster() {
    let admin = cluster_admin();
    let req = request(ApiKey::ListGroups, 4, &ListGroupsRequest::default());
    let f = forwarded(run(&admin, &req).0);
    let mut upstream = ListGroupsResponse::default();
    upstream.groups = vec![
        ListedGroup::default().with_group_id(group("app-1")),
        ListedGroup::default().with_group_id(group("other-1")),
    ];
    let resp = match f.patch {
        Some(p) => patched(p, 4, &upstream),
        None => upstream,
    };
    assert_eq!(resp.groups.len(), 2);
}
