//! The shape every API naming several resources shares, one table for all of them: the
//! permitted items are forwarded and the refused ones merged into the broker's answer with
//! their error; every item refused, the gateway answers alone; every item permitted, the
//! request goes through untouched. Each case runs at every offered version of its API.
//!
//! A [`Shape`] says how to build, read and answer one API's requests; a [`Case`] is one row:
//! a session, the items asked for, the denials and the outcome expected. Partitions are
//! written as Kafka prints them, `topic-partition`; config resources as `Type:name`.

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse as AlteredConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementallyAlteredConfig;

use super::*;

/// A resource a request names (a topic, a group, a config resource), with its partitions, if
/// the API has any.
type Item = (&'static str, &'static [i32]);

/// The items a forwarded request names, each with its partitions.
type Named = Vec<(String, Vec<i32>)>;

/// Each item of a response (each partition, for APIs that have them) with its error code.
type Codes = Vec<(String, i16)>;

/// How the table reads and writes one API.
struct Shape {
    api: ApiKey,
    /// The request naming `items` at `version`.
    request: fn(i16, &[Item]) -> Request,
    /// The items a forwarded frame names, with their partitions.
    sent: fn(&Bytes, &Request) -> Named,
    /// The broker's answer for `kept` (all succeeding) through the patch: each item's error.
    merged: fn(Patch, i16, &[Item]) -> Codes,
    /// The gateway's own answer: each item's error.
    answered: fn(Verdict, &Request) -> Codes,
}

/// One row of the table.
struct Case {
    shape: &'static Shape,
    session: fn() -> Arc<Session>,
    items: &'static [Item],
    /// Each refused operation and resource, in order.
    denials: &'static [(Operation, &'static str)],
    outcome: Outcome,
}

enum Outcome {
    /// Every item permitted: forwarded as received.
    Untouched,
    /// Some refused: `kept` forwarded, then each item's error in the patched answer.
    Split {
        kept: &'static [Item],
        codes: &'static [(&'static str, i16)],
    },
    /// Every item refused: answered alone, with each item's error.
    Answered(&'static [(&'static str, i16)]),
}

fn check_case(case: &Case) {
    let session = (case.session)();
    let shape = case.shape;
    let want_denials: Vec<Denial> = case
        .denials
        .iter()
        .map(|&(op, resource)| denial(op, resource))
        .collect();
    for version in versions(shape.api) {
        let at = format!("{:?} v{version} {:?}", shape.api, case.items);
        let req = (shape.request)(version, case.items);
        let (verdict, denials) = run(&session, &req);
        assert_eq!(denials, want_denials, "{at}");
        match case.outcome {
            Outcome::Untouched => assert_untouched(verdict),
            Outcome::Split { kept, codes } => {
                let f = forwarded(verdict);
                let sent = (shape.sent)(&f.frame.expect("re-encoded"), &req);
                let want: Named = kept
                    .iter()
                    .map(|(n, parts)| ((*n).to_owned(), parts.to_vec()))
                    .collect();
                assert_eq!(sent, want, "{at}: forwarded");
                let merged = (shape.merged)(f.patch.expect("a patch"), version, kept);
                assert_eq!(merged, owned(codes), "{at}: merged");
            }
            Outcome::Answered(codes) => {
                assert_eq!((shape.answered)(verdict, &req), owned(codes), "{at}");
            }
        }
    }
}

fn owned(codes: &[(&str, i16)]) -> Codes {
    codes.iter().map(|&(n, c)| (n.to_owned(), c)).collect()
}

/// Per-partition codes as one list, each partition written `topic-partition`.
fn flat(codes: PartitionCodes) -> Codes {
    codes
        .into_iter()
        .flat_map(|(t, parts)| parts.into_iter().map(move |(p, c)| (format!("{t}-{p}"), c)))
        .collect()
}

fn names(items: &[Item]) -> Vec<&str> {
    items.iter().map(|(n, _)| *n).collect()
}

/// A config resource written `Type:name`.
fn config(item: &str) -> (i8, &str) {
    let (kind, name) = item.split_once(':').expect("Type:name");
    let kind = match kind {
        "Topic" => CONFIG_TOPIC,
        "Broker" => CONFIG_BROKER,
        "BrokerLogger" => CONFIG_BROKER_LOGGER,
        other => panic!("config resource type `{other}`"),
    };
    (kind, name)
}

