//! Broker addresses in responses: the one place that decides which address a client is given
//! for each broker it learns of (Metadata's brokers, FindCoordinator's coordinators,
//! DescribeCluster's brokers), so that clients keep talking to the gateway: each node at its own
//! gateway address ([`Nodes::advertise`]), a node the gateway cannot route left out (or, for a
//! coordinator, COORDINATOR_NOT_AVAILABLE), and every upstream address noted for the broker
//! map ([`Nodes::seen`]) before it is replaced.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterResponse, FindCoordinatorResponse, MetadataResponse,
};
use kafka_protocol::protocol::StrBytes;

/// Where clients reach each broker node, and what the gateway learns from the responses that
/// name brokers.
pub trait Nodes: Send + Sync {
    /// The address clients use for node `id`; `None` when the gateway cannot route it, and the
    /// broker is then left out (never given its own address).
    fn advertise(&self, id: i32) -> Option<(StrBytes, i32)>;
    /// A response named broker `id` at its upstream address `host:port`.
    fn seen(&self, id: i32, host: &str, port: i32);
    /// Broker `id` was left out of a response.
    fn unmapped(&self, id: i32);
}

/// The rewriting of one response, over the connection's [`Nodes`].
pub(super) struct Addresses {
    nodes: Arc<dyn Nodes>,
}

impl Addresses {
    /// Rewrites with `nodes` (the connection's [`Context::nodes`](super::Context)).
    pub(super) fn new(nodes: &Arc<dyn Nodes>) -> Addresses {
        Addresses {
            nodes: Arc::clone(nodes),
        }
    }

    /// Notes broker `node` at `host:port` and gives its client-facing address, if any.
    fn of(&self, node: BrokerId, host: &StrBytes, port: i32) -> Option<(StrBytes, i32)> {
        self.nodes.seen(node.0, host.as_str(), port);
        let out = self.nodes.advertise(node.0);
        if out.is_none() {
            self.nodes.unmapped(node.0);
        }
        out
    }

    /// Metadata: every broker listed; one that cannot be routed is left out.
    pub(super) fn metadata(&self, resp: &mut MetadataResponse) {
        resp.brokers
            .retain_mut(|b| match self.of(b.node_id, &b.host, b.port) {
                Some(addr) => {
                    (b.host, b.port) = addr;
                    true
                }
                None => false,
            });
    }

    /// DescribeCluster: every broker listed; one that cannot be routed is left out.
    pub(super) fn describe_cluster(&self, resp: &mut DescribeClusterResponse) {
        resp.brokers
            .retain_mut(|b| match self.of(b.broker_id, &b.host, b.port) {
                Some(addr) => {
                    (b.host, b.port) = addr;
                    true
                }
                None => false,
            });
    }

    /// FindCoordinator: the coordinator found (v0-3) or each one found (v4+); error answers
    /// keep the broker's (empty) address; a coordinator that cannot be routed becomes
    /// COORDINATOR_NOT_AVAILABLE, so that the client asks again.
    pub(super) fn find_coordinator(&self, resp: &mut FindCoordinatorResponse) {
        // v4+ leave the top-level fields empty.
        if resp.error_code == 0 && !resp.host.is_empty() {
            match self.of(resp.node_id, &resp.host, resp.port) {
                Some(addr) => (resp.host, resp.port) = addr,
                None => {
                    resp.error_code = ResponseError::CoordinatorNotAvailable.code();
                    (resp.node_id, resp.host, resp.port) = (BrokerId(-1), StrBytes::default(), -1);
                }
            }
        }
        for c in &mut resp.coordinators {
            if c.error_code == 0 {
                match self.of(c.node_id, &c.host, c.port) {
                    Some(addr) => (c.host, c.port) = addr,
                    None => {
                        c.error_code = ResponseError::CoordinatorNotAvailable.code();
                        (c.node_id, c.host, c.port) = (BrokerId(-1), StrBytes::default(), -1);
                    }
                }
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

    const GW: &str = "gw.example";
    const COORDINATOR_NOT_AVAILABLE: i16 = 15;

    /// Nodes 1 and 2 at ports 19093 and 19094; any other id cannot be routed. Records what it
    /// was told.
    #[derive(Default)]
    struct TwoNodes {
        seen: std::sync::Mutex<Vec<(i32, String, i32)>>,
        unmapped: std::sync::Mutex<Vec<i32>>,
    }

    impl Nodes for TwoNodes {
        fn advertise(&self, id: i32) -> Option<(StrBytes, i32)> {
            (1..=2)
                .contains(&id)
                .then(|| (StrBytes::from_static_str(GW), 19092 + id))
        }
        fn seen(&self, id: i32, host: &str, port: i32) {
            self.seen.lock().unwrap().push((id, host.to_owned(), port));
        }
        fn unmapped(&self, id: i32) {
            self.unmapped.lock().unwrap().push(id);
        }
    }

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
                r.brokers = [1, 2, 99]
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
            &[(1, GW, 19093), (2, GW, 19094)],
        ),
        (
            "DescribeCluster",
            |a| {
                let mut r = DescribeClusterResponse::default();
                r.brokers = [1, 2, 99]
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
            &[(1, GW, 19093), (2, GW, 19094)],
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
            &[(2, GW, 19094)],
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
            &[(1, GW, 19093), (-1, "", -1)],
        ),
        (
            "FindCoordinator v0-3, a coordinator the gateway cannot route",
            |a| {
                let mut r = FindCoordinatorResponse::default()
                    .with_node_id(BrokerId(99))
                    .with_host(host(99))
                    .with_port(9092);
                a.find_coordinator(&mut r);
                vec![(r.node_id.0, r.host.to_string(), r.port)]
            },
            &[(-1, "", -1)],
        ),
        (
            "FindCoordinator v4+, a coordinator the gateway cannot route",
            |a| {
                let mut r = FindCoordinatorResponse::default();
                r.coordinators = vec![
                    Coordinator::default()
                        .with_node_id(BrokerId(99))
                        .with_host(host(99))
                        .with_port(9092),
                ];
                a.find_coordinator(&mut r);
                assert_eq!(r.coordinators[0].error_code, COORDINATOR_NOT_AVAILABLE);
                r.coordinators
                    .iter()
                    .map(|c| (c.node_id.0, c.host.to_string(), c.port))
                    .collect()
            },
            &[(-1, "", -1)],
        ),
    ];

    #[test]
    fn each_node_gets_its_own_address_the_unroutable_are_left_out_and_errors_kept() {
        for (name, rewrite, expected) in CASES {
            let nodes = Arc::new(TwoNodes::default());
            let dyn_nodes: Arc<dyn Nodes> = Arc::clone(&nodes) as Arc<dyn Nodes>;
            let addresses = Addresses::new(&dyn_nodes);
            let expected: Listed = expected
                .iter()
                .map(|&(node, host, port)| (node, host.to_owned(), port))
                .collect();
            assert_eq!(rewrite(&addresses), expected, "{name}");
            // Every broker named was noted at its upstream address before the rewrite.
            for (id, host_seen, port) in nodes.seen.lock().unwrap().iter() {
                assert_eq!(
                    (host_seen.as_str(), *port),
                    (host(*id).as_str(), 9092),
                    "{name}"
                );
            }
            let unmapped = nodes.unmapped.lock().unwrap().clone();
            let wants_99 = name.contains("Metadata")
                || name.contains("DescribeCluster")
                || name.contains("cannot route");
            assert_eq!(unmapped, if wants_99 { vec![99] } else { vec![] }, "{name}");
        }
    }
}
