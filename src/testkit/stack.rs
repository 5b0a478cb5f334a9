//! Processes for the gateway's end-to-end tests and benchmarks: a tansu broker and
//! `poolgate gateway`, started from binaries the caller names and killed on drop.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TestIssuer;

/// The folder `e2e/setup` installs its parts into (tansu with `e2e/setup tansu`):
/// `$POOLGATE_E2E_CACHE`, else `~/.cache/poolgate-e2e`; `None` when tansu is not there.
pub fn e2e_cache() -> Option<PathBuf> {
    let dir = match std::env::var_os("POOLGATE_E2E_CACHE") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/poolgate-e2e"),
    };
    dir.join("tansu/bin/tansu").exists().then_some(dir)
}

/// A free TCP port on 127.0.0.1 (free when asked; a process should take it soon). Only for
/// programs that must be told their address before they listen (tansu advertises it); the
/// gateway and the issuer listen on port 0 and print the address they got.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A gateway configuration template with `{issuer}` and `{discovery_url}` filled in for
/// `issuer` (see `testdata/gateway/gateway.toml`).
pub fn gateway_config(template: &str, issuer: &TestIssuer) -> String {
    template
        .replace("{issuer}", issuer.issuer())
        .replace("{discovery_url}", issuer.discovery_url().as_str())
}

/// A child process, killed and reaped on drop.
#[derive(Debug)]
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_owned())
}

/// A tansu broker with in-memory storage on a free 127.0.0.1 port.
#[derive(Debug)]
pub struct Tansu {
    addr: String,
    binary: PathBuf,
    cluster_id: String,
    _child: Killed,
}

impl Tansu {
    /// Starts `binary` (`tansu`) on a free port and waits until it accepts connections (at
    /// most 30 s).
    ///
    /// # Errors
    /// When it cannot start or does not listen in time.
    pub fn start(binary: &Path, cluster_id: &str) -> io::Result<Tansu> {
        // tansu advertises the address it is given, so it cannot be given port 0: it gets a
        // port that was free a moment ago. When another process took the port in between,
        // tansu exits instead of listening, and it starts again on another port.
        let mut attempts = 3;
        loop {
            let addr = format!("127.0.0.1:{}", free_port()?);
            match Tansu::start_at(binary, &addr, cluster_id) {
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempts > 1 => attempts -= 1,
                other => return other,
            }
        }
    }

    /// Starts `binary` on `addr` (for a fresh broker where an old one was), and waits until it
    /// accepts connections (at most 30 s).
    ///
    /// # Errors
    /// When it cannot start or does not listen in time.
    pub fn start_at(binary: &Path, addr: &str, cluster_id: &str) -> io::Result<Tansu> {
        let child = Tansu::spawn(binary, addr, cluster_id)?;
        Ok(Tansu {
            addr: addr.to_owned(),
            binary: binary.to_owned(),
            cluster_id: cluster_id.to_owned(),
            _child: child,
        })
    }

    /// Replaces the broker with a fresh, empty one on the same address.
    ///
    /// # Errors
    /// When the new one cannot start or does not listen in time.
    pub fn restart(&mut self) -> io::Result<()> {
        let _ = self._child.0.kill();
        let _ = self._child.0.wait();
        self._child = Tansu::spawn(&self.binary, &self.addr, &self.cluster_id)?;
        Ok(())
    }

