//! Metadata, FindCoordinator and DescribeCluster: topic and key checks, broker addresses
//! rewritten, authorized operations from the session.

use super::*;

#[test]
fn metadata_for_all_topics_drops_undescribable_topics_and_rewrites_brokers() {
    let session = app();
    for version in versions(ApiKey::Metadata) {
        let req = request(ApiKey::Metadata, version, &metadata(None, true));
        let (verdict, denials) = run(&session, &req);
        assert!(denials.is_empty(), "listing all topics refuses nothing");
        let f = forwarded(verdict);
        assert!(
            f.frame.is_none(),
            "v{version}: the request is forwarded as is"
        );
        assert!(f.respond);
        let resp = patched(
            f.patch.expect("the address rewrite"),
            version,
            &metadata_ok(&["events-a", "secret", "orders-eu", "other", "events-audit"]),
        );
        assert_brokers_rewritten(&resp.brokers);
        assert_eq!(
            metadata_topics(&resp),
            [
                ("events-a".to_owned(), 0),
                ("orders-eu".to_owned(), 0),
                ("events-audit".to_owned(), 0),
            ],
            "v{version}: only the topics the session may describe"
        );
        assert_eq!(resp.topics[0].partitions[0].leader_id, BrokerId(1));
        assert_eq!(resp.cluster_id, Some(s("cluster-x")));
    }
}

#[test]
fn metadata_for_named_topics_answers_29_for_the_refused_ones() {
    let session = app();
    for version in versions(ApiKey::Metadata) {
        let req = request(
            ApiKey::Metadata,
            version,
            &metadata(Some(&["events-a", "secret", "orders-eu"]), false),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Describe, "Topic:secret")]);
        let f = forwarded(verdict);
        let sent: MetadataRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        let names: Vec<_> = sent
            .topics
            .as_ref()
            .unwrap()
            .iter()
            .map(|t| t.name.as_ref().unwrap().0.to_string())
            .collect();
        assert_eq!(names, ["events-a", "orders-eu"], "v{version}");
        let resp = patched(
            f.patch.expect("a patch"),
            version,
            &metadata_ok(&["events-a", "orders-eu"]),
        );
        assert_brokers_rewritten(&resp.brokers);
        assert_eq!(
            metadata_topics(&resp),
            [
                ("events-a".to_owned(), 0),
                ("orders-eu".to_owned(), 0),
                ("secret".to_owned(), TOPIC_DENIED),
            ],
            "v{version}"
        );
    }
}

#[test]
fn metadata_for_refused_topics_only_asks_for_no_topic() {
    let session = app();
    let req = request(
        ApiKey::Metadata,
        12,
        &metadata(Some(&["secret", "other"]), false),
    );
    let (verdict, denials) = run(&session, &req);
    assert_eq!(denials.len(), 2);
    let f = forwarded(verdict);
    let sent: MetadataRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
    assert_eq!(
        sent.topics.as_ref().map(Vec::len),
        Some(0),
        "an empty list (no topic), never null (every topic)"
    );
    let resp = patched(f.patch.unwrap(), 12, &metadata_ok(&[]));
    assert_eq!(
        metadata_topics(&resp),
        [
            ("secret".to_owned(), TOPIC_DENIED),
            ("other".to_owned(), TOPIC_DENIED),
        ]
    );
    assert_brokers_rewritten(&resp.brokers);
}

#[test]
fn metadata_with_every_named_topic_allowed_still_rewrites_brokers() {
    let session = app();
    let req = request(ApiKey::Metadata, 9, &metadata(Some(&["events-a"]), false));
    let (verdict, denials) = run(&session, &req);
    assert!(denials.is_empty());
    let f = forwarded(verdict);
    assert!(f.frame.is_none(), "nothing stripped: forwarded as received");
    let resp = patched(f.patch.expect("a patch"), 9, &metadata_ok(&["events-a"]));
    assert_brokers_rewritten(&resp.brokers);
    assert_eq!(metadata_topics(&resp), [("events-a".to_owned(), 0)]);
}

