//! Broker addresses in responses: the one place that decides which address a client is given
//! for each broker it learns of (Metadata's brokers, FindCoordinator's coordinators,
//! DescribeCluster's brokers), so that clients keep talking to the gateway. It edits addresses
//! only, never which brokers or topics a response holds.

use kafka_protocol::messages::{
    BrokerId, DescribeClusterResponse, FindCoordinatorResponse, MetadataResponse,
};
use kafka_protocol::protocol::StrBytes;

/// Where clients reach each broker: for now the gateway's advertised address, for every node.
pub(super) struct Addresses {
    advertised: (StrBytes, i32),
}

impl Addresses {
    /// Every broker at `advertised` (the connection's [`Context::advertised`](super::Context)).
    pub(super) fn new(advertised: &(StrBytes, i32)) -> Addresses {
        Addresses {
            advertised: advertised.clone(),
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

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    use kafka_protocol::messages::metadata_response::MetadataResponseBroker;

    use super::*;

    const GW: (&str, i32) = ("gw.example", 19092);
    const COORDINATOR_NOT_AVAILABLE: i16 = 15;

    /// A broker's node id, host and port, as a response lists them.
    type Listed = Vec<(i32, String, i32)>;

    fn host(node: i32) -> StrBytes {
        StrBytes::from_string(format!("broker-{node}.internal"))
    }

    /// Each response, as the broker sends it (brokers 1 and 2 at their own addresses, or an
    /// error), through [`Addresses`], and what the client must see.
    #[expect(
        clippy::type_complexity,
        reason = "a table of (name, rewrite, expected)"
    )]
    const CASES: &[(&str, fn(&Addresses) -> Listed, &[(i32, &str, i32)])] = &[
        (
            "Metadata",
            |a| {
                let mut r = MetadataResponse::default();
                r.brokers = [1, 2]
                    .map(|n| {
                        MetadataResponseBroker::default()
                            .with_node_id(BrokerId(n))
                            .with_host(host(n))
                            .with_port(9092)
                    })
                    .to_vec();
                a.metadata(&mut r);
                r.brokers
                    .iter()
                    .map(|b| (b.node_id.0, b.host.to_string(), b.port))
                    .collect()
            },
            &[(1, GW.0, GW.1), (2, GW.0, GW.1)],
        ),
        (
            "DescribeCluster",
            |a| {
                let mut r = DescribeClusterResponse::default();
                r.brokers = [1, 2]
                    .map(|n| {
                        DescribeClusterBroker::default()
                            .with_broker_id(BrokerId(n))
                            .with_host(host(n))
                            .with_port(9092)
                    })
                    .to_vec();
                a.describe_cluster(&mut r);
                r.brokers
                    .iter()
                    .map(|b| (b.broker_id.0, b.host.to_string(), b.port))
                    .collect()
            },
            &[(1, GW.0, GW.1), (2, GW.0, GW.1)],
        ),
        (
            "FindCoordinator v0-3",
            |a| {
                let mut r = FindCoordinatorResponse::default()
                    .with_node_id(BrokerId(2))
                    .with_host(host(2))
                    .with_port(9092);
                a.find_coordinator(&mut r);
                vec![(r.node_id.0, r.host.to_string(), r.port)]
            },
            &[(2, GW.0, GW.1)],
        ),
        (
            "FindCoordinator v0-3, an error",
            |a| {
                let mut r = FindCoordinatorResponse::default()
                    .with_error_code(COORDINATOR_NOT_AVAILABLE)
                    .with_node_id(BrokerId(-1))
                    .with_port(-1);
                a.find_coordinator(&mut r);
                vec![(r.node_id.0, r.host.to_string(), r.port)]
            },
            &[(-1, "", -1)],
        ),
        (
            "FindCoordinator v4+, one found and one error",
            |a| {
                let mut r = FindCoordinatorResponse::default();
                r.coordinators = vec![
                    Coordinator::default()
                        .with_node_id(BrokerId(1))
                        .with_host(host(1))
                        .with_port(9092),
                    Coordinator::default()
                        .with_error_code(COORDINATOR_NOT_AVAILABLE)
                        .with_node_id(BrokerId(-1))
                        .with_port(-1),
                ];
                a.find_coordinator(&mut r);
                r.coordinators
                    .iter()
                    .map(|c| (c.node_id.0, c.host.to_string(), c.port))
                    .collect()
            },
            &[(1, GW.0, GW.1), (-1, "", -1)],
        ),
    ];

    #[test]
    fn every_broker_address_is_the_advertised_one_and_errors_are_kept() {
        let addresses = Addresses::new(&(StrBytes::from_static_str(GW.0), GW.1));
        for (name, rewrite, expected) in CASES {
            let expected: Listed = expected
                .iter()
                .map(|&(node, host, port)| (node, host.to_owned(), port))
                .collect();
            assert_eq!(rewrite(&addresses), expected, "{name}");
        }
    }
}