fn configs(items: &[Item]) -> Vec<(i8, &str)> {
    items.iter().map(|(n, _)| config(n)).collect()
}

fn config_name(kind: i8, name: &str) -> String {
    let kind = match kind {
        CONFIG_TOPIC => "Topic",
        CONFIG_BROKER => "Broker",
        CONFIG_BROKER_LOGGER => "BrokerLogger",
        other => panic!("config resource type {other}"),
    };
    format!("{kind}:{name}")
}

/// The broker's answer for the config resources `kept`: `result(type, name)` for each.
fn config_results<T>(kept: &[Item], result: impl Fn(i8, StrBytes) -> T) -> Vec<T> {
    configs(kept)
        .into_iter()
        .map(|(kind, name)| result(kind, s(name)))
        .collect()
}

/// Each config resource of a request or an answer, written `Type:name`, with a value: `resource`
/// gives a resource's type, name and value (its partitions, none, or its error code).
fn by_config<T, V>(resources: &[T], resource: impl Fn(&T) -> (i8, &str, V)) -> Vec<(String, V)> {
    resources
        .iter()
        .map(|r| {
            let (kind, name, value) = resource(r);
            (config_name(kind, name), value)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Shapes

const LIST_OFFSETS: Shape = Shape {
    api: ApiKey::ListOffsets,
    request: |v, items| request(ApiKey::ListOffsets, v, &list_offsets(items)),
    sent: |frame, req| {
        let sent: ListOffsetsRequest = decode_forwarded(frame, req);
        sent.topics
            .iter()
            .map(|t| {
                let parts = t.partitions.iter().map(|p| p.partition_index).collect();
                (t.name.0.to_string(), parts)
            })
            .collect()
    },
    merged: |patch, v, kept| {
        let mut upstream = ListOffsetsResponse::default();
        upstream.topics = rows(
            kept,
            |name, parts| {
                ListOffsetsTopicResponse::default()
                    .with_name(name)
                    .with_partitions(parts)
            },
            |_, p| {
                ListOffsetsPartitionResponse::default()
                    .with_partition_index(p)
                    .with_offset(12)
            },
        );
        flat(list_offsets_codes(&patched(patch, v, &upstream)))
    },
    answered: |verdict, req| {
        let resp: ListOffsetsResponse = answer_of(verdict, req);
        flat(list_offsets_codes(&resp))
    },
};

const FETCH: Shape = Shape {
    api: ApiKey::Fetch,
    request: |v, items| request(ApiKey::Fetch, v, &fetch(items)),
    sent: |frame, req| {
        let sent: FetchRequest = decode_forwarded(frame, req);
        assert_eq!(sent.max_wait_ms, 500);
        sent.topics
            .iter()
            .map(|t| {
                assert!(t.partitions.iter().all(|p| p.fetch_offset == 10));
                let parts = t.partitions.iter().map(|p| p.partition).collect();
                (t.topic.0.to_string(), parts)
            })
            .collect()
    },
    merged: |patch, v, kept| {
        let resp = patched(patch, v, &fetch_ok(kept));
        for p in resp.responses.iter().flat_map(|t| &t.partitions) {
            if p.error_code == 0 {
                assert_eq!(p.high_watermark, 50, "the broker's answer is kept");
            } else {
                assert_eq!((p.high_watermark, p.last_stable_offset), (-1, -1));
            }
        }
        flat(fetch_codes(&resp))
    },
    answered: |verdict, req| {
        let resp: FetchResponse = answer_of(verdict, req);
        assert_eq!(
            resp.error_code, 0,
            "a per-partition error, not a top-level one"
        );
        flat(fetch_codes(&resp))
    },
};

const OFFSET_COMMIT: Shape = Shape {
    api: ApiKey::OffsetCommit,
    request: |v, items| request(ApiKey::OffsetCommit, v, &offset_commit("app-1", items)),
    sent: |frame, req| {
        let sent: OffsetCommitRequest = decode_forwarded(frame, req);
        assert_eq!(sent.group_id, group("app-1"));
        sent.topics
            .iter()
            .map(|t| {
                let parts = t.partitions.iter().map(|p| p.partition_index).collect();
                (t.name.0.to_string(), parts)
            })
            .collect()
    },
    merged: |patch, v, kept| {
        flat(offset_commit_codes(&patched(
            patch,
            v,
            &offset_commit_ok(kept),
        )))
    },
    answered: |verdict, req| {
        let resp: OffsetCommitResponse = answer_of(verdict, req);
        flat(offset_commit_codes(&resp))
    },
};

const OFFSET_FETCH: Shape = Shape {
    api: ApiKey::OffsetFetch,
    request: |v, items| request(ApiKey::OffsetFetch, v, &offset_fetch("app-1", Some(items))),
    sent: |frame, req| {
        let sent: OffsetFetchRequest = decode_forwarded(frame, req);
        sent.topics
            .expect("named topics")
            .iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    },
    merged: |patch, v, kept| {
        let resp = patched(patch, v, &offset_fetch_ok(kept));
        for p in resp.topics.iter().flat_map(|t| &t.partitions) {
            if p.error_code == 0 {
                assert_eq!(p.committed_offset, 77, "the broker's answer is kept");
            }
        }
        flat(offset_fetch_codes(&resp))
    },
    answered: |verdict, req| {
        let resp: OffsetFetchResponse = answer_of(verdict, req);
        flat(offset_fetch_codes(&resp))
    },
};

const DESCRIBE_GROUPS: Shape = Shape {
    api: ApiKey::DescribeGroups,
    request: |v, items| request(ApiKey::DescribeGroups, v, &describe_groups(&names(items))),
    sent: |frame, req| {
        let sent: DescribeGroupsRequest = decode_forwarded(frame, req);
        sent.groups
            .iter()
            .map(|g| (g.0.to_string(), vec![]))
            .collect()
    },
    merged: |patch, v, kept| {
        let mut upstream = DescribeGroupsResponse::default();
        upstream.groups = kept.iter().map(|(g, _)| described(g)).collect();
        let resp = patched(patch, v, &upstream);
        for g in resp.groups.iter().filter(|g| g.error_code == 0) {
            assert_eq!(
                g.group_state.as_str(),
                "Stable",
                "the broker's answer is kept"
            );
        }
        group_codes(&resp)
    },
    answered: |verdict, req| group_codes(&answer_of(verdict, req)),
};

fn group_codes(r: &DescribeGroupsResponse) -> Codes {
    r.groups
        .iter()
        .map(|g| (g.group_id.0.to_string(), g.error_code))
        .collect()
}

const DELETE_GROUPS: Shape = Shape {
    api: ApiKey::DeleteGroups,
    request: |v, items| request(ApiKey::DeleteGroups, v, &delete_groups(&names(items))),
    sent: |frame, req| {
        let sent: DeleteGroupsRequest = decode_forwarded(frame, req);
        sent.groups_names
            .iter()
            .map(|g| (g.0.to_string(), vec![]))
            .collect()
    },
    merged: |patch, v, kept| {
        let mut upstream = DeleteGroupsResponse::default();
        upstream.results = kept
            .iter()
            .map(|(g, _)| DeletableGroupResult::default().with_group_id(group(g)))
            .collect();
        deleted_group_codes(&patched(patch, v, &upstream))
    },
    answered: |verdict, req| deleted_group_codes(&answer_of(verdict, req)),
};

fn deleted_group_codes(r: &DeleteGroupsResponse) -> Codes {
    r.results
        .iter()
        .map(|g| (g.group_id.0.to_string(), g.error_code))
        .collect()
}

const CREATE_TOPICS: Shape = Shape {
    api: ApiKey::CreateTopics,
    request: |v, items| request(ApiKey::CreateTopics, v, &create_topics(&names(items))),
    sent: |frame, req| {
        let sent: CreateTopicsRequest = decode_forwarded(frame, req);
        assert_eq!(sent.timeout_ms, 5000);
        sent.topics
            .iter()
            .map(|t| {
                assert_eq!(t.num_partitions, 3, "the topic's settings are kept");
                (t.name.0.to_string(), vec![])
            })
            .collect()
    },
    merged: |patch, v, kept| {
        let mut upstream = CreateTopicsResponse::default();
        upstream.topics = kept
            .iter()
            .map(|(n, _)| {
                CreatableTopicResult::default()
                    .with_name(topic(n))
                    .with_error_message(None)
                    .with_num_partitions(3)
                    .with_replication_factor(1)
            })
            .collect();
        created_codes(&patched(patch, v, &upstream))
    },
    answered: |verdict, req| created_codes(&answer_of(verdict, req)),
};

fn created_codes(r: &CreateTopicsResponse) -> Codes {
    r.topics
        .iter()
        .map(|t| {
            if t.error_code != 0 {
                assert!(t.error_message.is_some(), "a refusal says why");
            }
            (t.name.0.to_string(), t.error_code)
        })
        .collect()
}

const DELETE_TOPICS: Shape = Shape {
    api: ApiKey::DeleteTopics,
    request: |v, items| request(ApiKey::DeleteTopics, v, &delete_topics(&names(items))),
    sent: |frame, req| {
        let sent: DeleteTopicsRequest = decode_forwarded(frame, req);
        sent.topic_names
            .iter()
            .map(|t| (t.0.to_string(), vec![]))
            .collect()
    },
    merged: |patch, v, kept| {
        let mut upstream = DeleteTopicsResponse::default();
        upstream.responses = kept
            .iter()
            .map(|(n, _)| DeletableTopicResult::default().with_name(Some(topic(n))))
            .collect();
        deleted_topic_codes(&patched(patch, v, &upstream))
    },
    answered: |verdict, req| deleted_topic_codes(&answer_of(verdict, req)),
};

fn deleted_topic_codes(r: &DeleteTopicsResponse) -> Codes {
    r.responses
        .iter()
        .map(|t| (t.name.as_ref().expect("a name").0.to_string(), t.error_code))
        .collect()
}

const DESCRIBE_CONFIGS: Shape = Shape {
    api: ApiKey::DescribeConfigs,
    request: |v, items| {
        request(
            ApiKey::DescribeConfigs,
            v,
            &describe_configs(&configs(items)),
        )
    },
    sent: |frame, req| {
        let sent: DescribeConfigsRequest = decode_forwarded(frame, req);
        by_config(&sent.resources, |c| {
            (c.resource_type, c.resource_name.as_str(), vec![])
        })
    },
    merged: |patch, v, kept| {
        let mut upstream = DescribeConfigsResponse::default();
        upstream.results = config_results(kept, |kind, name| {
            DescribeConfigsResult::default()
                .with_resource_type(kind)
                .with_resource_name(name)
        });
        described_config_codes(&patched(patch, v, &upstream))
    },
    answered: |verdict, req| described_config_codes(&answer_of(verdict, req)),
};

fn described_config_codes(r: &DescribeConfigsResponse) -> Codes {
    by_config(&r.results, |c| {
        (c.resource_type, c.resource_name.as_str(), c.error_code)
    })
}

const INCREMENTAL_ALTER_CONFIGS: Shape = Shape {
    api: ApiKey::IncrementalAlterConfigs,
    request: |v, items| {
        let body = incremental_alter_configs(&configs(items));
        request(ApiKey::IncrementalAlterConfigs, v, &body)
    },
    sent: |frame, req| {
        let sent: IncrementalAlterConfigsRequest = decode_forwarded(frame, req);
        by_config(&sent.resources, |c| {
            assert_eq!(c.configs.len(), 1, "the changes are forwarded");
            (c.resource_type, c.resource_name.as_str(), vec![])
        })
    },
    merged: |patch, v, kept| {
        let mut upstream = IncrementalAlterConfigsResponse::default();
        upstream.responses = config_results(kept, |kind, name| {
            IncrementallyAlteredConfig::default()
                .with_resource_type(kind)
                .with_resource_name(name)
        });
        incremental_codes(&patched(patch, v, &upstream))
    },
    answered: |verdict, req| incremental_codes(&answer_of(verdict, req)),
};

fn incremental_codes(r: &IncrementalAlterConfigsResponse) -> Codes {
    by_config(&r.responses, |c| {
        (c.resource_type, c.resource_name.as_str(), c.error_code)
    })
}

const ALTER_CONFIGS: Shape = Shape {
    api: ApiKey::AlterConfigs,
    request: |v, items| request(ApiKey::AlterConfigs, v, &alter_configs(&configs(items))),
    sent: |frame, req| {
        let sent: AlterConfigsRequest = decode_forwarded(frame, req);
        by_config(&sent.resources, |c| {
            assert_eq!(c.configs.len(), 1, "the changes are forwarded");
            (c.resource_type, c.resource_name.as_str(), vec![])
        })
    },
    merged: |patch, v, kept| {
        let mut upstream = AlterConfigsResponse::default();
        upstream.responses = config_results(kept, |kind, name| {
            AlteredConfig::default()
                .with_resource_type(kind)
                .with_resource_name(name)
        });
        altered_codes(&patched(patch, v, &upstream))
    },
    answered: |verdict, req| altered_codes(&answer_of(verdict, req)),
};

fn altered_codes(r: &AlterConfigsResponse) -> Codes {
    by_config(&r.responses, |c| {
        (c.resource_type, c.resource_name.as_str(), c.error_code)
    })
}

// ---------------------------------------------------------------------------------------------
// The table: one test per row, each row one or more cases.

macro_rules! cases {
    ($($(#[$doc:meta])* $name:ident: [$($case:expr),+ $(,)?];)+) => {
        $(
            $(#[$doc])*
            #[test]
            fn $name() {
                $(check_case(&$case);)+
            }
        )+
    };
}

use Operation::{AlterConfigs, Create, Delete, Describe, DescribeConfigs, Read};
use Outcome::{Answered, Split, Untouched};

cases! {
    /// Describe is implied by Read (events-*) and Write (orders-*); `secret` has nothing.
    list_offsets_partly_refused_forwards_the_describable_topics: [Case {
        shape: &LIST_OFFSETS,
        session: app,
        items: &[("events-a", &[0]), ("secret", &[1, 2]), ("orders-eu", &[0])],
        denials: &[(Describe, "Topic:secret")],
        outcome: Split {
            kept: &[("events-a", &[0]), ("orders-eu", &[0])],
            codes: &[
                ("events-a-0", 0),
                ("orders-eu-0", 0),
                ("secret-1", TOPIC_DENIED),
                ("secret-2", TOPIC_DENIED),
            ],
        },
    }];
    list_offsets_all_refused_or_all_allowed: [
        Case {
            shape: &LIST_OFFSETS,
            session: app,
            items: &[("secret", &[0])],
            denials: &[(Describe, "Topic:secret")],
            outcome: Answered(&[("secret-0", TOPIC_DENIED)]),
        },
        Case {
            shape: &LIST_OFFSETS,
            session: app,
            items: &[("events-a", &[0])],
            denials: &[],
            outcome: Untouched,
        },
    ];
    fetch_with_every_topic_allowed_is_forwarded_untouched: [Case {
        shape: &FETCH,
        session: app,
        items: &[("events-a", &[0, 1]), ("events-b", &[0])],
        denials: &[],
        outcome: Untouched,
    }];
    /// `orders-eu`: Describe and Write but not Read; `events-audit`: Read denied.
    fetch_partly_refused_forwards_the_allowed_topics_and_merges_29: [Case {
        shape: &FETCH,
        session: app,
        items: &[("events-a", &[0, 1]), ("orders-eu", &[3]), ("events-audit", &[0])],
        denials: &[(Read, "Topic:orders-eu"), (Read, "Topic:events-audit")],
        outcome: Split {
            kept: &[("events-a", &[0, 1])],
            codes: &[
                ("events-a-0", 0),
                ("events-a-1", 0),
                ("orders-eu-3", TOPIC_DENIED),
                ("events-audit-0", TOPIC_DENIED),
            ],
        },
    }];
    fetch_with_every_topic_refused_is_answered_with_29_per_partition: [Case {
        shape: &FETCH,
        session: app,
        items: &[("secret", &[0, 1]), ("orders-eu", &[2])],
        denials: &[(Read, "Topic:secret"), (Read, "Topic:orders-eu")],
        outcome: Answered(&[
            ("secret-0", TOPIC_DENIED),
            ("secret-1", TOPIC_DENIED),
            ("orders-eu-2", TOPIC_DENIED),
        ]),
    }];
    offset_commit_with_an_allowed_group_refuses_only_the_unreadable_topic: [Case {
        shape: &OFFSET_COMMIT,
        session: app,
        items: &[("events-a", &[0, 1]), ("secret", &[2])],
        denials: &[(Read, "Topic:secret")],
        outcome: Split {
            kept: &[("events-a", &[0, 1])],
            codes: &[("events-a-0", 0), ("events-a-1", 0), ("secret-2", TOPIC_DENIED)],
        },
    }];
    offset_commit_all_allowed_or_all_topics_refused: [
        Case {
            shape: &OFFSET_COMMIT,
            session: app,
            items: &[("events-a", &[0])],
            denials: &[],
            outcome: Untouched,
        },
        Case {
            shape: &OFFSET_COMMIT,
            session: app,
            items: &[("secret", &[0])],
            denials: &[(Read, "Topic:secret")],
            outcome: Answered(&[("secret-0", TOPIC_DENIED)]),
        },
    ];
    offset_fetch_partly_refused_topics_get_29: [
        Case {
            shape: &OFFSET_FETCH,
            session: app,
            items: &[("secret", &[3]), ("events-a", &[0])],
            denials: &[(Describe, "Topic:secret")],
            outcome: Split {
                kept: &[("events-a", &[0])],
                codes: &[("events-a-0", 0), ("secret-3", TOPIC_DENIED)],
            },
        },
        Case {
            shape: &OFFSET_FETCH,
            session: app,
            items: &[("secret", &[3])],
            denials: &[(Describe, "Topic:secret")],
            outcome: Answered(&[("secret-3", TOPIC_DENIED)]),
        },
    ];
    describe_groups_partly_refused: [
        Case {
            shape: &DESCRIBE_GROUPS,
            session: app,
            items: &[("other-1", &[]), ("app-1", &[])],
            denials: &[(Describe, "Group:other-1")],
            outcome: Split {
                kept: &[("app-1", &[])],
                codes: &[("app-1", 0), ("other-1", GROUP_DENIED)],
            },
        },
        Case {
            shape: &DESCRIBE_GROUPS,
            session: app,
            items: &[("other-1", &[])],
            denials: &[(Describe, "Group:other-1")],
            outcome: Answered(&[("other-1", GROUP_DENIED)]),
        },
        Case {
            shape: &DESCRIBE_GROUPS,
            session: app,
            items: &[("app-1", &[])],
            denials: &[],
            outcome: Untouched,
        },
    ];
    /// Delete is granted on `app-tmp-*` only; Read on `app-*` does not imply it.
    delete_groups_partly_refused: [
        Case {
            shape: &DELETE_GROUPS,
            session: app,
            items: &[("app-1", &[]), ("app-tmp-1", &[]), ("other-1", &[])],
            denials: &[(Delete, "Group:app-1"), (Delete, "Group:other-1")],
            outcome: Split {
                kept: &[("app-tmp-1", &[])],
                codes: &[
                    ("app-tmp-1", 0),
                    ("app-1", GROUP_DENIED),
                    ("other-1", GROUP_DENIED),
                ],
            },
        },
        Case {
            shape: &DELETE_GROUPS,
            session: app,
            items: &[("other-1", &[])],
            denials: &[(Delete, "Group:other-1")],
            outcome: Answered(&[("other-1", GROUP_DENIED)]),
        },
    ];
    create_topics_partly_refused: [Case {
        shape: &CREATE_TOPICS,
        session: app,
        items: &[("scratch-1", &[]), ("secret", &[]), ("orders-new", &[])],
        denials: &[(Create, "Topic:secret"), (Create, "Topic:orders-new")],
        outcome: Split {
            kept: &[("scratch-1", &[])],
            codes: &[
                ("scratch-1", 0),
                ("secret", TOPIC_DENIED),
                ("orders-new", TOPIC_DENIED),
            ],
        },
    }];
    /// Create on the cluster creates any topic.
    create_topics_all_refused_or_allowed_on_the_cluster: [
        Case {
            shape: &CREATE_TOPICS,
            session: app,
            items: &[("secret", &[])],
            denials: &[(Create, "Topic:secret")],
            outcome: Answered(&[("secret", TOPIC_DENIED)]),
        },
        Case {
            shape: &CREATE_TOPICS,
            session: cluster_admin,
            items: &[("secret", &[]), ("anything", &[])],
            denials: &[],
            outcome: Untouched,
        },
    ];
    delete_topics_partly_refused: [
        Case {
            shape: &DELETE_TOPICS,
            session: app,
            items: &[("orders-eu", &[]), ("scratch-1", &[])],
            denials: &[(Delete, "Topic:orders-eu")],
            outcome: Split {
                kept: &[("scratch-1", &[])],
                codes: &[("scratch-1", 0), ("orders-eu", TOPIC_DENIED)],
            },
        },
        Case {
            shape: &DELETE_TOPICS,
            session: app,
            items: &[("secret", &[])],
            denials: &[(Delete, "Topic:secret")],
            outcome: Answered(&[("secret", TOPIC_DENIED)]),
        },
    ];
    describe_configs_on_topics_and_brokers: [Case {
        shape: &DESCRIBE_CONFIGS,
        session: app,
        items: &[
            ("Topic:scratch-1", &[]),
            ("Topic:events-a", &[]),
            ("Broker:1", &[]),
            ("BrokerLogger:1", &[]),
        ],
        denials: &[
            (DescribeConfigs, "Topic:events-a"),
            (DescribeConfigs, "Cluster:kafka-cluster"),
            (DescribeConfigs, "Cluster:kafka-cluster"),
        ],
        outcome: Split {
            kept: &[("Topic:scratch-1", &[])],
            codes: &[
                ("Topic:scratch-1", 0),
                ("Topic:events-a", TOPIC_DENIED),
                ("Broker:1", CLUSTER_DENIED),
                ("BrokerLogger:1", CLUSTER_DENIED),
            ],
        },
    }];
    describe_configs_of_a_broker_needs_describe_configs_on_the_cluster: [
        Case {
            shape: &DESCRIBE_CONFIGS,
            session: cluster_admin,
            items: &[("Broker:1", &[]), ("Broker:2", &[])],
            denials: &[],
            outcome: Untouched,
        },
        Case {
            shape: &DESCRIBE_CONFIGS,
            session: app,
            items: &[("Broker:1", &[]), ("Broker:2", &[])],
            denials: &[
                (DescribeConfigs, "Cluster:kafka-cluster"),
                (DescribeConfigs, "Cluster:kafka-cluster"),
            ],
            outcome: Answered(&[("Broker:1", CLUSTER_DENIED), ("Broker:2", CLUSTER_DENIED)]),
        },
    ];
    broker_logger_configs_need_the_cluster_operation: [
        Case {
            shape: &DESCRIBE_CONFIGS,
            session: cluster_admin,
            items: &[("BrokerLogger:1", &[])],
            denials: &[],
            outcome: Untouched,
        },
        Case {
            shape: &INCREMENTAL_ALTER_CONFIGS,
            session: cluster_admin,
            items: &[("BrokerLogger:1", &[])],
            denials: &[],
            outcome: Untouched,
        },
    ];
    /// `orders-eu` has Write and Describe only; nothing on the cluster.
    alter_configs_needs_alter_configs: [
        Case {
            shape: &INCREMENTAL_ALTER_CONFIGS,
            session: app,
            items: &[("Topic:orders-eu", &[]), ("Broker:1", &[])],
            denials: &[
                (AlterConfigs, "Topic:orders-eu"),
                (AlterConfigs, "Cluster:kafka-cluster"),
            ],
            outcome: Answered(&[
                ("Topic:orders-eu", TOPIC_DENIED),
                ("Broker:1", CLUSTER_DENIED),
            ]),
        },
        Case {
            shape: &INCREMENTAL_ALTER_CONFIGS,
            session: app,
            items: &[("Topic:scratch-1", &[]), ("Broker:1", &[])],
            denials: &[(AlterConfigs, "Cluster:kafka-cluster")],
            outcome: Split {
                kept: &[("Topic:scratch-1", &[])],
                codes: &[("Topic:scratch-1", 0), ("Broker:1", CLUSTER_DENIED)],
            },
        },
        Case {
            shape: &ALTER_CONFIGS,
            session: app,
            items: &[("Topic:scratch-1", &[]), ("Topic:secret", &[])],
            denials: &[(AlterConfigs, "Topic:secret")],
            outcome: Split {
                kept: &[("Topic:scratch-1", &[])],
                codes: &[("Topic:scratch-1", 0), ("Topic:secret", TOPIC_DENIED)],
            },
        },
        Case {
            shape: &INCREMENTAL_ALTER_CONFIGS,
            session: cluster_admin,
            items: &[("Broker:1", &[])],
            denials: &[],
            outcome: Untouched,
        },
    ];
}