#[test]
fn metadata_auto_topic_creation_is_turned_off_without_create() {
    let session = app();
    for version in versions(ApiKey::Metadata) {
        // events-a: Describe but no Create.
        let req = request(
            ApiKey::Metadata,
            version,
            &metadata(Some(&["events-a"]), true),
        );
        let (verdict, denials) = run(&session, &req);
        assert!(
            denials.is_empty(),
            "turning auto-creation off refuses nothing"
        );
        let f = forwarded(verdict);
        let sent: MetadataRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert!(!sent.allow_auto_topic_creation, "v{version}");
        assert_eq!(sent.topics.as_ref().unwrap().len(), 1);

        // scratch-*: Create (and Describe, implied by Delete) on the topic.
        let req = request(
            ApiKey::Metadata,
            version,
            &metadata(Some(&["scratch-1"]), true),
        );
        let f = forwarded(run(&session, &req).0);
        assert!(
            f.frame.is_none(),
            "v{version}: Create on the topic keeps it"
        );
    }
}

#[test]
fn metadata_auto_topic_creation_is_kept_with_create_on_the_cluster() {
    let session = session_with(&[
        "role DeveloperRead Topic:*",
        "allow Create Cluster:kafka-cluster",
    ]);
    let req = request(ApiKey::Metadata, 12, &metadata(Some(&["new-topic"]), true));
    let (verdict, denials) = run(&session, &req);
    assert!(denials.is_empty());
    let f = forwarded(verdict);
    assert!(
        f.frame.is_none(),
        "Create on the cluster allows creating any topic"
    );
}

#[test]
fn metadata_topic_authorized_operations_are_the_sessions() {
    let session = session_with(&[
        "role DeveloperRead Topic:events-*",
        "role DeveloperWrite Topic:orders-*",
        "role ResourceOwner Topic:owned-*",
        "allow Describe,AlterConfigs Topic:tuned-*",
    ]);
    for version in 8..=12 {
        let mut body = metadata(None, false);
        body.include_topic_authorized_operations = true;
        let req = request(ApiKey::Metadata, version, &body);
        let f = forwarded(run(&session, &req).0);
        let mut upstream = metadata_ok(&["events-a", "orders-eu", "owned-1", "tuned-1"]);
        for t in &mut upstream.topics {
            // A broker without ACLs claims everything.
            t.topic_authorized_operations = 0x0fff;
        }
        let resp = patched(f.patch.unwrap(), version, &upstream);
        let ops: Vec<_> = resp
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.as_ref().unwrap().0.to_string(),
                    t.topic_authorized_operations,
                )
            })
            .collect();
        assert_eq!(
            ops,
            [
                ("events-a".to_owned(), bits(&[OP_READ, OP_DESCRIBE])),
                ("orders-eu".to_owned(), bits(&[OP_WRITE, OP_DESCRIBE])),
                (
                    "owned-1".to_owned(),
                    bits(&[
                        OP_READ,
                        OP_WRITE,
                        OP_CREATE,
                        OP_DELETE,
                        OP_ALTER,
                        OP_DESCRIBE,
                        OP_DESCRIBE_CONFIGS,
                        OP_ALTER_CONFIGS,
                    ])
                ),
                (
                    "tuned-1".to_owned(),
                    bits(&[OP_DESCRIBE, OP_DESCRIBE_CONFIGS, OP_ALTER_CONFIGS])
                ),
            ],
            "v{version}"
        );
        assert_eq!(bits(&[OP_READ, OP_DESCRIBE]), 264);
    }
}

#[test]
fn metadata_topic_authorized_operations_for_refused_topics_are_absent() {
    let session = app();
    let mut body = metadata(Some(&["events-a", "secret"]), false);
    body.include_topic_authorized_operations = true;
    let req = request(ApiKey::Metadata, 10, &body);
    let f = forwarded(run(&session, &req).0);
    let resp = patched(f.patch.unwrap(), 10, &metadata_ok(&["events-a"]));
    assert_eq!(
        resp.topics[0].topic_authorized_operations,
        bits(&[OP_READ, OP_DESCRIBE])
    );
    assert_eq!(resp.topics[1].error_code, TOPIC_DENIED);
    assert_eq!(resp.topics[1].topic_authorized_operations, i32::MIN);
}

