//! A real Apache Kafka cluster for tests: KRaft nodes, each a broker and a controller, run as
//! `java` processes from the jars `e2e/setup` installs, on free 127.0.0.1 ports and in a folder
//! of their own, killed by their process ids when the cluster is dropped. It starts, stops and
//! asks the cluster; it must not know about the gateway.
//!
//! ```no_run
//! # fn demo() -> std::io::Result<()> {
//! use poolgate::testkit::cluster::{KafkaCluster, kafka_libs};
//! let libs = kafka_libs().expect("run e2e/setup first");
//! let cluster = KafkaCluster::start(&libs, 3)?;
//! // Three partitions, each on all three brokers and led by broker 1.
//! let assignment = cluster.led_by(1, 3, 3);
//! cluster.create_topic("orders", 3, 3, Some(&assignment), &[("min.insync.replicas", "2")])?;
//! println!("bootstrap {}", cluster.bootstrap());
//! # Ok(()) }
//! ```
//!
//! Readiness is asked of the cluster, never waited for with a sleep: a node is up when it logs
//! that it started (Kafka does so once its broker is unfenced), and the cluster is up when every
//! broker's Metadata lists every broker. Each node has a watchdog (`sh`, reading a pipe that only
//! this process holds open) that kills the node by its id when this process ends in any way, so
//! no JVM outlives a test binary that was aborted or killed.
//!
//! A cluster kept in a `static` to share among a test binary's tests is never dropped: its
//! watchdogs still stop every node when the binary exits, but its folder stays behind.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, ElectLeadersRequest, MetadataRequest, MetadataResponse,
    RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// The Apache Kafka version `e2e/kafka/pom.xml` names (a test checks that they agree).
pub const KAFKA_VERSION: &str = "4.4.0";

/// How long a cluster, a node or a topic may take to come up before it counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a node may take to shut down cleanly before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the cluster is asked again while its metadata settles.
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// How many times a cluster start is tried with new ports when a port was taken meanwhile.
const START_ATTEMPTS: usize = 3;
/// The line a node logs once its broker is registered and unfenced.
const STARTED_LINE: &str = "Kafka Server started";

/// The folder `e2e/setup` installs Apache Kafka's jars into,
/// `$POOLGATE_E2E_CACHE/kafka-VERSION/libs` (`~/.cache/poolgate-e2e` by default); `None` until
/// an install has finished (its marker file is written last).
pub fn kafka_libs() -> Option<PathBuf> {
    let cache = match std::env::var_os("POOLGATE_E2E_CACHE") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/poolgate-e2e"),
    };
    let dir = cache.join(format!("kafka-{KAFKA_VERSION}"));
    dir.join(".complete").exists().then(|| dir.join("libs"))
}

fn error(message: String) -> io::Error {
    io::Error::other(message)
}

fn codec(e: impl std::fmt::Display) -> io::Error {
    error(format!("kafka codec: {e}"))
}

/// What [`KafkaCluster::start_with_options`] adds to a cluster.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// More broker properties (`server.properties` lines), which override the defaults; the
    /// second listener's own settings (`listener.name.<name>.…`) go here too.
    pub properties: Vec<(String, String)>,
    /// A second client listener on every node besides `PLAINTEXT` (which the brokers keep
    /// talking among themselves on): its name and security protocol, such as
    /// `("OAUTH", "SASL_PLAINTEXT")`, on a port of its own ([`KafkaCluster::listener_addr`]).
    pub listener: Option<(String, String)>,
    /// JVM system properties (`-Dkey=value`) for every node, such as
    /// `org.apache.kafka.sasl.oauthbearer.allowed.urls`.
    pub system_properties: Vec<(String, String)>,
    /// More client listeners after [`Options::listener`], each on a port of its own
    /// ([`KafkaCluster::named_listener_addr`]): name and security protocol, such as
    /// `("MTLS", "SSL")`.
    pub more_listeners: Vec<(String, String)>,
    /// SCRAM credentials created when the storage is formatted (`kafka-storage format
    /// --add-scram`), such as `SCRAM-SHA-512=[name=gw,password=...]`: test passwords only, as
    /// they are on the formatter's command line.
    pub scram_credentials: Vec<String>,
}

/// A KRaft cluster of Apache Kafka on 127.0.0.1; see the [module docs](self).
#[derive(Debug)]
pub struct KafkaCluster {
    java: PathBuf,
    libs: PathBuf,
    dir: PathBuf,
    cluster_id: String,
    extra: Vec<(String, String)>,
    /// A second client listener on every node: name and security protocol.
    listener: Option<(String, String)>,
    /// `-Dkey=value` for every node's JVM.
    system_properties: Vec<(String, String)>,
    /// [`Options::more_listeners`].
    more_listeners: Vec<(String, String)>,
    /// [`Options::scram_credentials`].
    scram_credentials: Vec<String>,
    nodes: Vec<Node>,
    /// What every node's output copier reports, tagged with the spawn it comes from.
    events: mpsc::Receiver<NodeEvent>,
    events_tx: mpsc::Sender<NodeEvent>,
    spawns: u64,
}

/// One node's fixed parts (kept across restarts) and its process while it runs.
#[derive(Debug)]
struct Node {
    id: i32,
    broker_addr: String,
    /// The second listener's address, with [`Options::listener`].
    listener_addr: Option<String>,
    /// The addresses of [`Options::more_listeners`], in their order.
    more_addrs: Vec<String>,
    controller_port: u16,
    dir: PathBuf,
    process: Option<NodeProcess>,
}