    fn spawn(binary: &Path, addr: &str, cluster_id: &str) -> io::Result<Killed> {
        let url = format!("tcp://{addr}");
        let child = Killed(
            Command::new(binary)
                .args([
                    "broker",
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &url,
                ])
                .args([
                    "--storage-engine",
                    "memory://tansu/",
                    "--cluster-id",
                    cluster_id,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
        let mut child = child;
        let started = Instant::now();
        loop {
            // Exited: most likely the port was taken (by whatever answers a connection there).
            if let Some(status) = child.0.try_wait()? {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("tansu exited ({status}) instead of listening on {addr}"),
                ));
            }
            if TcpStream::connect(addr).is_ok() {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(timed_out("tansu did not listen within 30 s"));
            }
            std::thread::yield_now();
        }
        Ok(child)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The process id (for reading its CPU time from `/proc`).
    pub fn pid(&self) -> u32 {
        self._child.0.id()
    }
}

/// `poolgate gateway` listening on a free 127.0.0.1 port.
#[derive(Debug)]
pub struct GatewayProcess {
    addr: String,
    metrics: Option<String>,
    line: String,
    _child: Killed,
}

impl GatewayProcess {
    /// Runs `binary gateway --config CONFIG --listen 127.0.0.1:0 --upstream UPSTREAM EXTRA...`
    /// and reads its start-up line for the addresses.
    ///
    /// # Errors
    /// When it cannot start, or exits before listening.
    pub fn spawn(
        binary: &Path,
        config: &Path,
        upstream: &str,
        extra: &[&str],
    ) -> io::Result<GatewayProcess> {
        GatewayProcess::spawn_with_env(binary, config, upstream, extra, &[])
    }

    /// [`GatewayProcess::spawn`] with environment variables set, such as `RUST_LOG`.
    ///
    /// # Errors
    /// When it cannot start, or exits before listening.
    pub fn spawn_with_env(
        binary: &Path,
        config: &Path,
        upstream: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> io::Result<GatewayProcess> {
        GatewayProcess::spawn_listening(binary, config, "127.0.0.1:0", upstream, extra, env)
    }

    /// [`GatewayProcess::spawn_with_env`] listening on `listen` (such as `127.0.0.2:PORT`, for
    /// two gateways on the same ports of different loopback addresses).
    ///
    /// # Errors
    /// When it cannot start, or exits before listening.
    pub fn spawn_listening(
        binary: &Path,
        config: &Path,
        listen: &str,
        upstream: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> io::Result<GatewayProcess> {
        let mut child = Command::new(binary)
            .arg("gateway")
            .arg("--config")
            .arg(config)
            .args(["--listen", listen, "--upstream", upstream])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take();
        let child = Killed(child);
        let mut line = String::new();
        if let Some(out) = stdout {
            BufReader::new(out).read_line(&mut line)?;
        }
        let addr = line
            .strip_prefix("poolgate gateway listening on ")
            .and_then(|rest| rest.split(' ').next())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("no start-up line from the gateway: {line:?}"),
                )
            })?
            .to_owned();
        let metrics = line
            .split_once("metrics on http://")
            .and_then(|(_, url)| url.trim().strip_suffix("/metrics"))
            .map(str::to_owned);
        Ok(GatewayProcess {
            addr,
            metrics,
            line: line.trim_end().to_owned(),
            _child: child,
        })
    }

    /// Where clients connect: the bound listen address, `127.0.0.1:PORT` unless started with
    /// [`GatewayProcess::spawn_listening`].
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The process id (for reading its CPU time from `/proc`).
    pub fn pid(&self) -> u32 {
        self._child.0.id()
    }

    /// The start-up line, such as `poolgate gateway listening on 127.0.0.1:P (plaintext), ...,
    /// nodes 1-3 on ports 1=P1,2=P2,3=P3`.
    pub fn start_line(&self) -> &str {
        &self.line
    }

    /// With port routing, each node's port, from the start-up line (`... on ports 1=P1,...`);
    /// empty with SNI routing.
    pub fn node_ports(&self) -> std::collections::BTreeMap<i32, u16> {
        self.line
            .split_once(" on ports ")
            .map(|(_, rest)| {
                rest.split([',', ' '])
                    .map_while(|pair| {
                        let (id, port) = pair.split_once('=')?;
                        Some((id.parse().ok()?, port.parse().ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The Prometheus text from `GET /metrics` (started with `--metrics-listen`).
    ///
    /// # Errors
    /// Without a metrics address, or when the request fails.
    pub fn metrics(&self) -> io::Result<String> {
        let addr = self.metrics.as_deref().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "started without --metrics-listen")
        })?;
        let mut s = TcpStream::connect(addr)?;
        write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
        let mut body = String::new();
        s.read_to_string(&mut body)?;
        Ok(body)
    }

    /// The value of one series (name and labels exactly as printed), 0 when absent.
    pub fn metric(&self, series: &str) -> u64 {
        self.metrics()
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0)
    }
}
