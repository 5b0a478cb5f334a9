//! Topic administration: CreateTopics and DeleteTopics.

use super::*;

#[test]
fn create_topics_partly_refused() {
    let session = app();
    for version in versions(ApiKey::CreateTopics) {
        let req = request(
            ApiKey::CreateTopics,
            version,
            &create_topics(&["scratch-1", "secret", "orders-new"]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(
            denials,
            [
                denial(Operation::Create, "Topic:secret"),
                denial(Operation::Create, "Topic:orders-new"),
            ]
        );
        let f = forwarded(verdict);
        let sent: CreateTopicsRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(sent.topics.len(), 1, "v{version}");
        assert_eq!(sent.topics[0].name, topic("scratch-1"));
        assert_eq!(sent.topics[0].num_partitions, 3);
        assert_eq!(sent.timeout_ms, 5000);

        let mut upstream = CreateTopicsResponse::default();
        upstream.topics = vec![
            CreatableTopicResult::default()
                .with_name(topic("scratch-1"))
                .with_error_message(None)
                .with_num_partitions(3)
                .with_replication_factor(1),
        ];
        let resp = patched(f.patch.expect("a patch"), version, &upstream);
        let got: Vec<_> = resp
            .topics
            .iter()
            .map(|t| (t.name.0.to_string(), t.error_code))
            .collect();
        assert_eq!(
            got,
            [
                ("scratch-1".to_owned(), 0),
                ("secret".to_owned(), TOPIC_DENIED),
                ("orders-new".to_owned(), TOPIC_DENIED),
            ],
            "v{version}"
        );
        assert!(resp.topics[1].error_message.is_some());
    }
}

#[test]
fn create_topics_all_refused_or_allowed_on_the_cluster() {
    let session = app();
    for version in versions(ApiKey::CreateTopics) {
        let req = request(ApiKey::CreateTopics, version, &create_topics(&["secret"]));
        let resp: CreateTopicsResponse = answer_of(run(&session, &req).0, &req);
        assert_eq!(resp.topics.len(), 1);
        assert_eq!(resp.topics[0].error_code, TOPIC_DENIED, "v{version}");
    }
    let admin = cluster_admin();
    for version in versions(ApiKey::CreateTopics) {
        let req = request(
            ApiKey::CreateTopics,
            version,
            &create_topics(&["secret", "anything"]),
        );
        let (verdict, denials) = run(&admin, &req);
        assert_untouched(verdict);
        assert!(
            denials.is_empty(),
            "Create on the cluster creates any topic"
        );
    }
}

#[test]
fn delete_topics_partly_refused() {
    let session = app();
    for version in versions(ApiKey::DeleteTopics) {
        let req = request(
            ApiKey::DeleteTopics,
            version,
            &delete_topics(&["orders-eu", "scratch-1"]),
        );
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, [denial(Operation::Delete, "Topic:orders-eu")]);
        let f = forwarded(verdict);
        let sent: DeleteTopicsRequest = decode_forwarded(&f.frame.expect("re-encoded"), &req);
        assert_eq!(sent.topic_names, [topic("scratch-1")], "v{version}");
        let mut upstream = DeleteTopicsResponse::default();
        upstream.responses =
            vec![DeletableTopicResult::default().with_name(Some(topic("scratch-1")))];
        let resp = patched(f.patch.expect("a patch"), version, &upstream);
        let got: Vec<_> = resp
            .responses
            .iter()
            .map(|t| (t.name.as_ref().unwrap().0.to_string(), t.error_code))
            .collect();
        assert_eq!(
            got,
            [
                ("scratch-1".to_owned(), 0),
                ("orders-eu".to_owned(), TOPIC_DENIED),
            ],
            "v{version}"
        );

        let req = request(ApiKey::DeleteTopics, version, &delete_topics(&["secret"]));
        let resp: DeleteTopicsResponse = answer_of(run(&session, &req).0, &req);
        assert_eq!(resp.responses[0].error_code, TOPIC_DENIED);
    }
}