/// What a node's output copier reports.
#[derive(Debug, PartialEq)]
enum Event {
    Started,
    Exited,
}

/// An [`Event`] of the process from spawn number `spawn`.
#[derive(Debug)]
struct NodeEvent {
    spawn: u64,
    event: Event,
}

/// A running node: the JVM, its watchdog and the thread copying its output into `stdout.log`.
#[derive(Debug)]
struct NodeProcess {
    java: Child,
    watchdog: Child,
    /// Held open for the watchdog: it kills the JVM when this closes.
    _lifeline: Option<ChildStdin>,
    /// Tags this process's events.
    spawn: u64,
    copier: Option<JoinHandle<()>>,
}

impl NodeProcess {
    /// Starts `java ARGS` with its output copied into `log` and a watchdog beside it; its
    /// events go to `events`, tagged with `spawn`.
    fn spawn(
        java: &Path,
        args: &[String],
        log: &Path,
        spawn: u64,
        events: mpsc::Sender<NodeEvent>,
    ) -> io::Result<NodeProcess> {
        let mut out = OpenOptions::new().create(true).append(true).open(log)?;
        let mut child = Command::new(java)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(out.try_clone()?)
            .spawn()?;
        let pid = child.id().to_string();
        let watchdog = Command::new("sh")
            .args([
                "-c",
                "read _; kill -KILL \"$1\" 2>/dev/null",
                "watchdog",
                &pid,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut watchdog = match watchdog {
            Ok(w) => w,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let lifeline = watchdog.stdin.take();
        let tx = events;
        let stdout = child.stdout.take();
        let copier = std::thread::spawn(move || {
            if let Some(stdout) = stdout {
                let mut told = false;
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let _ = writeln!(out, "{line}");
                    if !told && line.contains(STARTED_LINE) {
                        told = true;
                        let _ = tx.send(NodeEvent {
                            spawn,
                            event: Event::Started,
                        });
                    }
                }
            }
            let _ = tx.send(NodeEvent {
                spawn,
                event: Event::Exited,
            });
        });
        Ok(NodeProcess {
            java: child,
            watchdog,
            _lifeline: lifeline,
            spawn,
            copier: Some(copier),
        })
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.java.kill();
        let _ = self.java.wait();
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        if let Some(copier) = self.copier.take() {
            let _ = copier.join();
        }
    }
}

impl KafkaCluster {
    /// Starts `nodes` KRaft nodes (ids 1 to `nodes`, each broker and controller, all of them
    /// voters) from the jars in `libs` and waits until every broker's Metadata lists every
    /// broker (at most two minutes). Ports are free ones; when a port was taken before a node
    /// could bind it, the whole cluster starts again on new ports (three tries).
    ///
    /// # Errors
    /// When a node cannot be formatted or started, or the cluster is not up in time; the
    /// message names the folder with the nodes' logs, which is then kept.
    pub fn start(libs: &Path, nodes: u16) -> io::Result<KafkaCluster> {
        KafkaCluster::start_with(libs, nodes, &[])
    }

    /// [`KafkaCluster::start`] with more broker properties (`server.properties` lines), which
    /// override the defaults.
    ///
    /// # Errors
    /// As [`KafkaCluster::start`].
    pub fn start_with(
        libs: &Path,
        nodes: u16,
        properties: &[(&str, &str)],
    ) -> io::Result<KafkaCluster> {
        let options = Options {
            properties: properties
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Options::default()
        };
        KafkaCluster::start_with_options(libs, nodes, options)
    }

    /// [`KafkaCluster::start`] with [`Options`]: broker properties, a second listener, JVM
    /// system properties.
    ///
    /// # Errors
    /// As [`KafkaCluster::start`].
    pub fn start_with_options(
        libs: &Path,
        nodes: u16,
        options: Options,
    ) -> io::Result<KafkaCluster> {
        if !libs
            .join(format!("kafka_2.13-{KAFKA_VERSION}.jar"))
            .exists()
        {
            return Err(error(format!(
                "no kafka_2.13-{KAFKA_VERSION}.jar in `{}`: run e2e/setup",
                libs.display()
            )));
        }
        let java = std::env::var_os("JAVA_HOME")
            .map(|home| PathBuf::from(home).join("bin/java"))
            .filter(|java| java.exists())
            .unwrap_or_else(|| PathBuf::from("java"));
        let dir = std::env::temp_dir().join(format!(
            "poolgate-kafka-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("log4j2.properties"), LOG4J2)?;
        let (events_tx, events) = mpsc::channel();
        let mut cluster = KafkaCluster {
            java,
            libs: libs.to_owned(),
            dir,
            cluster_id: random_uuid(),
            extra: options.properties,
            listener: options.listener,
            system_properties: options.system_properties,
            more_listeners: options.more_listeners,
            scram_credentials: options.scram_credentials,
            nodes: Vec::new(),
            events,
            events_tx,
            spawns: 0,
        };
        let mut attempt = 1;
        loop {
            match cluster.start_all(nodes, attempt) {
                Ok(()) => return Ok(cluster),
                Err(e) if attempt < START_ATTEMPTS && cluster.port_was_taken() => {
                    eprintln!("kafka cluster: a port was taken, starting again on new ports ({e})");
                    attempt += 1;
                }
                Err(e) => {
                    let message = format!("{e} (logs in `{}`)", cluster.dir.display());
                    cluster.kill_all();
                    // Keep the logs: the error names them.
                    cluster.dir = PathBuf::new();
                    return Err(error(message));
                }
            }
        }
    }

    /// One try: new ports and folders, format, start, wait.
    fn start_all(&mut self, count: u16, attempt: usize) -> io::Result<()> {
        self.kill_all();
        let attempt_dir = match attempt {
            1 => self.dir.clone(),
            n => self.dir.join(format!("attempt-{n}")),
        };
        // Two ports per node (one more per further listener), bound together so they differ,
        // released just before the nodes bind them.
        let more = usize::from(self.listener.is_some()) + self.more_listeners.len();
        let per_node = 2 + more;
        let listeners = (0..per_node * usize::from(count))
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
            .collect::<io::Result<Vec<_>>>()?;
        let ports = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<io::Result<Vec<_>>>()?;
        drop(listeners);
        self.nodes = (0..count)
            .map(|i| {
                let i = usize::from(i);
                let id = i32::try_from(i + 1).unwrap_or(i32::MAX);
                Node {
                    id,
                    broker_addr: format!("127.0.0.1:{}", ports[per_node * i]),
                    controller_port: ports[per_node * i + 1],
                    listener_addr: self
                        .listener
                        .is_some()
                        .then(|| format!("127.0.0.1:{}", ports[per_node * i + 2])),
                    more_addrs: (per_node - self.more_listeners.len()..per_node)
                        .map(|k| format!("127.0.0.1:{}", ports[per_node * i + k]))
                        .collect(),
                    dir: attempt_dir.join(format!("node-{id}")),
                    process: None,
                }
            })
            .collect();
        let voters = self
            .nodes
            .iter()
            .map(|n| format!("{}@127.0.0.1:{}", n.id, n.controller_port))
            .collect::<Vec<_>>()
            .join(",");
        for node in &self.nodes {
            fs::create_dir_all(&node.dir)?;
            fs::write(
                node.dir.join("server.properties"),
                self.server_properties(node, &voters),
            )?;
        }
        self.format_all()?;
        let deadline = Instant::now() + START_TIMEOUT;
        for index in 0..self.nodes.len() {
            self.spawn(index)?;
        }
        let ids = self.node_ids();
        self.wait_started(&ids, deadline)?;
        self.wait_brokers(deadline)
    }

    /// Formats every node's storage with `kafka.tools.StorageTool format`, all at once.
    fn format_all(&self) -> io::Result<()> {
        let mut formats = Vec::new();
        for node in &self.nodes {
            let log = File::create(node.dir.join("format.log"))?;
            let mut args = self.jvm_args("128m");
            args.extend([
                "kafka.tools.StorageTool".to_owned(),
                "format".to_owned(),
                "--cluster-id".to_owned(),
                self.cluster_id.clone(),
                "--config".to_owned(),
                node.dir.join("server.properties").display().to_string(),
            ]);
            for scram in &self.scram_credentials {
                args.extend(["--add-scram".to_owned(), scram.clone()]);
            }
            let child = Command::new(&self.java)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?;
            formats.push((node.id, KilledOnDrop(child)));
        }
        for (id, mut child) in formats {
            let status = child.0.wait()?;
            if !status.success() {
                return Err(error(format!(
                    "formatting node {id}'s storage failed ({status})"
                )));
            }
        }
        Ok(())
    }

    fn jvm_args(&self, heap: &str) -> Vec<String> {
        vec![
            format!("-Xmx{heap}"),
            "-Xms64m".to_owned(),
            // One GC thread and no C2 compiler threads: the machine has two cores for three
            // JVMs, their clients and the gateway.
            "-XX:+UseSerialGC".to_owned(),
            "-XX:TieredStopAtLevel=1".to_owned(),
            "-XX:+ExitOnOutOfMemoryError".to_owned(),
            "-Djava.awt.headless=true".to_owned(),
            format!(
                "-Dlog4j2.configurationFile={}",
                self.dir.join("log4j2.properties").display()
            ),
            "-cp".to_owned(),
            format!("{}/*", self.libs.display()),
        ]
    }

    fn server_properties(&self, node: &Node, voters: &str) -> String {
        let count = self.nodes.len().min(3);
        let min_isr = count.min(2);
        let data = node.dir.join("data");
        let (mut listeners, mut advertised, mut protocols) = (
            format!("PLAINTEXT://{}", node.broker_addr),
            format!("PLAINTEXT://{}", node.broker_addr),
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".to_owned(),
        );
        if let (Some((name, protocol)), Some(addr)) = (&self.listener, &node.listener_addr) {
            listeners.push_str(&format!(",{name}://{addr}"));
            advertised.push_str(&format!(",{name}://{addr}"));
            protocols.push_str(&format!(",{name}:{protocol}"));
        }
        for ((name, protocol), addr) in self.more_listeners.iter().zip(&node.more_addrs) {
            listeners.push_str(&format!(",{name}://{addr}"));
            advertised.push_str(&format!(",{name}://{addr}"));
            protocols.push_str(&format!(",{name}:{protocol}"));
        }
        let mut props = vec![
            ("process.roles".to_owned(), "broker,controller".to_owned()),
            ("node.id".to_owned(), node.id.to_string()),
            ("controller.quorum.voters".to_owned(), voters.to_owned()),
            (
                "listeners".to_owned(),
                format!(
                    "{listeners},CONTROLLER://127.0.0.1:{}",
                    node.controller_port
                ),
            ),
            ("advertised.listeners".to_owned(), advertised),
            (
                "controller.listener.names".to_owned(),
                "CONTROLLER".to_owned(),
            ),
            (
                "inter.broker.listener.name".to_owned(),
                "PLAINTEXT".to_owned(),
            ),
            ("listener.security.protocol.map".to_owned(), protocols),
            ("log.dirs".to_owned(), data.display().to_string()),
            // Tests create their topics, with the placement they need.
            ("auto.create.topics.enable".to_owned(), "false".to_owned()),
            ("num.partitions".to_owned(), "1".to_owned()),
            ("default.replication.factor".to_owned(), count.to_string()),
            // Internal topics: replicated like production, but few partitions.
            (
                "offsets.topic.replication.factor".to_owned(),
                count.to_string(),
            ),
            ("offsets.topic.num.partitions".to_owned(), "3".to_owned()),
            (
                "transaction.state.log.replication.factor".to_owned(),
                count.to_string(),
            ),
            (
                "transaction.state.log.min.isr".to_owned(),
                min_isr.to_string(),
            ),
            (
                "transaction.state.log.num.partitions".to_owned(),
                "3".to_owned(),
            ),
            (
                "share.coordinator.state.topic.replication.factor".to_owned(),
                count.to_string(),
            ),
            (
                "share.coordinator.state.topic.min.isr".to_owned(),
                min_isr.to_string(),
            ),
            (
                "share.coordinator.state.topic.num.partitions".to_owned(),
                "3".to_owned(),
            ),
            (
                "group.initial.rebalance.delay.ms".to_owned(),
                "0".to_owned(),
            ),
            // Small and few: a test writes little, and memory and threads are scarce.
            ("log.segment.bytes".to_owned(), "1048576".to_owned()),
            (
                "log.cleaner.dedupe.buffer.size".to_owned(),
                "2097152".to_owned(),
            ),
            ("num.network.threads".to_owned(), "2".to_owned()),
            ("num.io.threads".to_owned(), "2".to_owned()),
            ("background.threads".to_owned(), "2".to_owned()),
            (
                "num.recovery.threads.per.data.dir".to_owned(),
                "1".to_owned(),
            ),
            ("num.replica.fetchers".to_owned(), "1".to_owned()),
        ];
        for (key, value) in &self.extra {
            props.retain(|(k, _)| k != key);
            props.push((key.clone(), value.clone()));
        }
        props
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect::<String>()
    }

    /// A node's `java` arguments: JVM options (with the system properties), then the class
    /// and its `server.properties`.
    fn node_args(&self, node: &Node) -> Vec<String> {
        let mut args: Vec<String> = self
            .system_properties
            .iter()
            .map(|(k, v)| format!("-D{k}={v}"))
            .collect();
        args.extend(self.jvm_args("384m"));
        args.push("kafka.Kafka".to_owned());
        args.push(node.dir.join("server.properties").display().to_string());
        args
    }

    fn spawn(&mut self, index: usize) -> io::Result<()> {
        let node = &self.nodes[index];
        let args = self.node_args(node);
        self.spawns += 1;
        let process = NodeProcess::spawn(
            &self.java,
            &args,
            &node.dir.join("stdout.log"),
            self.spawns,
            self.events_tx.clone(),
        )?;
        self.nodes[index].process = Some(process);
        Ok(())
    }

    /// Waits until nodes `ids`, just spawned, log that they started; an error as soon as one
    /// of them exits, or at `deadline`. Events of other processes are passed over.
    fn wait_started(&mut self, ids: &[i32], deadline: Instant) -> io::Result<()> {
        let mut pending: Vec<(u64, i32)> = self
            .nodes
            .iter()
            .filter(|n| ids.contains(&n.id))
            .filter_map(|n| n.process.as_ref().map(|p| (p.spawn, n.id)))
            .collect();
        while !pending.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let NodeEvent { spawn, event } = match self.events.recv_timeout(left) {
                Ok(e) => e,
                Err(_) => {
                    let ids: Vec<i32> = pending.iter().map(|(_, id)| *id).collect();
                    return Err(error(format!(
                        "nodes {ids:?} did not start within {} s",
                        START_TIMEOUT.as_secs()
                    )));
                }
            };
            let Some(at) = pending.iter().position(|(s, _)| *s == spawn) else {
                continue;
            };
            match event {
                Event::Started => {
                    pending.remove(at);
                }
                Event::Exited => {
                    return Err(error(format!(
                        "node {} exited while starting",
                        pending[at].1
                    )));
                }
            }
        }
        Ok(())
    }

    /// Whether a node's log says a port it was to bind was in use.
    fn port_was_taken(&self) -> bool {
        self.nodes.iter().any(|node| {
            fs::read_to_string(node.dir.join("stdout.log"))
                .is_ok_and(|log| log.contains("Address already in use"))
        })
    }

    /// Polls every running broker's Metadata until each lists all running brokers.
    fn wait_brokers(&self, deadline: Instant) -> io::Result<()> {
        let running: Vec<i32> = self
            .nodes
            .iter()
            .filter(|n| n.process.is_some())
            .map(|n| n.id)
            .collect();
        poll_until(deadline, || {
            for node in self.nodes.iter().filter(|n| n.process.is_some()) {
                let mut seen = brokers(&node.broker_addr)?;
                seen.sort_unstable();
                if seen != running {
                    return Err(error(format!(
                        "broker {} lists brokers {seen:?}, not {running:?}",
                        node.id
                    )));
                }
            }
            Ok(())
        })
    }

    /// Sends SIGTERM (Kafka's controlled shutdown) and waits for the exit; kills after
    /// [`STOP_TIMEOUT`]. Dropping `process` kills (a no-op once it exited) and reaps.
    fn stop_process(&mut self, process: NodeProcess) {
        let pid = process.java.id().to_string();
        let termed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + STOP_TIMEOUT;
        if termed {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.events.recv_timeout(left) {
                    Ok(e) if e.spawn == process.spawn && e.event == Event::Exited => break,
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
        }
        drop(process);
    }

    fn kill_all(&mut self) {
        for node in &mut self.nodes {
            node.process = None;
        }
    }

    fn node_index(&self, id: i32) -> io::Result<usize> {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .ok_or_else(|| error(format!("no node {id}")))
    }

    /// The running brokers' addresses, comma-separated, for a client's `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.process.is_some())
            .map(|n| n.broker_addr.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node `id`'s broker address, `127.0.0.1:PORT` (the same after a restart).
    pub fn broker_addr(&self, id: i32) -> Option<&str> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.broker_addr.as_str())
    }

    /// Node `id`'s address on the second listener ([`Options::listener`]), `127.0.0.1:PORT`.
    pub fn listener_addr(&self, id: i32) -> Option<&str> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .and_then(|n| n.listener_addr.as_deref())
    }

    /// Node `id`'s address on the listener `name` of [`Options::more_listeners`].
    pub fn named_listener_addr(&self, id: i32, name: &str) -> Option<&str> {
        let k = self.more_listeners.iter().position(|(n, _)| n == name)?;
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .and_then(|n| n.more_addrs.get(k))
            .map(String::as_str)
    }

    /// The node ids, 1 to the number of nodes.
    pub fn node_ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// The running nodes' process ids (for their memory and CPU time in `/proc`).
    pub fn pids(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .filter_map(|n| n.process.as_ref().map(|p| p.java.id()))
            .collect()
    }

    /// The folder with every node's `server.properties`, `stdout.log` and data; removed when
    /// the cluster is dropped, kept (and printed) when the thread is panicking.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops node `id` cleanly (SIGTERM, Kafka's controlled shutdown; killed after 30 s) and
    /// waits until the other brokers list only each other.
    ///
    /// # Errors
    /// An unknown or stopped node, or metadata that does not settle.
    pub fn stop_node(&mut self, id: i32) -> io::Result<()> {
        let index = self.node_index(id)?;
        let process = self.nodes[index]
            .process
            .take()
            .ok_or_else(|| error(format!("node {id} is not running")))?;
        self.stop_process(process);
        self.wait_brokers(Instant::now() + START_TIMEOUT)
    }

    /// Kills node `id` (SIGKILL, a crash) and waits until the other brokers list only each
    /// other.
    ///
    /// # Errors
    /// An unknown or stopped node, or metadata that does not settle.
    pub fn kill_node(&mut self, id: i32) -> io::Result<()> {
        let index = self.node_index(id)?;
        if self.nodes[index].process.take().is_none() {
            return Err(error(format!("node {id} is not running")));
        }
        self.wait_brokers(Instant::now() + START_TIMEOUT)
    }

    /// Starts stopped node `id` again with its ports and data, and waits until every running
    /// broker lists every running broker.
    ///
    /// # Errors
    /// An unknown or running node, or one that does not come up in time.
    pub fn start_node(&mut self, id: i32) -> io::Result<()> {
        let index = self.node_index(id)?;
        if self.nodes[index].process.is_some() {
            return Err(error(format!("node {id} is already running")));
        }
        let deadline = Instant::now() + START_TIMEOUT;
        self.spawn(index)?;
        self.wait_started(&[id], deadline)?;
        self.wait_brokers(deadline)
    }

    /// Replica lists for `partitions` partitions of `replication` replicas (at most the number
    /// of nodes), each led by node `leader`: it is listed first, so it is also the preferred
    /// leader; the other replicas take turns among the other nodes.
    pub fn led_by(&self, leader: i32, partitions: usize, replication: usize) -> Vec<Vec<i32>> {
        let others: Vec<i32> = self
            .nodes
            .iter()
            .map(|n| n.id)
            .filter(|&id| id != leader)
            .collect();
        (0..partitions)
            .map(|p| {
                let mut replicas = vec![leader];
                if !others.is_empty() {
                    let followers = replication.saturating_sub(1).min(others.len());
                    replicas.extend((0..followers).map(|k| others[(p + k) % others.len()]));
                }
                replicas
            })
            .collect()
    }

    /// Creates topic `name` with CreateTopics: with `assignment` (one replica list per
    /// partition, first replica the leader) when given, else `partitions` partitions of
    /// `replication` replicas placed by Kafka; `configs` are topic configs such as
    /// `min.insync.replicas`. Returns once every running broker's Metadata shows a leader for
    /// every partition.
    ///
    /// # Errors
    /// A refused request (the broker's error code and message) or metadata that does not settle.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
        assignment: Option<&[Vec<i32>]>,
        configs: &[(&str, &str)],
    ) -> io::Result<()> {
        let mut topic = CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.to_owned())))
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string((*k).to_owned()))
                            .with_value(Some(StrBytes::from_string((*v).to_owned())))
                    })
                    .collect(),
            );
        let expected_partitions = match assignment {
            Some(lists) => {
                topic = topic
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
                    .with_assignments(
                        lists
                            .iter()
                            .enumerate()
                            .map(|(p, ids)| {
                                CreatableReplicaAssignment::default()
                                    .with_partition_index(i32::try_from(p).unwrap_or(i32::MAX))
                                    .with_broker_ids(ids.iter().map(|&id| BrokerId(id)).collect())
                            })
                            .collect(),
                    );
                lists.len()
            }
            None => {
                topic = topic
                    .with_num_partitions(partitions)
                    .with_replication_factor(replication);
                usize::try_from(partitions).unwrap_or(0)
            }
        };
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(30_000);
        let addr = self.any_broker()?;
        let response = call(addr, 7, &request)?;
        for topic in &response.topics {
            if topic.error_code != 0 {
                return Err(error(format!(
                    "creating topic `{name}`: error {} {}",
                    topic.error_code,
                    topic.error_message.as_deref().unwrap_or("")
                )));
            }
        }
        poll_until(Instant::now() + START_TIMEOUT, || {
            for node in self.nodes.iter().filter(|n| n.process.is_some()) {
                let led = leaders(&node.broker_addr, name)?;
                if led.len() != expected_partitions || led.iter().any(|&l| l < 0) {
                    return Err(error(format!(
                        "broker {} shows topic `{name}` with leaders {led:?}",
                        node.id
                    )));
                }
            }
            Ok(())
        })
    }

    /// The leader of each partition of `topic`, by partition index, as broker `via` sees it
    /// (-1 for none).
    ///
    /// # Errors
    /// An unknown or stopped node, or a failed request.
    pub fn leaders(&self, via: i32, topic: &str) -> io::Result<Vec<i32>> {
        let index = self.node_index(via)?;
        leaders(&self.nodes[index].broker_addr, topic)
    }

    /// Starts a cluster of `nodes` whose group coordinator is always node `coordinator`: group
    /// offsets get one partition (`offsets.topic.num.partitions=1`), and `__consumer_offsets`
    /// is created before any group asks for it, on every node and led by `coordinator`. For a
    /// gateway that fronts one broker of the cluster.
    ///
    /// # Errors
    /// As [`KafkaCluster::start_with`] and [`KafkaCluster::create_topic`].
    pub fn start_with_coordinator(
        libs: &Path,
        nodes: u16,
        coordinator: i32,
    ) -> io::Result<KafkaCluster> {
        let cluster =
            KafkaCluster::start_with(libs, nodes, &[("offsets.topic.num.partitions", "1")])?;
        let replicas = i16::try_from(nodes).map_err(|_| error(format!("{nodes} nodes")))?;
        let min_insync = replicas.min(2).to_string();
        cluster.create_topic(
            "__consumer_offsets",
            1,
            replicas,
            Some(&cluster.led_by(coordinator, 1, usize::from(nodes))),
            &[
                ("cleanup.policy", "compact"),
                ("min.insync.replicas", &min_insync),
            ],
        )?;
        Ok(cluster)
    }

    /// Runs preferred-leader elections until broker `leader` leads every partition of `topics`
    /// (after a restart it must first catch up with the other replicas), for at most
    /// [`START_TIMEOUT`]. `leader` must be the preferred (first) replica of each partition.
    ///
    /// # Errors
    /// When `leader` is no node of the cluster, or does not lead in time.
    pub fn make_lead(&self, leader: i32, topics: &[&str]) -> io::Result<()> {
        let index = self.node_index(leader)?;
        let addr = &self.nodes[index].broker_addr;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let led = topics
                .iter()
                .all(|t| leaders(addr, t).is_ok_and(|l| l.iter().all(|&id| id == leader)));
            if led {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(error(format!("broker {leader} does not lead {topics:?}")));
            }
            let mut req = ElectLeadersRequest::default();
            req.election_type = 0; // preferred
            req.topic_partitions = None; // all
            req.timeout_ms = 10_000;
            // Refusals (a replica not yet in sync) are answered per partition: ask again.
            let _ = call(addr, 2, &req);
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Each partition of `topic` as broker `via` sees it, by partition index: its leader (-1
    /// for none), replicas (the first is the preferred leader) and in-sync replicas.
    ///
    /// # Errors
    /// An unknown or stopped node, or a failed request.
    pub fn partitions(&self, via: i32, topic: &str) -> io::Result<Vec<PartitionState>> {
        let index = self.node_index(via)?;
        partitions(&self.nodes[index].broker_addr, topic)
    }

    /// Runs preferred-leader elections until every partition of `topics` is led by its
    /// preferred (first) replica, as every running broker sees it (a restarted broker must
    /// first catch up and rejoin the in-sync replicas), for at most [`START_TIMEOUT`]. Unlike
    /// [`KafkaCluster::make_lead`], for topics whose partitions have different leaders.
    ///
    /// # Errors
    /// When no node runs, or the preferred replicas do not lead in time.
    pub fn elect_preferred(&self, topics: &[&str]) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let running = || self.nodes.iter().filter(|n| n.process.is_some());
            let led = running().all(|node| {
                topics.iter().all(|t| {
                    partitions(&node.broker_addr, t).is_ok_and(|ps| {
                        ps.iter()
                            .all(|p| p.replicas.first().is_some_and(|&r| r == p.leader))
                    })
                })
            });
            if led {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(error(format!(
                    "the preferred replicas do not lead {topics:?}"
                )));
            }
            let mut req = ElectLeadersRequest::default();
            req.election_type = 0; // preferred
            req.topic_partitions = None; // all
            req.timeout_ms = 10_000;
            // Refusals (a replica not yet in sync) are answered per partition: ask again.
            let _ = call(self.any_broker()?, 2, &req);
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn any_broker(&self) -> io::Result<&str> {
        self.nodes
            .iter()
            .find(|n| n.process.is_some())
            .map(|n| n.broker_addr.as_str())
            .ok_or_else(|| error("no node is running".to_owned()))
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        self.kill_all();
        if self.dir.as_os_str().is_empty() {
            return;
        }
        if std::thread::panicking() {
            eprintln!("kafka cluster: logs kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A short-lived child (the storage formatter), killed and reaped on drop.
struct KilledOnDrop(Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Asks `check` until it succeeds, every [`POLL_INTERVAL`], until `deadline`; then its last
/// error. For state only the cluster knows (its metadata), which no event announces.
fn poll_until(deadline: Instant, mut check: impl FnMut() -> io::Result<()>) -> io::Result<()> {
    loop {
        match check() {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(POLL_INTERVAL),
        }
    }
}

/// The broker ids in `addr`'s Metadata.
fn brokers(addr: &str) -> io::Result<Vec<i32>> {
    let request = MetadataRequest::default().with_topics(Some(Vec::new()));
    let response: MetadataResponse = call(addr, 12, &request)?;
    Ok(response.brokers.iter().map(|b| b.node_id.0).collect())
}

/// One partition in a broker's Metadata ([`KafkaCluster::partitions`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionState {
    /// The leader's node id, -1 for none (or a partition error).
    pub leader: i32,
    /// The replicas' node ids; the first is the preferred leader.
    pub replicas: Vec<i32>,
    /// The in-sync replicas' node ids.
    pub isr: Vec<i32>,
}

/// Each partition of `topic` in `addr`'s Metadata, by partition index.
fn partitions(addr: &str, topic: &str) -> io::Result<Vec<PartitionState>> {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
            TopicName(StrBytes::from_string(topic.to_owned())),
        ))]));
    let response: MetadataResponse = call(addr, 12, &request)?;
    let topic = response
        .topics
        .first()
        .ok_or_else(|| error(format!("no topic `{topic}` in the metadata")))?;
    if topic.error_code != 0 {
        return Err(error(format!("topic metadata error {}", topic.error_code)));
    }
    let mut partitions: Vec<(i32, PartitionState)> = topic
        .partitions
        .iter()
        .map(|p| {
            let ids = |l: &[BrokerId]| l.iter().map(|b| b.0).collect::<Vec<i32>>();
            (
                p.partition_index,
                PartitionState {
                    leader: if p.error_code == 0 { p.leader_id.0 } else { -1 },
                    replicas: ids(&p.replica_nodes),
                    isr: ids(&p.isr_nodes),
                },
            )
        })
        .collect();
    partitions.sort_unstable_by_key(|(i, _)| *i);
    Ok(partitions.into_iter().map(|(_, p)| p).collect())
}

