//! Configs: DescribeConfigs (DescribeConfigs), AlterConfigs and IncrementalAlterConfigs
//! (AlterConfigs), each on the resource a config belongs to ([`config_target`]).

use kafka_protocol::messages::alter_configs_request::AlterConfigsRequest;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResponse;
use kafka_protocol::messages::{
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use poolgate::authz::{Operation, Resource};
use poolgate::gate::Session;

use super::super::wire::{Request, WireError};
use super::{
    CLUSTER_DENIED, Context, Denial, GROUP_DENIED, TOPIC_DENIED, Verdict, allowed, deny, split,
};

/// Kafka's config resource types.
const CONFIG_TOPIC: i8 = 2;
const CONFIG_BROKER: i8 = 4;
const CONFIG_BROKER_LOGGER: i8 = 8;
const CONFIG_CLIENT_METRICS: i8 = 16;
const CONFIG_GROUP: i8 = 32;

/// The three config APIs alike: each resource needs `$op` on its config target
/// ([`config_target`]); refused ones come back in `$results` with their error.
macro_rules! config_check {
    ($req:expr, $cx:expr, $denials:expr, $Req:ty, $Resp:ty, $results:ident, $Result:ty, $op:expr) => {{
        let mut r: $Req = $req.decode()?;
        let mut refused = Vec::new();
        r.resources.retain(|c| {
            match config_target($cx.session, c.resource_type, c.resource_name.as_str(), $op) {
                Ok(()) => true,
                Err((code, res)) => {
                    deny($denials, $op, res);
                    refused.push((c.resource_type, c.resource_name.clone(), code));
                    false
                }
            }
        });
        let (stripped, empty) = (!refused.is_empty(), r.resources.is_empty());
        Ok(split::<_, $Resp, _>(
            $req,
            r,
            (stripped, empty, false),
            move |resp| {
                resp.$results
                    .extend(refused.into_iter().map(|(kind, name, code)| {
                        let mut d = <$Result>::default();
                        d.resource_type = kind;
                        d.resource_name = name;
                        d.error_code = code;
                        d
                    }));
            },
        ))
    }};
}

/// DescribeConfigs (v1-4): DescribeConfigs on each resource's config target.
pub(super) fn describe_configs(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    config_check!(
        req,
        cx,
        denials,
        DescribeConfigsRequest,
        DescribeConfigsResponse,
        results,
        kafka_protocol::messages::describe_configs_response::DescribeConfigsResult,
        Operation::DescribeConfigs
    )
}

/// AlterConfigs (v0-2): AlterConfigs on each resource's config target.
pub(super) fn alter_configs(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    config_check!(
        req,
        cx,
        denials,
        AlterConfigsRequest,
        AlterConfigsResponse,
        responses,
        kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse,
        Operation::AlterConfigs
    )
}

/// IncrementalAlterConfigs (v0-1): AlterConfigs on each resource's config target.
pub(super) fn incremental_alter_configs(
    req: &Request,
    cx: &Context<'_>,
    denials: &mut Vec<Denial>,
) -> Result<Verdict, WireError> {
    config_check!(
        req,
        cx,
        denials,
        IncrementalAlterConfigsRequest,
        IncrementalAlterConfigsResponse,
        responses,
        kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse,
        Operation::AlterConfigs
    )
}

/// Whether a config resource may be described or altered, and if not the error code and the
/// resource refused: a topic's configs are the topic's, a group's the group's, and brokers',
/// broker loggers' and client-metrics subscriptions' configs are the cluster's.
fn config_target<'a>(
    s: &Session,
    kind: i8,
    resource_name: &'a str,
    op: Operation,
) -> Result<(), (i16, Resource<'a>)> {
    let (resource, code) = match kind {
        CONFIG_TOPIC => (Resource::topic(resource_name), TOPIC_DENIED),
        CONFIG_GROUP => (Resource::group(resource_name), GROUP_DENIED),
        CONFIG_BROKER | CONFIG_BROKER_LOGGER | CONFIG_CLIENT_METRICS => {
            (Resource::cluster(), CLUSTER_DENIED)
        }
        _ => return Err((CLUSTER_DENIED, Resource::cluster())),
    };
    if allowed(s, op, resource) {
        Ok(())
    } else {
        Err((code, resource))
    }
}
