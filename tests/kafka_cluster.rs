//! The testkit's Apache Kafka cluster (`testkit::cluster`): three KRaft nodes from the jars
//! `e2e/setup` installs, asked and used directly with the testkit's Kafka client, and
//! `e2e/setup` itself when Maven Central cannot be reached. `e2e/run` runs these, and CI does.
//!
//! The cluster cases run in one test, in order, on one cluster: a JVM cluster costs seconds and
//! hundreds of megabytes, and a local that is dropped also when a case panics stops every node
//! by its process id (the nodes' watchdogs cover an aborted or killed test binary).

#![cfg(feature = "cli")]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, MetadataRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use poolgate::testkit::cluster::{KAFKA_VERSION, KafkaCluster, kafka_libs};
use poolgate::testkit::kafka::{KafkaClient, record_batch};
use support::TempDir;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

/// Produces `values` to partition `partition` with acks=all; returns the partition's error
/// code and the batch's base offset.
async fn produce(addr: &str, topic: &str, partition: i32, values: &[&[u8]]) -> (i16, i64) {
    let mut client = KafkaClient::connect(addr).await.unwrap();
    let records: Vec<(Option<&[u8]>, &[u8])> = values.iter().map(|v| (None, *v)).collect();
    let mut data = PartitionProduceData::default();
    data.index = partition;
    data.records = Some(record_batch(&records));
    let mut topic_data = TopicProduceData::default();
    topic_data.name = topic_name(topic);
    topic_data.partition_data = vec![data];
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 10_000;
    request.topic_data = vec![topic_data];
    let response = client.call(7, request).await.unwrap();
    let part = &response.responses[0].partition_responses[0];
    (part.error_code, part.base_offset)
}

/// Every record value in `topic`'s partition from offset 0, read from `addr` (its leader).
async fn fetch_values(addr: &str, topic: &str, partition: i32) -> Vec<Bytes> {
    let mut client = KafkaClient::connect(addr).await.unwrap();
    let mut part = FetchPartition::default();
    part.partition = partition;
    part.fetch_offset = 0;
    part.partition_max_bytes = 1 << 20;
    let mut fetch_topic = FetchTopic::default();
    fetch_topic.topic = topic_name(topic);
    fetch_topic.partitions = vec![part];
    let mut request = FetchRequest::default();
    request.replica_id = BrokerId(-1);
    request.max_wait_ms = 0;
    request.min_bytes = 0;
    request.max_bytes = 1 << 20;
    request.session_epoch = -1;
    request.topics = vec![fetch_topic];
    let response = client.call(12, request).await.unwrap();
    let data = &response.responses[0].partitions[0];
    assert_eq!(data.error_code, 0, "fetch from {addr}");
    let mut records = data.records.clone().unwrap_or_default();
    RecordBatchDecoder::decode_all(&mut records)
        .unwrap()
        .into_iter()
        .flat_map(|set| set.records)
        .filter_map(|r| r.value)
        .collect()
}

/// The broker ids in `addr`'s Metadata, sorted.
async fn broker_ids(addr: &str) -> Vec<i32> {
    let mut client = KafkaClient::connect(addr).await.unwrap();
    let mut request = MetadataRequest::default();
    request.topics = Some(Vec::new());
    let response = client.call(12, request).await.unwrap();
    let mut ids: Vec<i32> = response.brokers.iter().map(|b| b.node_id.0).collect();
    ids.sort_unstable();
    ids
}

/// Resident memory of a process in MiB, from `/proc`.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

#[test]
fn the_pom_names_the_testkit_kafka_version() {
    let pom = std::fs::read_to_string("e2e/kafka/pom.xml").unwrap();
    assert!(
        pom.contains(&format!("<kafka.version>{KAFKA_VERSION}</kafka.version>")),
        "e2e/kafka/pom.xml and testkit::cluster::KAFKA_VERSION ({KAFKA_VERSION}) disagree"
    );
}