/// The leader of each partition of `topic` in `addr`'s Metadata.
fn leaders(addr: &str, topic: &str) -> io::Result<Vec<i32>> {
    Ok(partitions(addr, topic)?
        .into_iter()
        .map(|p| p.leader)
        .collect())
}

/// One request and its response over a new blocking connection: the cluster's own calls run
/// from synchronous code (tests, `Drop`), where the async [`super::kafka::KafkaClient`] would
/// need a runtime of its own.
fn call<R: Request>(addr: &str, version: i16, request: &R) -> io::Result<R::Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut header = RequestHeader::default();
    header.request_api_key = R::KEY;
    header.request_api_version = version;
    header.correlation_id = 1;
    header.client_id = Some(StrBytes::from_static_str("poolgate-testkit-cluster"));
    let mut out = BytesMut::with_capacity(256);
    out.put_i32(0);
    header
        .encode(&mut out, R::header_version(version))
        .map_err(codec)?;
    request.encode(&mut out, version).map_err(codec)?;
    let len = i32::try_from(out.len() - 4).map_err(|e| error(e.to_string()))?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    stream.write_all(&out)?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = usize::try_from(i32::from_be_bytes(len))
        .ok()
        .filter(|&n| n <= 64 << 20)
        .ok_or_else(|| error("bad response frame length".to_owned()))?;
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    let mut body = bytes::Bytes::from(body);
    let header =
        ResponseHeader::decode(&mut body, R::Response::header_version(version)).map_err(codec)?;
    if header.correlation_id != 1 {
        return Err(error(format!(
            "correlation id {}, expected 1",
            header.correlation_id
        )));
    }
    let response = R::Response::decode(&mut body, version).map_err(codec)?;
    if body.has_remaining() {
        return Err(error(format!(
            "{} bytes after the response",
            body.remaining()
        )));
    }
    Ok(response)
}

