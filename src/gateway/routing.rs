//! Which broker a client connection stands for, and the address clients are given for each
//! broker node: the pure half of routing (no I/O). The broker map, which knows where each node
//! really is, is [`super::brokers`].
//!
//! Two ways to name a broker, as Kroxylicious does ("port identifies node" and "SNI host
//! identifies node"):
//! - **ports**: the listen port bootstraps; node `n` has its own listener at
//!   `node_port_base + n`, the same on every gateway instance with one configuration;
//! - **SNI**: one TLS port; the server name the client asked for names the node, from a pattern
//!   such as `b{node_id}.kafka.example.com`; the advertised host bootstraps.

use std::collections::BTreeMap;

use kafka_protocol::protocol::StrBytes;

/// The broker a client connection stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The bootstrap address: any broker of the cluster answers.
    Bootstrap,
    /// The broker with this node id.
    Node(i32),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Bootstrap => f.write_str("bootstrap"),
            Target::Node(n) => write!(f, "node {n}"),
        }
    }
}

/// The client-facing address of every routable node: what Metadata, FindCoordinator and
/// DescribeCluster responses carry instead of the brokers' own addresses.
#[derive(Clone, Debug)]
pub struct Addresses {
    bootstrap: (StrBytes, i32),
    nodes: BTreeMap<i32, (StrBytes, i32)>,
    sni: Option<(String, String)>,
}

impl Addresses {
    /// Port routing: node `n` at `host:ports[n]`.
    pub fn ports(host: StrBytes, bootstrap_port: i32, ports: &BTreeMap<i32, u16>) -> Addresses {
        Addresses {
            nodes: ports
                .iter()
                .map(|(&id, &port)| (id, (host.clone(), i32::from(port))))
                .collect(),
            bootstrap: (host, bootstrap_port),
            sni: None,
        }
    }

    /// SNI routing: node `n` at `pattern(n):port`, every node id of `node_ids` routable.
    /// `pattern` contains `{node_id}` once (the configuration checks it).
    pub fn sni(host: StrBytes, port: i32, pattern: &str, node_ids: &[(i32, i32)]) -> Addresses {
        let (prefix, suffix) = pattern
            .split_once("{node_id}")
            .map(|(p, s)| (p.to_ascii_lowercase(), s.to_ascii_lowercase()))
            .unwrap_or_default();
        let nodes = node_ids
            .iter()
            .flat_map(|&(lo, hi)| lo..=hi)
            .map(|id| {
                let name = StrBytes::from_string(format!("{prefix}{id}{suffix}"));
                (id, (name, port))
            })
            .collect();
        Addresses {
            bootstrap: (host, port),
            nodes,
            sni: Some((prefix, suffix)),
        }
    }

    /// The address clients use for node `id`, or `None` when the node cannot be routed (its id
    /// is outside `node_ids`): such a broker is left out of responses, never leaked.
    pub fn node(&self, id: i32) -> Option<&(StrBytes, i32)> {
        self.nodes.get(&id)
    }

    /// In SNI routing, the target a TLS server name stands for: the bootstrap host, or a name
    /// made by the pattern from a routable node id (decimal, no sign, no leading zero). `None`
    /// for any other name, which is refused, never forwarded to an arbitrary broker.
    pub fn target_of_server_name(&self, name: &str) -> Option<Target> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if name.eq_ignore_ascii_case(self.bootstrap.0.as_str()) {
            return Some(Target::Bootstrap);
        }
        let (prefix, suffix) = self.sni.as_ref()?;
        let digits = name
            .strip_prefix(prefix.as_str())?
            .strip_suffix(suffix.as_str())?;
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        let id: i32 = digits.parse().ok().filter(|_| canonical)?;
        self.nodes.contains_key(&id).then_some(Target::Node(id))
    }
}

/// Whether `id` is inside one of the inclusive `ranges`.
pub fn in_ranges(ranges: &[(i32, i32)], id: i32) -> bool {
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &'static str) -> StrBytes {
        StrBytes::from_static_str(s)
    }

    #[test]
    fn ports_give_each_node_its_port_and_nothing_else() {
        let ports = BTreeMap::from([(1, 9094u16), (2, 9095), (3, 9096)]);
        let a = Addresses::ports(host("gw.example.com"), 9092, &ports);
        assert_eq!(a.node(2), Some(&(host("gw.example.com"), 9095)));
        assert_eq!(a.node(0), None);
        assert_eq!(a.node(4), None);
        assert_eq!(a.node(-1), None);
        assert_eq!(a.bootstrap, (host("gw.example.com"), 9092));
        assert_eq!(a.nodes.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
        // Server names mean nothing with port routing.
        assert_eq!(a.target_of_server_name("b1.gw.example.com"), None);
    }

    #[test]
    fn sni_names_nodes_by_pattern() {
        let a = Addresses::sni(
            host("bootstrap.kafka.example.com"),
            9093,
            "b{node_id}.kafka.example.com",
            &[(0, 2), (100, 100)],
        );
        assert_eq!(a.node(100), Some(&(host("b100.kafka.example.com"), 9093)));
        assert_eq!(a.node(3), None);
        let cases = [
            ("bootstrap.kafka.example.com", Some(Target::Bootstrap)),
            ("BOOTSTRAP.Kafka.example.com.", Some(Target::Bootstrap)),
            ("b0.kafka.example.com", Some(Target::Node(0))),
            ("b2.kafka.example.com", Some(Target::Node(2))),
            ("B100.KAFKA.EXAMPLE.COM", Some(Target::Node(100))),
            // Outside the ranges, or not the canonical spelling of an id.
            ("b3.kafka.example.com", None),
            ("b02.kafka.example.com", None),
            ("b+1.kafka.example.com", None),
            ("b-1.kafka.example.com", None),
            ("b.kafka.example.com", None),
            ("b1x.kafka.example.com", None),
            ("b99999999999.kafka.example.com", None),
            // Other names.
            ("b1.kafka.example.com.evil.net", None),
            ("kafka.example.com", None),
            ("", None),
        ];
        for (name, want) in cases {
            assert_eq!(a.target_of_server_name(name), want, "{name}");
        }
    }

    #[test]
    fn ranges_are_inclusive() {
        let r = [(0, 2), (10, 10)];
        assert!(in_ranges(&r, 0) && in_ranges(&r, 2) && in_ranges(&r, 10));
        assert!(!in_ranges(&r, 3) && !in_ranges(&r, 9) && !in_ranges(&r, -1));
    }
}
