//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs.

use super::*;

fn config_results(r: &DescribeConfigsResponse) -> Vec<(i8, String, i16)> {
    r.results
        .iter()
        .map(|c| (c.resource_type, c.resource_name.to_string(), c.error_code))
        .collect()
}

#[test]
fn describe_configs_on_topics_and_brokers() {
    let session = app();
    for version in versions(ApiKey::DescribeConfigs) {
        let req = request(
            ApiKey::DescribeConfigs,
            version,
            &describe_configs(&[
                (CONFIG_TOPIC, "scratch-1"),
                (CONFIG_TOPIC, "events-a"),
                (CONFIG_BROKER, "1"),
                (CONFIG_BROKER_LOGGER, "1"),
            ]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [
                denial(Operation::DescribeConfigs, "Topic:events-a"),
                denial(Operation::DescribeConfigs, "Cluster:kafka-cluster"),
                denial(Operation::DescribeConfigs, "Cluster:kafka-cluster"),
            ]
        );
        let f = forwarded(verdict);
        let sent: DescribeConfigsRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(sent.resources.len(), 1, "v{version}");
        assert_eq!(sent.resources[0].resource_name.as_str(), "scratch-1");
        let mut upstream = DescribeConfigsResponse::default();
        upstream.results = vec![
            DescribeConfigsResult::default()
                .with_resource_type(CONFIG_TOPIC)
                .with_resource_name(s("scratch-1")),
        ];
        let resp = patched(f.patch.expect("a patch"), version, &upstream);
        assert_eq!(
            config_results(&resp),
            [
                (CONFIG_TOPIC, "scratch-1".to_owned(), 0),
                (CONFIG_TOPIC, "events-a".to_owned(), TOPIC_DENIED),
                (CONFIG_BROKER, "1".to_owned(), CLUSTER_DENIED),
                (CONFIG_BROKER_LOGGER, "1".to_owned(), CLUSTER_DENIED),
            ],
            "v{version}"
        );
    }
}

#[test]
fn describe_configs_of_a_broker_needs_describe_configs_on_the_cluster() {
    let admin = cluster_admin();
    let req = request(
        ApiKey::DescribeConfigs,
        4,
        &describe_configs(&[(CONFIG_BROKER, "1"), (CONFIG_BROKER, "2")]),
    );
    let (verdict, denials) = run(&admin, &req);
    assert_untouched(verdict);
    assert!(denials.is_empty());

    let session = app();
    let resp: DescribeConfigsResponse = answer_of(run(&session, &req).0, &req);
    assert_eq!(
        config_results(&resp),
        [
            (CONFIG_BROKER, "1".to_owned(), CLUSTER_DENIED),
            (CONFIG_BROKER, "2".to_owned(), CLUSTER_DENIED),
        ]
    );
}

#[test]
fn broker_logger_configs_need_the_cluster_operation() {
    let admin = cluster_admin();
    let req = request(
        ApiKey::DescribeConfigs,
        4,
        &describe_configs(&[(CONFIG_BROKER_LOGGER, "1")]),
    );
    let (verdict, denials) = run(&admin, &req);
    assert!(
        denials.is_empty(),
        "denied an operation the session holds: {denials:?}"
    );
    assert_untouched(verdict);
    let req = request(
        ApiKey::IncrementalAlterConfigs,
        1,
        &incremental_alter_configs(&[(CONFIG_BROKER_LOGGER, "1")]),
    );
    let (verdict, denials) = run(&admin, &req);
    assert!(denials.is_empty(), "{denials:?}");
    assert_untouched(verdict);
}

#[test]
fn alter_configs_needs_alter_configs() {
    let session = app();
    for version in versions(ApiKey::IncrementalAlterConfigs) {
        // All refused: `orders-eu` (Write and Describe only) and a broker (nothing on the cluster).
        let req = request(
            ApiKey::IncrementalAlterConfigs,
            version,
            &incremental_alter_configs(&[(CONFIG_TOPIC, "orders-eu"), (CONFIG_BROKER, "1")]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [
                denial(Operation::AlterConfigs, "Topic:orders-eu"),
                denial(Operation::AlterConfigs, "Cluster:kafka-cluster"),
            ]
        );
        let resp: IncrementalAlterConfigsResponse = answer_of(verdict, &req);
        let got: Vec<_> = resp
            .responses
            .iter()
            .map(|r| (r.resource_type, r.resource_name.to_string(), r.error_code))
            .collect();
        assert_eq!(
            got,
            [
                (CONFIG_TOPIC, "orders-eu".to_owned(), TOPIC_DENIED),
                (CONFIG_BROKER, "1".to_owned(), CLUSTER_DENIED),
            ],
            "v{version}"
        );

        // Partly refused.
        let req = request(
            ApiKey::IncrementalAlterConfigs,
            version,
            &incremental_alter_configs(&[(CONFIG_TOPIC, "scratch-1"), (CONFIG_BROKER, "1")]),
        );
        let f = forwarded(run(&session, &req).0);
        let sent: IncrementalAlterConfigsRequest =
            decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(sent.resources.len(), 1);
        assert_eq!(
            sent.resources[0].configs.len(),
            1,
            "the changes are forwarded"
        );
        let resp = patched(
            f.patch.expect("a patch"),
            version,
            &IncrementalAlterConfigsResponse::default(),
        );
        assert_eq!(resp.responses.len(), 1);
        assert_eq!(resp.responses[0].error_code, CLUSTER_DENIED);
    }
    for version in versions(ApiKey::AlterConfigs) {
        let req = request(
            ApiKey::AlterConfigs,
            version,
            &alter_configs(&[(CONFIG_TOPIC, "scratch-1"), (CONFIG_TOPIC, "secret")]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::AlterConfigs, "Topic:secret")]);
        let f = forwarded(verdict);
        let sent: AlterConfigsRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(sent.resources[0].resource_name.as_str(), "scratch-1");
        let resp = patched(
            f.patch.expect("a patch"),
            version,
            &AlterConfigsResponse::default(),
        );
        assert_eq!(resp.responses.len(), 1);
        assert_eq!(resp.responses[0].resource_name.as_str(), "secret");
        assert_eq!(resp.responses[0].error_code, TOPIC_DENIED, "v{version}");
    }
    let admin = cluster_admin();
    let req = request(
        ApiKey::IncrementalAlterConfigs,
        1,
        &incremental_alter_configs(&[(CONFIG_BROKER, "1")]),
    );
    assert_untouched(run(&admin, &req).0);
}