#[test]
fn metadata_topic_authorized_operations_list_only_topic_operations() {
    let session = session_with(&["allow All Topic:*"]);
    let mut body = metadata(None, false);
    body.include_topic_authorized_operations = true;
    let req = request(ApiKey::Metadata, 12, &body);
    let f = forwarded(run(&session, &req).0);
    let resp = patched(f.patch.unwrap(), 12, &metadata_ok(&["events-a"]));
    assert_eq!(
        resp.topics[0].topic_authorized_operations,
        bits(&[
            OP_READ,
            OP_WRITE,
            OP_CREATE,
            OP_DELETE,
            OP_ALTER,
            OP_DESCRIBE,
            OP_DESCRIBE_CONFIGS,
            OP_ALTER_CONFIGS,
        ]),
        "got {:#x}",
        resp.topics[0].topic_authorized_operations
    );
}

#[test]
fn metadata_cluster_authorized_operations_are_the_sessions() {
    let session = session_with(&[
        "role DeveloperWrite Topic:orders-*",
        "allow Create,Describe,DescribeConfigs Cluster:kafka-cluster",
    ]);
    for version in 8..=10 {
        let mut body = metadata(Some(&[]), false);
        body.include_cluster_authorized_operations = true;
        let req = request(ApiKey::Metadata, version, &body);
        let f = forwarded(run(&session, &req).0);
        let mut upstream = metadata_ok(&[]);
        upstream.cluster_authorized_operations = 0x0fff;
        let resp = patched(f.patch.unwrap(), version, &upstream);
        assert_eq!(
            resp.cluster_authorized_operations,
            bits(&[
                OP_CREATE,
                OP_DESCRIBE,
                OP_DESCRIBE_CONFIGS,
                OP_IDEMPOTENT_WRITE
            ]),
            "v{version}: IdempotentWrite is implied by Write on a topic"
        );
    }
}

#[test]
fn metadata_cluster_authorized_operations_need_describe_on_the_cluster() {
    // Write on a topic implies IdempotentWrite on the cluster, but not Describe: Kafka then
    // reports no cluster operations at all.
    let session = session_with(&["role DeveloperWrite Topic:orders-*"]);
    let mut body = metadata(Some(&[]), false);
    body.include_cluster_authorized_operations = true;
    let req = request(ApiKey::Metadata, 10, &body);
    let f = forwarded(run(&session, &req).0);
    let mut upstream = metadata_ok(&[]);
    upstream.cluster_authorized_operations = 0x0fff;
    let resp = patched(f.patch.unwrap(), 10, &upstream);
    assert_eq!(resp.cluster_authorized_operations, 0);
}

#[test]
fn find_coordinator_single_key_allowed_is_forwarded_with_the_address_rewritten() {
    let session = app();
    for version in 0..=3 {
        let req = request(
            ApiKey::FindCoordinator,
            version,
            &find_coordinator(version, 0, &["app-1"]),
        );
        let (verdict, denials) = run(&session, &req);
        assert!(denials.is_empty());
        let f = forwarded(verdict);
        assert!(f.frame.is_none());
        let mut upstream = FindCoordinatorResponse::default();
        upstream.node_id = BrokerId(2);
        upstream.host = s("broker-2.internal");
        upstream.port = 9093;
        let resp = patched(f.patch.expect("the address rewrite"), version, &upstream);
        assert_eq!(resp.error_code, 0);
        assert_eq!(resp.node_id, BrokerId(2), "v{version}");
        assert_eq!(resp.host.as_str(), GW_HOST);
        assert_eq!(resp.port, GW_PORT);
    }
}

#[test]
fn find_coordinator_error_responses_are_not_rewritten() {
    let session = app();
    let req = request(
        ApiKey::FindCoordinator,
        3,
        &find_coordinator(3, 0, &["app-1"]),
    );
    let f = forwarded(run(&session, &req).0);
    let mut upstream = FindCoordinatorResponse::default();
    upstream.error_code = 15; // COORDINATOR_NOT_AVAILABLE
    upstream.node_id = BrokerId(-1);
    upstream.port = -1;
    let resp = patched(f.patch.unwrap(), 3, &upstream);
    assert_eq!(resp.error_code, 15);
    assert_eq!(resp.host.as_str(), "");
    assert_eq!(resp.port, -1);
}