/// A random cluster id: 16 bytes in unpadded URL-safe base64, as Kafka writes them.
/// A random cluster id, as Kafka's `Uuid.randomUuid()` makes them: base64url, and never
/// starting with `-`, which `kafka-storage format --cluster-id` would take for an option (one
/// id in 64 would otherwise fail the cluster's start).
fn random_uuid() -> String {
    use base64::Engine as _;
    loop {
        let id =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// Kafka's log4j2 configuration for the tests: everything at INFO to standard output (copied
/// into each node's `stdout.log`, where the start-up line is watched for).
const LOG4J2: &str = "\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.request.name = kafka.request.logger
logger.request.level = warn
";

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::mpsc;

    use super::{KafkaCluster, Node, random_uuid};

    #[test]
    fn cluster_ids_never_start_with_a_dash() {
        for _ in 0..10_000 {
            let id = random_uuid();
            assert_eq!(id.len(), 22, "{id}");
            assert!(!id.starts_with('-'), "{id}");
        }
    }

    /// A cluster of one node that was never started, with a second listener `OAUTH`.
    fn unstarted(listener: bool) -> KafkaCluster {
        let (events_tx, events) = mpsc::channel();
        KafkaCluster {
            java: PathBuf::from("java"),
            libs: PathBuf::from("/libs"),
            // Empty: dropping it removes nothing.
            dir: PathBuf::new(),
            cluster_id: "id".to_owned(),
            extra: vec![("num.io.threads".to_owned(), "1".to_owned())],
            listener: listener.then(|| ("OAUTH".to_owned(), "SASL_PLAINTEXT".to_owned())),
            system_properties: vec![("a.b".to_owned(), "http://x/jwks".to_owned())],
            more_listeners: Vec::new(),
            scram_credentials: Vec::new(),
            nodes: vec![Node {
                id: 1,
                broker_addr: "127.0.0.1:1001".to_owned(),
                listener_addr: listener.then(|| "127.0.0.1:1003".to_owned()),
                more_addrs: Vec::new(),
                controller_port: 1002,
                dir: PathBuf::from("/n1"),
                process: None,
            }],
            events,
            events_tx,
            spawns: 0,
        }
    }

    fn property<'a>(props: &'a str, key: &str) -> Vec<&'a str> {
        props
            .lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .collect()
    }

    #[test]
    fn more_listeners_follow_the_second_one() {
        let mut cluster = unstarted(true);
        cluster.more_listeners = vec![
            ("SECURE".to_owned(), "SASL_SSL".to_owned()),
            ("MTLS".to_owned(), "SSL".to_owned()),
        ];
        cluster.nodes[0].more_addrs =
            vec!["127.0.0.1:1004".to_owned(), "127.0.0.1:1005".to_owned()];
        let props = cluster.server_properties(&cluster.nodes[0], "1@127.0.0.1:1002");
        assert_eq!(
            property(&props, "listeners"),
            [
                "PLAINTEXT://127.0.0.1:1001,OAUTH://127.0.0.1:1003,SECURE://127.0.0.1:1004,MTLS://127.0.0.1:1005,CONTROLLER://127.0.0.1:1002"
            ]
        );
        assert_eq!(
            property(&props, "listener.security.protocol.map"),
            [
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,OAUTH:SASL_PLAINTEXT,SECURE:SASL_SSL,MTLS:SSL"
            ]
        );
        assert_eq!(
            cluster.named_listener_addr(1, "MTLS"),
            Some("127.0.0.1:1005")
        );
        assert_eq!(cluster.named_listener_addr(1, "OAUTH"), None);
        assert_eq!(cluster.named_listener_addr(2, "MTLS"), None);
    }

    #[test]
    fn a_second_listener_is_listened_on_advertised_and_mapped() {
        let cluster = unstarted(true);
        let props = cluster.server_properties(&cluster.nodes[0], "1@127.0.0.1:1002");
        assert_eq!(
            property(&props, "listeners"),
            ["PLAINTEXT://127.0.0.1:1001,OAUTH://127.0.0.1:1003,CONTROLLER://127.0.0.1:1002"]
        );
        assert_eq!(
            property(&props, "advertised.listeners"),
            ["PLAINTEXT://127.0.0.1:1001,OAUTH://127.0.0.1:1003"]
        );
        assert_eq!(
            property(&props, "listener.security.protocol.map"),
            ["PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,OAUTH:SASL_PLAINTEXT"]
        );
        assert_eq!(
            property(&props, "inter.broker.listener.name"),
            ["PLAINTEXT"]
        );
        assert_eq!(
            property(&props, "num.io.threads"),
            ["1"],
            "extra overrides, once"
        );
        assert_eq!(cluster.listener_addr(1), Some("127.0.0.1:1003"));

        let plain = unstarted(false);
        let props = plain.server_properties(&plain.nodes[0], "1@127.0.0.1:1002");
        assert_eq!(
            property(&props, "listeners"),
            ["PLAINTEXT://127.0.0.1:1001,CONTROLLER://127.0.0.1:1002"]
        );
        assert_eq!(plain.listener_addr(1), None);
    }

    #[test]
    fn system_properties_come_before_the_class() {
        let cluster = unstarted(false);
        let args = cluster.node_args(&cluster.nodes[0]);
        let at = |s: &str| args.iter().position(|a| a == s).unwrap();
        assert!(at("-Da.b=http://x/jwks") < at("kafka.Kafka"));
        assert!(at("-Da.b=http://x/jwks") < at("-cp"));
        assert_eq!(
            args.last().map(String::as_str),
            Some("/n1/server.properties")
        );
    }
}
