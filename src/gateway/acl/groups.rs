//! Consumer groups: membership (JoinGroup, SyncGroup, Heartbeat, LeaveGroup: Read on the
//! group) and administration (DescribeGroups: Describe; ListGroups: lists only the groups the
//! session may Describe; DeleteGroups: Delete).

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::Encodable;
use poolgate::authz::{Operation, Resource};
use poolgate::gate::Session;

use super::super::wire::{Request, WireError};
use super::{
    Context, Denial, GROUP_DENIED, Verdict, allowed, answer, authorized_ops, deny, forward, patch,
    sift, split,
};

/// JoinGroup (v0-9): Read on the group.
pub(super) fn join_group(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let r: JoinGroupRequest = req.decode()?;
    group_gate::<JoinGroupResponse>(req, cx.session, r.group_id.0.as_str(), denials, |resp| {
        resp.error_code = GROUP_DENIED;
        resp.generation_id = -1;
    })
}

/// SyncGroup (v0-5): Read on the group.
pub(super) fn sync_group(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let r: SyncGroupRequest = req.decode()?;
    group_gate::<SyncGroupResponse>(req, cx.session, r.group_id.0.as_str(), denials, |resp| {
        resp.error_code = GROUP_DENIED;
    })
}

/// Heartbeat (v0-4): Read on the group.
pub(super) fn heartbeat(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let r: HeartbeatRequest = req.decode()?;
    group_gate::<HeartbeatResponse>(req, cx.session, r.group_id.0.as_str(), denials, |resp| {
        resp.error_code = GROUP_DENIED;
    })
}

/// LeaveGroup (v0-5): Read on the group.
pub(super) fn leave_group(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let r: LeaveGroupRequest = req.decode()?;
    group_gate::<LeaveGroupResponse>(req, cx.session, r.group_id.0.as_str(), denials, |resp| {
        resp.error_code = GROUP_DENIED;
    })
}

/// A request about one group membership: forwarded as received with Read on `group`, else
/// answered with `refuse`'s response.
fn group_gate<T: Default + Encodable>(
    req: &Request,
    s: &Session,
    group: &str,
    denials: &mut Vec<Denial>,
    refuse: impl FnOnce(&mut T),
) -> Result<Verdict, WireError> {
    if allowed(s, Operation::Read, Resource::group(group)) {
        Ok(forward(None))
    } else {
        deny(denials, Operation::Read, Resource::group(group));
        answer::<T, _>(req, refuse)
    }
}

/// DescribeGroups (v0-6): Describe on each group (30); authorized operations are the
/// session's.
pub(super) fn describe_groups(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let mut r: DescribeGroupsRequest = req.decode()?;
    let refused = sift(
        cx.session,
        &mut r.groups,
        Operation::Describe,
        |g| Resource::group(g.0.as_str()),
        denials,
    );
    let (stripped, empty) = (!refused.is_empty(), r.groups.is_empty());
    let want_ops = r.include_authorized_operations;
    let session = Arc::clone(cx.session);
    Ok(split::<_, DescribeGroupsResponse, _>(
        req,
        r,
        (stripped, empty, want_ops),
        move |resp| {
            if want_ops {
                for g in &mut resp.groups {
                    g.authorized_operations =
                        authorized_ops(&session, Resource::group(g.group_id.0.as_str()));
                }
            }
            resp.groups.extend(refused.into_iter().map(|g| {
                let mut d = DescribedGroup::default();
                d.group_id = g;
                d.error_code = GROUP_DENIED;
                d.authorized_operations = i32::MIN;
                d
            }));
        },
    ))
}

/// ListGroups (v0-5): every group with Describe on the cluster, else only the groups the
/// session may Describe.
pub(super) fn list_groups(
    _req: &Request,
    cx: &Context<'_>,
    _denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    if allowed(cx.session, Operation::Describe, Resource::cluster()) {
        return Ok(forward(None));
    }
    let session = Arc::clone(cx.session);
    Ok(forward(Some(patch::<ListGroupsResponse, _>(move |resp| {
        resp.groups.retain(|g| {
            allowed(
                &session,
                Operation::Describe,
                Resource::group(g.group_id.0.as_str()),
            )
        });
    }))))
}

/// DeleteGroups (v0-2): Delete on each group (30).
pub(super) fn delete_groups(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    let mut r: DeleteGroupsRequest = req.decode()?;
    let refused = sift(
        cx.session,
        &mut r.groups_names,
        Operation::Delete,
        |g| Resource::group(g.0.as_str()),
        denials,
    );
    let (stripped, empty) = (!refused.is_empty(), r.groups_names.is_empty());
    Ok(split::<_, DeleteGroupsResponse, _>(
        req,
        r,
        (stripped, empty, false),
        move |resp| {
            resp.results.extend(refused.into_iter().map(|g| {
                let mut d = DeletableGroupResult::default();
                d.group_id = g;
                d.error_code = GROUP_DENIED;
                d
            }));
        },
    ))
}