#[test]
fn find_coordinator_single_key_refused_is_answered_locally() {
    let session = app();
    for version in 0..=3 {
        let req = request(
            ApiKey::FindCoordinator,
            version,
            &find_coordinator(version, 0, &["other-1"]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Describe, "Group:other-1")]);
        let resp: FindCoordinatorResponse = answer_of(verdict, &req);
        assert_eq!(resp.error_code, GROUP_DENIED, "v{version}");
        assert_eq!(resp.node_id, BrokerId(-1));
        assert_eq!(resp.port, -1);
    }
    // Transaction coordinators (key type 1, from v1) need Describe on the transactional id.
    for version in 1..=3 {
        let req = request(
            ApiKey::FindCoordinator,
            version,
            &find_coordinator(version, 1, &["txn-other"]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [denial(Operation::Describe, "TransactionalId:txn-other")]
        );
        let resp: FindCoordinatorResponse = answer_of(verdict, &req);
        assert_eq!(resp.error_code, TXN_DENIED, "v{version}");

        // Write on `txn-app` implies Describe.
        let req = request(
            ApiKey::FindCoordinator,
            version,
            &find_coordinator(version, 1, &["txn-app"]),
        );
        assert!(forwarded(run(&session, &req).0).patch.is_some());
    }
}

#[test]
fn find_coordinator_batched_keys_partly_refused() {
    let session = app();
    for version in 4..=6 {
        let req = request(
            ApiKey::FindCoordinator,
            version,
            &find_coordinator(version, 0, &["other-1", "app-1", "app-2"]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Describe, "Group:other-1")]);
        let f = forwarded(verdict);
        let sent: FindCoordinatorRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        let keys: Vec<_> = sent.coordinator_keys.iter().map(StrBytes::as_str).collect();
        assert_eq!(keys, ["app-1", "app-2"], "v{version}");

        let mut upstream = FindCoordinatorResponse::default();
        upstream.coordinators = vec![
            coordinator("app-1", 1, "broker-1.internal", 9092),
            coordinator("app-2", 2, "broker-2.internal", 9093).with_error_code(15),
        ];
        let resp = patched(f.patch.expect("a patch"), version, &upstream);
        let got: Vec<_> = resp
            .coordinators
            .iter()
            .map(|c| {
                (
                    c.key.to_string(),
                    c.node_id.0,
                    c.host.to_string(),
                    c.port,
                    c.error_code,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("app-1".to_owned(), 1, GW_HOST.to_owned(), GW_PORT, 0),
                (
                    "app-2".to_owned(),
                    2,
                    "broker-2.internal".to_owned(),
                    9093,
                    15
                ),
                ("other-1".to_owned(), -1, String::new(), -1, GROUP_DENIED),
            ],
            "v{version}"
        );
    }
}

