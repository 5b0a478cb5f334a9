//! Broker addresses in responses: the one place that decides which address a client is given
//! for each broker it learns of (Metadata's brokers, FindCoordinator's coordinators,
//! DescribeCluster's brokers), so that clients keep talking to the gateway. It edits addresses
//! only, never which brokers or topics a response holds.

use kafka_protocol::messages::{
    BrokerId, DescribeClusterResponse, FindCoordinatorResponse, MetadataResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::Context;

/// Where clients reach each broker: for now the gateway's advertised address, for every node.
pub(super) struct Addresses {
    advertised: (StrBytes, i32),
}

impl Addresses {
    /// The addresses of the connection `cx` serves.
    pub(super) fn new(cx: &Context<'_>) -> Addresses {
        Addresses {
            advertised: cx.advertised.clone(),
        }
    }

    /// The host and port clients use for broker `node`.
    fn of(&self, _node: BrokerId) -> (StrBytes, i32) {
        self.advertised.clone()
    }

    /// Metadata: every broker listed.
    pub(super) fn metadata(&self, resp: &mut MetadataResponse) {
        for b in &mut resp.brokers {
            (b.host, b.port) = self.of(b.node_id);
        }
    }

    /// DescribeCluster: every broker listed.
    pub(super) fn describe_cluster(&self, resp: &mut DescribeClusterResponse) {
        for b in &mut resp.brokers {
            (b.host, b.port) = self.of(b.broker_id);
        }
    }

    /// FindCoordinator: the coordinator found (v0-3) or each one found (v4+); error answers
    /// keep the broker's (empty) address.
    pub(super) fn find_coordinator(&self, resp: &mut FindCoordinatorResponse) {
        if resp.error_code == 0 && !resp.host.is_empty() {
            (resp.host, resp.port) = self.of(resp.node_id);
        }
        for c in &mut resp.coordinators {
            if c.error_code == 0 {
                (c.host, c.port) = self.of(c.node_id);
            }
        }
    }
}