#[test]
#[ignore = "needs e2e/setup (Apache Kafka's jars, Java 17); run e2e/run"]
fn a_three_node_cluster_starts_replicates_and_survives_a_restart() {
    let libs = kafka_libs().expect("no Apache Kafka: run e2e/setup first (or e2e/run)");
    let started = Instant::now();
    let mut cluster = KafkaCluster::start(&libs, 3).unwrap();
    let start_time = started.elapsed();
    let rss: Vec<u64> = cluster.pids().into_iter().map(rss_mib).collect();
    eprintln!(
        "kafka cluster: 3 brokers in Metadata after {:.1} s; RSS {rss:?} MiB (sum {} MiB); in {}",
        start_time.as_secs_f64(),
        rss.iter().sum::<u64>(),
        cluster.dir().display()
    );
    let rt = runtime();

    // Every broker lists all three.
    assert_eq!(cluster.node_ids(), vec![1, 2, 3]);
    assert_eq!(cluster.bootstrap().split(',').count(), 3);
    for id in cluster.node_ids() {
        let addr = cluster.broker_addr(id).unwrap().to_owned();
        assert_eq!(rt.block_on(broker_ids(&addr)), vec![1, 2, 3], "via {id}");
    }

    // A replicated topic whose partitions are all led by broker 1.
    let assignment = cluster.led_by(1, 3, 3);
    assert_eq!(
        assignment,
        vec![vec![1, 2, 3], vec![1, 3, 2], vec![1, 2, 3]]
    );
    cluster
        .create_topic(
            "orders",
            3,
            3,
            Some(&assignment),
            &[("min.insync.replicas", "2")],
        )
        .unwrap();
    assert_eq!(cluster.leaders(2, "orders").unwrap(), vec![1, 1, 1]);
    // And one placed by Kafka.
    cluster.create_topic("placed", 2, 3, None, &[]).unwrap();
    assert_eq!(cluster.leaders(3, "placed").unwrap().len(), 2);
    assert!(
        cluster
            .create_topic("orders", 1, 3, None, &[])
            .unwrap_err()
            .to_string()
            .contains("error 36"),
        "TOPIC_ALREADY_EXISTS"
    );

    // Produce with acks=all to the leader and read it back.
    let leader = cluster.broker_addr(1).unwrap().to_owned();
    let (error, offset) = rt.block_on(produce(&leader, "orders", 0, &[b"one", b"two"]));
    assert_eq!((error, offset), (0, 0));
    assert_eq!(
        rt.block_on(fetch_values(&leader, "orders", 0)),
        vec![Bytes::from_static(b"one"), Bytes::from_static(b"two")]
    );

    // A follower stops cleanly: two of three in sync still satisfy min.insync.replicas=2.
    cluster.stop_node(2).unwrap();
    assert_eq!(rt.block_on(broker_ids(&leader)), vec![1, 3]);
    assert!(
        !cluster
            .bootstrap()
            .contains(cluster.broker_addr(2).unwrap())
    );
    let (error, offset) = rt.block_on(produce(&leader, "orders", 0, &[b"three"]));
    assert_eq!((error, offset), (0, 2), "acks=all with one follower down");

    // It comes back on its address with its data, and every broker lists three again.
    cluster.start_node(2).unwrap();
    for id in cluster.node_ids() {
        let addr = cluster.broker_addr(id).unwrap().to_owned();
        assert_eq!(rt.block_on(broker_ids(&addr)), vec![1, 2, 3], "via {id}");
    }
    assert!(cluster.stop_node(7).is_err() && cluster.start_node(1).is_err());

    // The leader crashes: another replica takes over every partition, with the records.
    let restarted = Instant::now();
    cluster.kill_node(1).unwrap();
    let new_leaders = cluster.leaders(3, "orders").unwrap();
    assert!(
        new_leaders.iter().all(|&l| l == 2 || l == 3),
        "{new_leaders:?}"
    );
    let new_leader = cluster.broker_addr(new_leaders[0]).unwrap().to_owned();
    let values = rt.block_on(fetch_values(&new_leader, "orders", 0));
    assert_eq!(values.len(), 3, "every acknowledged record survives");
    cluster.start_node(1).unwrap();
    eprintln!(
        "kafka cluster: leader crash to three brokers again in {:.1} s",
        restarted.elapsed().as_secs_f64()
    );

    let pids = cluster.pids();
    drop(cluster);
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "node process {pid} outlived the cluster"
        );
    }
}

/// `e2e/setup kafka` with Maven Central unreachable (a mirror on a closed 127.0.0.1 port):
/// one clear line, no stack trace, and nothing left that looks installed.
#[test]
#[ignore = "needs Maven (mvn) and Java; run e2e/run"]
fn setup_without_maven_central_says_so_in_one_line_and_installs_nothing() {
    let home = TempDir::new("kafka-cluster-home");
    let cache = TempDir::new("kafka-cluster-cache");
    // Held by a socket bound for the test's length that never listens: refused, and not
    // taken by another process meanwhile.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    std::fs::create_dir_all(home.join(".m2")).unwrap();
    std::fs::write(
        home.join(".m2/settings.xml"),
        format!(
            "<settings><mirrors><mirror><id>unreachable</id><mirrorOf>*</mirrorOf>\
             <url>http://127.0.0.1:{closed_port}/maven2</url></mirror></mirrors></settings>"
        ),
    )
    .unwrap();
    let out = Command::new("bash")
        .args(["e2e/setup", "kafka"])
        .env("POOLGATE_E2E_CACHE", cache.path())
        // Maven reads settings and its local repository from the JVM's user.home.
        .env(
            "MAVEN_OPTS",
            format!("-Duser.home={}", home.path().display()),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "e2e setup: could not download Apache Kafka {KAFKA_VERSION} from Maven Central"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Exception") && !stderr.contains("[ERROR]"),
        "{stderr}"
    );
    let left: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.iter().all(|name| name.ends_with(".mvn.log")),
        "only Maven's log is left: {left:?}"
    );
    std::fs::remove_dir_all(home.path()).unwrap();
    std::fs::remove_dir_all(cache.path()).unwrap();
}