#[test]
fn find_coordinator_batched_keys_all_allowed_or_all_refused() {
    let session = app();
    for version in 4..=6 {
        let req = request(
            ApiKey::FindCoordinator,
            version,
            &find_coordinator(version, 0, &["app-1"]),
        );
        let f = forwarded(run(&session, &req).0);
        assert!(f.frame.is_none());
        let mut upstream = FindCoordinatorResponse::default();
        upstream.coordinators = vec![coordinator("app-1", 1, "broker-1.internal", 9092)];
        let resp = patched(f.patch.expect("the address rewrite"), version, &upstream);
        assert_eq!(resp.coordinators[0].host.as_str(), GW_HOST);
        assert_eq!(resp.coordinators[0].port, GW_PORT);
        assert_eq!(resp.coordinators.len(), 1);

        let req = request(
            ApiKey::FindCoordinator,
            version,
            &find_coordinator(version, 1, &["txn-other", "txn-x"]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials.len(), 2);
        let resp: FindCoordinatorResponse = answer_of(verdict, &req);
        let got: Vec<_> = resp
            .coordinators
            .iter()
            .map(|c| (c.key.to_string(), c.error_code))
            .collect();
        assert_eq!(
            got,
            [
                ("txn-other".to_owned(), TXN_DENIED),
                ("txn-x".to_owned(), TXN_DENIED),
            ],
            "v{version}"
        );
    }
}

#[test]
fn find_coordinator_unknown_key_type_is_refused_as_the_cluster() {
    let session = session_with(&["allow All Topic:*", "role ClusterAdmin Group:*"]);
    let req = request(
        ApiKey::FindCoordinator,
        6,
        &find_coordinator(6, 2, &["share-group:topic:0"]),
    );
    let (verdict, _) = run(&session, &req);
    let resp: FindCoordinatorResponse = answer_of(verdict, &req);
    assert_eq!(resp.coordinators.len(), 1);
    assert_eq!(resp.coordinators[0].error_code, CLUSTER_DENIED);
}

#[test]
fn find_coordinator_unknown_key_type_is_recorded_as_a_denial() {
    let session = app();
    for version in [3, 6] {
        let req = request(
            ApiKey::FindCoordinator,
            version,
            &find_coordinator(version, 2, &["share-group:topic:0"]),
        );
        let (_, denials) = run(&session, &req);
        assert!(!denials.is_empty(), "v{version}: refused but not recorded");
    }
}

#[test]
fn describe_cluster_rewrites_brokers_and_authorized_operations() {
    let session = cluster_admin();
    for version in versions(ApiKey::DescribeCluster) {
        let req = request(
            ApiKey::DescribeCluster,
            version,
            &DescribeClusterRequest::default(),
        );
        let (verdict, denials) = run(&session, &req);
        assert!(denials.is_empty());
        let f = forwarded(verdict);
        assert!(f.frame.is_none());
        let patch = f.patch.expect("the address rewrite");
        let mut upstream = DescribeClusterResponse::default();
        upstream.cluster_id = s("cluster-x");
        upstream.brokers = vec![
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(1))
                .with_host(s("broker-1.internal"))
                .with_port(9092),
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(2))
                .with_host(s("broker-2.internal"))
                .with_port(9093),
        ];
        upstream.cluster_authorized_operations = 0x0fff;
        let resp = patched(patch, version, &upstream);
        for b in &resp.brokers {
            assert_eq!((b.host.as_str(), b.port), (GW_HOST, GW_PORT), "v{version}");
        }
        assert_eq!(resp.brokers[1].broker_id, BrokerId(2));
        assert_eq!(
            resp.cluster_authorized_operations,
            bits(&[
                OP_CREATE,
                OP_DESCRIBE,
                OP_DESCRIBE_CONFIGS,
                OP_ALTER_CONFIGS
            ]),
            "v{version}"
        );

        // Not asked for: left as the broker sent it.
        let f = forwarded(run(&session, &req).0);
        let resp = patched(
            f.patch.unwrap(),
            version,
            &DescribeClusterResponse::default(),
        );
        assert_eq!(resp.cluster_authorized_operations, i32::MIN);
    }
}

// ---------------------------------------------------------------------------------------------
// Per-node addresses in responses that name brokers

/// Nodes 1-3 at their own ports; any other id cannot be routed. Records what it saw.
#[derive(Default)]
struct ThreeNodes {
    seen: std::sync::Mutex<Vec<(i32, String, i32)>>,
    unmapped: std::sync::Mutex<Vec<i32>>,
}

impl Nodes for ThreeNodes {
    fn advertise(&self, id: i32) -> Option<(StrBytes, i32)> {
        (1..=3)
            .contains(&id)
            .then(|| (StrBytes::from_static_str(GW_HOST), GW_PORT + 1 + id))
    }
    fn seen(&self, id: i32, host: &str, port: i32) {
        self.seen.lock().unwrap().push((id, host.to_owned(), port));
    }
    fn unmapped(&self, id: i32) {
        self.unmapped.lock().unwrap().push(id);
    }
}

fn run_three(session: &Arc<Session>, req: &Request, nodes: &Arc<ThreeNodes>) -> Forwarded {
    let dyn_nodes: Arc<dyn Nodes> = Arc::clone(nodes) as Arc<dyn Nodes>;
    let cx = Context {
        session,
        nodes: &dyn_nodes,
        pass_through: false,
    };
    let mut denials = Vec::new();
    let verdict = check(req, &cx, &mut denials).expect("checks");
    assert!(denials.is_empty());
    forwarded(verdict)
}

/// Node 1, 2 and 99 (unroutable) at their upstream addresses.
fn upstream_brokers() -> Vec<(i32, &'static str, i32)> {
    vec![
        (1, "broker-1.internal", 9092),
        (2, "broker-2.internal", 9093),
        (99, "broker-99.internal", 9099),
    ]
}

/// The request, and the brokers of an upstream answer after `patch`, of Metadata or
/// DescribeCluster at `version`.
fn brokers_through(api: ApiKey, version: i16, nodes: &Arc<ThreeNodes>) -> Vec<(i32, String, i32)> {
    let session = cluster_admin();
    let req = match api {
        ApiKey::Metadata => request(api, version, &MetadataRequest::default()),
        _ => request(api, version, &DescribeClusterRequest::default()),
    };
    let patch = run_three(&session, &req, nodes).patch.expect("the rewrite");
    let listed = upstream_brokers();
    if api == ApiKey::Metadata {
        let mut upstream = MetadataResponse::default();
        upstream.brokers = listed
            .into_iter()
            .map(|(id, host, port)| {
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(id))
                    .with_host(s(host))
                    .with_port(port)
            })
            .collect();
        let resp = patched(patch, version, &upstream);
        resp.brokers
            .iter()
            .map(|b| (b.node_id.0, b.host.to_string(), b.port))
            .collect()
    } else {
        let mut upstream = DescribeClusterResponse::default();
        upstream.brokers = listed
            .into_iter()
            .map(|(id, host, port)| {
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(id))
                    .with_host(s(host))
                    .with_port(port)
            })
            .collect();
        let resp = patched(patch, version, &upstream);
        resp.brokers
            .iter()
            .map(|b| (b.broker_id.0, b.host.to_string(), b.port))
            .collect()
    }
}

#[test]
fn metadata_and_describe_cluster_give_each_node_its_address_and_leave_out_the_unroutable() {
    for api in [ApiKey::Metadata, ApiKey::DescribeCluster] {
        for version in versions(api) {
            let nodes = Arc::new(ThreeNodes::default());
            assert_eq!(
                brokers_through(api, version, &nodes),
                [
                    (1, GW_HOST.to_owned(), GW_PORT + 2),
                    (2, GW_HOST.to_owned(), GW_PORT + 3)
                ],
                "{api:?} v{version}"
            );
            let seen: Vec<_> = upstream_brokers()
                .into_iter()
                .map(|(id, h, p)| (id, h.to_owned(), p))
                .collect();
            assert_eq!(
                *nodes.seen.lock().unwrap(),
                seen,
                "{api:?}: every upstream address learned"
            );
            assert_eq!(*nodes.unmapped.lock().unwrap(), [99], "{api:?}");
        }
    }
}

#[test]
fn find_coordinator_names_the_coordinators_node_or_not_available() {
    let session = app();
    for version in versions(ApiKey::FindCoordinator) {
        for (node, want) in [
            (2, Some(GW_PORT + 3)),
            // A coordinator the gateway cannot route: COORDINATOR_NOT_AVAILABLE, so that the
            // client asks again; never the broker's own address.
            (99, None),
        ] {
            let nodes = Arc::new(ThreeNodes::default());
            let req = request(
                ApiKey::FindCoordinator,
                version,
                &find_coordinator(version, 0, &["app-1"]),
            );
            let f = run_three(&session, &req, &nodes);
            let mut upstream = FindCoordinatorResponse::default();
            if version < 4 {
                upstream.node_id = BrokerId(node);
                upstream.host = s("broker.internal");
                upstream.port = 9093;
            } else {
                upstream.coordinators = vec![
                    kafka_protocol::messages::find_coordinator_response::Coordinator::default()
                        .with_key(s("app-1"))
                        .with_node_id(BrokerId(node))
                        .with_host(s("broker.internal"))
                        .with_port(9093),
                ];
            }
            let resp = patched(f.patch.expect("the rewrite"), version, &upstream);
            let (code, id, host, port) = if version < 4 {
                (
                    resp.error_code,
                    resp.node_id.0,
                    resp.host.to_string(),
                    resp.port,
                )
            } else {
                let c = &resp.coordinators[0];
                (c.error_code, c.node_id.0, c.host.to_string(), c.port)
            };
            match want {
                Some(p) => assert_eq!(
                    (code, id, host.as_str(), port),
                    (0, node, GW_HOST, p),
                    "v{version}"
                ),
                None => {
                    assert_eq!(
                        (code, id, host.as_str(), port),
                        (15, -1, "", -1),
                        "v{version}"
                    );
                    assert_eq!(*nodes.unmapped.lock().unwrap(), [99]);
                }
            }
        }
    }
}
