//! The gateway's own connections to its brokers: TCP, then TLS (a CA file, the server name
//! checked, an optional client certificate), then the gateway's own SASL login (PLAIN,
//! SCRAM-SHA-256/512, or OAUTHBEARER with a `client_credentials` token it fetches and
//! refreshes), as `[gateway.upstream]` says. It must not know about client sessions: a client's
//! principal stays the gateway's business, the broker sees the gateway's identity.
//!
//! Never falls back: a configured TLS or SASL step that fails fails the connection.
//!
//! KIP-368: a broker that limits the login's session reports its lifetime
//! ([`Connected::session_lifetime_ms`]); [`reauthenticate`] logs in again on a connection in
//! use, through any [`Transport`] (a client session passes its own, which keeps the
//! gateway's requests in order with the client's).

mod scram;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use poolgate::config::{ScramHash, SecretSource, UpstreamConfig, UpstreamOAuth, UpstreamSasl};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;

use super::wire::{Frames, WireError, split_response};

/// SASL frames are small; a broker's answer during login is capped at this.
const LOGIN_MAX_FRAME: usize = 1 << 20;
/// A token is refreshed once this share of its lifetime has passed.
const REFRESH_AT: f64 = 0.8;
/// The lifetime assumed for a token response without `expires_in`.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// Why the gateway could not connect to, or log in at, a broker. Messages never carry a secret
/// or a token.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// `[gateway.upstream]` names a file or variable that cannot be used (at start).
    #[error("[gateway.upstream]: {0}")]
    Setup(String),
    /// TCP connect failed: the broker is not reachable (yet).
    #[error("cannot connect to `{addr}`: {reason}")]
    Connect {
        /// The broker.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// TCP connect or the TLS handshake took longer than `connect_timeout`.
    #[error("connecting to `{0}` timed out")]
    Timeout(String),
    /// The TLS handshake failed: an untrusted or misnamed certificate, a refused client
    /// certificate, a broker that does not speak TLS.
    #[error("TLS handshake with `{addr}` failed: {reason}")]
    Tls {
        /// The broker.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The broker refused the gateway's SASL login, or could not prove the SCRAM password.
    #[error("SASL {mechanism} login at `{addr}` failed: {reason}")]
    Auth {
        /// The broker.
        addr: String,
        /// The mechanism.
        mechanism: &'static str,
        /// What the broker (or the SCRAM check) said.
        reason: String,
    },
    /// The gateway's token could not be fetched for OAUTHBEARER.
    #[error("token endpoint `{url}`: {reason}")]
    Token {
        /// The token endpoint.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The broker broke the protocol or the connection during the login.
    #[error("`{addr}`: {reason}")]
    Protocol {
        /// The broker.
        addr: String,
        /// What went wrong.
        reason: String,
    },
}

impl UpstreamError {
    /// Whether the error can go away by itself (a broker not started yet), as opposed to one
    /// that retrying will not fix (credentials, certificates): at start only the former is
    /// waited out.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            UpstreamError::Connect { .. }
                | UpstreamError::Timeout(_)
                | UpstreamError::Protocol { .. }
        )
    }
}

/// An I/O error on a connection after [`connect`] returned it: a TLS alert from the broker
/// (such as a refused client certificate, which TLS 1.3 reports only after the handshake) is
/// an [`UpstreamError::Tls`]; anything else an [`UpstreamError::Protocol`] about `what`.
pub fn after_connect(addr: &str, what: &str, e: &std::io::Error) -> UpstreamError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => UpstreamError::Tls {
            addr: addr.to_owned(),
            reason: tls.to_string(),
        },
        None => UpstreamError::Protocol {
            addr: addr.to_owned(),
            reason: format!("{what}: {e}"),
        },
    }
}

/// A secret read at start; never printed.
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

fn read_secret(source: &SecretSource, field: &str) -> Result<Secret, UpstreamError> {
    let value = match source {
        SecretSource::File(path) => std::fs::read_to_string(path).map_err(|e| {
            UpstreamError::Setup(format!(
                "field `{field}_file`: cannot read `{}`: {e}",
                path.display()
            ))
        })?,
        SecretSource::Env(name) => std::env::var(name).map_err(|_| {
            UpstreamError::Setup(format!(
                "field `{field}_env`: the environment variable `{name}` is not set or not UTF-8"
            ))
        })?,
        _ => {
            return Err(UpstreamError::Setup(format!(
                "field `{field}`: unsupported secret source"
            )));
        }
    };
    let value = value.strip_suffix('\n').unwrap_or(&value);
    let value = value.strip_suffix('\r').unwrap_or(value);
    if value.is_empty() {
        return Err(UpstreamError::Setup(format!(
            "field `{field}`: the secret is empty"
        )));
    }
    Ok(Secret(value.to_owned()))
}

/// How to reach the brokers: `[gateway.upstream]` with its certificates and secrets loaded.
pub struct Upstream {
    tls: Option<(TlsConnector, Option<ServerName<'static>>)>,
    sasl: Option<Login>,
    connect_timeout: Duration,
    protocol: &'static str,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("protocol", &self.protocol)
            .field("sasl", &self.sasl)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum Login {
    Plain {
        username: String,
        password: Secret,
    },
    Scram {
        hash: ScramHash,
        username: String,
        password: Secret,
    },
    OAuthBearer(Arc<TokenSource>),
}

impl Login {
    fn mechanism(&self) -> &'static str {
        match self {
            Login::Plain { .. } => "PLAIN",
            Login::Scram {
                hash: ScramHash::Sha256,
                ..
            } => "SCRAM-SHA-256",
            Login::Scram {
                hash: ScramHash::Sha512,
                ..
            } => "SCRAM-SHA-512",
            Login::OAuthBearer(_) => "OAUTHBEARER",
        }
    }
}

impl Upstream {
    /// Loads the CA file, the client certificate and the secrets `cfg` names.
    ///
    /// # Errors
    /// [`UpstreamError::Setup`] naming the field and the file or variable.
    pub fn load(cfg: &UpstreamConfig) -> Result<Upstream, UpstreamError> {
        let tls = match &cfg.tls {
            None => None,
            Some(t) => {
                use rustls::pki_types::pem::PemObject;
                use rustls::pki_types::{CertificateDer, PrivateKeyDer};
                let setup = |field: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
                    UpstreamError::Setup(format!("field `{field}`: `{}`: {e}", path.display()))
                };
                let mut roots = rustls::RootCertStore::empty();
                let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&t.ca_file)
                    .and_then(|it| it.collect::<Result<_, _>>())
                    .map_err(|e| setup("tls_ca_file", &t.ca_file, &e))?;
                let (added, _) = roots.add_parsable_certificates(cas);
                if added == 0 {
                    return Err(setup(
                        "tls_ca_file",
                        &t.ca_file,
                        &"no usable CA certificate",
                    ));
                }
                let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                let builder = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| UpstreamError::Setup(format!("TLS: {e}")))?
                    .with_root_certificates(roots);
                let config = match &t.client_cert {
                    None => builder.with_no_client_auth(),
                    Some((cert, key)) => {
                        let chain: Vec<CertificateDer<'static>> =
                            CertificateDer::pem_file_iter(cert)
                                .and_then(|it| it.collect::<Result<_, _>>())
                                .map_err(|e| setup("tls_cert_file", cert, &e))?;
                        if chain.is_empty() {
                            return Err(setup(
                                "tls_cert_file",
                                cert,
                                &"no certificate in the file",
                            ));
                        }
                        // The key's own error would not name a secret, but keep it short.
                        let key = PrivateKeyDer::from_pem_file(key)
                            .map_err(|e| setup("tls_key_file", key, &e))?;
                        builder
                            .with_client_auth_cert(chain, key)
                            .map_err(|e| setup("tls_cert_file", cert, &e))?
                    }
                };
                let name = match &t.server_name {
                    None => None,
                    Some(n) => Some(ServerName::try_from(n.clone()).map_err(|_| {
                        UpstreamError::Setup(format!(
                            "field `tls_server_name`: `{n}` is not a DNS name or an IP address"
                        ))
                    })?),
                };
                Some((TlsConnector::from(Arc::new(config)), name))
            }
        };
        let sasl = match &cfg.sasl {
            None => None,
            Some(UpstreamSasl::Plain { username, password }) => Some(Login::Plain {
                username: username.clone(),
                password: read_secret(password, "sasl_password")?,
            }),
            Some(UpstreamSasl::Scram {
                hash,
                username,
                password,
            }) => Some(Login::Scram {
                hash: *hash,
                username: username.clone(),
                password: read_secret(password, "sasl_password")?,
            }),
            Some(UpstreamSasl::OAuthBearer(o)) => {
                Some(Login::OAuthBearer(Arc::new(TokenSource::new(o)?)))
            }
            Some(_) => {
                return Err(UpstreamError::Setup(
                    "unsupported SASL mechanism".to_owned(),
                ));
            }
        };
        Ok(Upstream {
            tls,
            sasl,
            connect_timeout: cfg.connect_timeout,
            protocol: cfg.security_protocol(),
        })
    }

    /// Kafka's name of the security protocol in use, such as `SASL_SSL`.
    pub fn security_protocol(&self) -> &'static str {
        self.protocol
    }
}

/// A connection to a broker, logged in and ready for Kafka requests.
#[derive(Debug)]
pub enum UpstreamStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            UpstreamStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            UpstreamStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            UpstreamStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            UpstreamStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => std::pin::Pin::new(s).poll_write_vectored(cx, bufs),
            UpstreamStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpstreamStream::Plain(s) => s.is_write_vectored(),
            UpstreamStream::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// A logged-in connection and what the broker said about its session.
#[derive(Debug)]
pub struct Connected {
    /// The connection, ready for Kafka requests.
    pub stream: UpstreamStream,
    /// The session lifetime the broker reported at login (KIP-368; 0: no limit, or no SASL).
    pub session_lifetime_ms: i64,
}

/// Connects to the broker at `addr` (`host:port`): TCP and TLS within `connect_timeout`, then
/// the SASL login.
///
/// # Errors
/// An [`UpstreamError`]; [`UpstreamError::is_transient`] tells a broker that is not up from
/// one that refuses the gateway.
pub async fn connect(cfg: &Upstream, addr: &str) -> Result<Connected, UpstreamError> {
    let deadline = Instant::now() + cfg.connect_timeout;
    let tcp = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
        .await
        .map_err(|_| UpstreamError::Timeout(addr.to_owned()))?
        .map_err(|e| UpstreamError::Connect {
            addr: addr.to_owned(),
            reason: e.to_string(),
        })?;
    let _ = tcp.set_nodelay(true);
    let mut stream = match &cfg.tls {
        None => UpstreamStream::Plain(tcp),
        Some((connector, name)) => {
            let name = match name {
                Some(n) => n.clone(),
                None => host_name(addr)?,
            };
            let tls = tokio::time::timeout_at(deadline, connector.connect(name, tcp))
                .await
                .map_err(|_| UpstreamError::Timeout(addr.to_owned()))?
                .map_err(|e| UpstreamError::Tls {
                    addr: addr.to_owned(),
                    reason: e.to_string(),
                })?;
            UpstreamStream::Tls(Box::new(tls))
        }
    };
    let session_lifetime_ms = match &cfg.sasl {
        None => 0,
        Some(login) => {
            let mut direct = Direct {
                stream: &mut stream,
                frames: Frames::default(),
                addr,
                correlation_id: 0,
            };
            let mut conn = LoginConn {
                transport: &mut direct,
                addr,
                mechanism: login.mechanism(),
            };
            tokio::time::timeout(cfg.connect_timeout, conn.login(login))
                .await
                .map_err(|_| UpstreamError::Timeout(addr.to_owned()))??
        }
    };
    Ok(Connected {
        stream,
        session_lifetime_ms,
    })
}

/// The host of `host:port` as a TLS server name.
fn host_name(addr: &str) -> Result<ServerName<'static>, UpstreamError> {
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(h, _)| h)
        .trim_matches(['[', ']']);
    ServerName::try_from(host.to_owned()).map_err(|_| UpstreamError::Tls {
        addr: addr.to_owned(),
        reason: format!("`{host}` is not a DNS name or an IP address: set `tls_server_name`"),
    })
}

/// One request frame out, its response frame back, in order with whatever else the
/// connection carries. The transport sets the frame's correlation id and checks the answer's.
pub trait Transport {
    /// Sends `frame` (length prefix included) and returns the response frame that answers it.
    fn round_trip(
        &mut self,
        frame: Bytes,
    ) -> impl std::future::Future<Output = Result<Bytes, UpstreamError>> + Send;
}

/// A fresh connection used only for the login.
struct Direct<'a> {
    stream: &'a mut UpstreamStream,
    frames: Frames,
    addr: &'a str,
    correlation_id: i32,
}

impl Transport for Direct<'_> {
    async fn round_trip(&mut self, frame: Bytes) -> Result<Bytes, UpstreamError> {
        self.correlation_id += 1;
        let mut frame = bytes::BytesMut::from(frame.as_ref());
        if let Some(id) = frame.get_mut(8..12) {
            id.copy_from_slice(&self.correlation_id.to_be_bytes());
        }
        let written = match self.stream.write_all(&frame).await {
            Ok(()) => self.stream.flush().await,
            Err(e) => Err(e),
        };
        written.map_err(|e| after_connect(self.addr, "during the SASL login", &e))?;
        let response = match self.frames.next(self.stream, LOGIN_MAX_FRAME).await {
            Ok(frame) => frame,
            Err(WireError::Io(e)) => {
                return Err(after_connect(self.addr, "during the SASL login", &e));
            }
            Err(e) => {
                return Err(UpstreamError::Protocol {
                    addr: self.addr.to_owned(),
                    reason: format!("the broker closed the connection during the SASL login ({e})"),
                });
            }
        };
        let got = response
            .get(4..8)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(i32::from_be_bytes);
        if got != Some(self.correlation_id) {
            return Err(UpstreamError::Protocol {
                addr: self.addr.to_owned(),
                reason: format!(
                    "a response with correlation id {got:?} during the SASL login, expected {}",
                    self.correlation_id
                ),
            });
        }
        Ok(response)
    }
}

/// Logs in again (KIP-368) on a connection in use, through `transport`: the broker's new
/// session lifetime in milliseconds (0 without SASL, where there is nothing to renew).
///
/// # Errors
/// As the first login: [`UpstreamError::Auth`], [`UpstreamError::Token`], or a transport
/// failure.
pub async fn reauthenticate<T: Transport + Send>(
    cfg: &Upstream,
    addr: &str,
    transport: &mut T,
) -> Result<i64, UpstreamError> {
    let Some(login) = &cfg.sasl else {
        return Ok(0);
    };
    let mut conn = LoginConn {
        transport,
        addr,
        mechanism: login.mechanism(),
    };
    tokio::time::timeout(cfg.connect_timeout, conn.login(login))
        .await
        .map_err(|_| UpstreamError::Timeout(addr.to_owned()))?
}

/// One login in progress.
struct LoginConn<'a, T> {
    transport: &'a mut T,
    addr: &'a str,
    mechanism: &'static str,
}

impl<T: Transport + Send> LoginConn<'_, T> {
    fn protocol(&self, reason: impl Into<String>) -> UpstreamError {
        UpstreamError::Protocol {
            addr: self.addr.to_owned(),
            reason: reason.into(),
        }
    }

    fn refused(&self, reason: impl Into<String>) -> UpstreamError {
        UpstreamError::Auth {
            addr: self.addr.to_owned(),
            mechanism: self.mechanism,
            reason: reason.into(),
        }
    }

    /// One request and its response.
    async fn call<R: Request + Sync>(
        &mut self,
        version: i16,
        body: &R,
    ) -> Result<R::Response, UpstreamError>
    where
        R::Response: Decodable,
    {
        let api = ApiKey::try_from(R::KEY).map_err(|()| self.protocol("unknown API"))?;
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.client_id = Some(StrBytes::from_static_str("poolgate-gateway"));
        let mut out = BytesMut::with_capacity(256);
        out.put_i32(0);
        header
            .encode(&mut out, api.request_header_version(version))
            .map_err(|e| self.protocol(e.to_string()))?;
        body.encode(&mut out, version)
            .map_err(|e| self.protocol(e.to_string()))?;
        let len = i32::try_from(out.len() - 4).map_err(|e| self.protocol(e.to_string()))?;
        out[..4].copy_from_slice(&len.to_be_bytes());
        let frame = self.transport.round_trip(out.freeze()).await?;
        let (_, mut body) = split_response(api, version, frame.slice(4..))
            .map_err(|e| self.protocol(e.to_string()))?;
        R::Response::decode(&mut body, version)
            .map_err(|e| self.protocol(format!("malformed {api:?} response: {e}")))
    }

    /// SaslAuthenticate v1 with `bytes`: the broker's bytes and session lifetime, or its refusal.
    async fn authenticate(&mut self, bytes: Vec<u8>) -> Result<(Bytes, i64), UpstreamError> {
        let mut req = SaslAuthenticateRequest::default();
        req.auth_bytes = Bytes::from(bytes);
        let resp: SaslAuthenticateResponse = self.call(1, &req).await?;
        if resp.error_code != 0 {
            let said = resp
                .error_message
                .as_ref()
                .map(|m| clip(m.as_str()))
                .unwrap_or_default();
            return Err(self.refused(format!(
                "the broker answered error code {}{}{}",
                resp.error_code,
                if said.is_empty() { "" } else { ": " },
                said
            )));
        }
        Ok((resp.auth_bytes, resp.session_lifetime_ms))
    }

    async fn login(&mut self, login: &Login) -> Result<i64, UpstreamError> {
        let mut hs = SaslHandshakeRequest::default();
        hs.mechanism = StrBytes::from_static_str(self.mechanism);
        let resp: SaslHandshakeResponse = self.call(1, &hs).await?;
        if resp.error_code != 0 {
            let offered: Vec<&str> = resp.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(self.refused(format!(
                "the broker does not enable {} on this listener (error code {}; it offers {})",
                self.mechanism,
                resp.error_code,
                if offered.is_empty() {
                    "nothing".to_owned()
                } else {
                    offered.join(", ")
                }
            )));
        }
        match login {
            Login::Plain { username, password } => {
                let mut msg = Vec::with_capacity(username.len() + password.0.len() + 2);
                msg.push(0);
                msg.extend_from_slice(username.as_bytes());
                msg.push(0);
                msg.extend_from_slice(password.0.as_bytes());
                Ok(self.authenticate(msg).await?.1)
            }
            Login::Scram {
                hash,
                username,
                password,
            } => {
                let nonce = nonce().map_err(|e| self.protocol(e))?;
                let (first, state) = scram::client_first(*hash, username, &nonce);
                let (server_first, _) = self.authenticate(first).await?;
                let (fin, state) = state
                    .finish(&server_first, &password.0)
                    .map_err(|e| self.refused(e.to_string()))?;
                let (server_final, lifetime) = self.authenticate(fin).await?;
                state
                    .verify(&server_final)
                    .map_err(|e| self.refused(e.to_string()))?;
                Ok(lifetime)
            }
            Login::OAuthBearer(source) => {
                let token = source.token().await?;
                let message =
                    oauthbearer_message(&token, &source.extensions).map_err(|e| self.refused(e))?;
                let (challenge, lifetime) = self.authenticate(message).await?;
                if !challenge.is_empty() {
                    // RFC 7628 error challenge with a success code: not a login.
                    return Err(self.refused(format!(
                        "the broker sent an error challenge: {}",
                        clip(&String::from_utf8_lossy(&challenge))
                    )));
                }
                Ok(lifetime)
            }
        }
    }
}

/// The RFC 7628 client message: `n,,\x01auth=Bearer <token>\x01key=value\x01...\x01`, built by
/// the library's builder (the same code that parses the gateway's clients' messages).
fn oauthbearer_message(token: &str, extensions: &[(String, String)]) -> Result<Vec<u8>, String> {
    let mut b = poolgate::sasl::ClientFirstMessage::new(token);
    for (k, v) in extensions {
        b = b.extension(k.clone(), v.clone());
    }
    b.build()
        .map(|m| m.to_bytes())
        .map_err(|e| format!("cannot build the OAUTHBEARER message: {e}"))
}

/// A SCRAM client nonce: 24 random bytes, base64 (printable, no `,`).
fn nonce() -> Result<String, String> {
    use aws_lc_rs::rand::SecureRandom as _;
    let mut bytes = [0u8; 24];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "no random numbers for the SCRAM nonce".to_owned())?;
    Ok(STANDARD.encode(bytes))
}

/// At most 200 printable characters of what a broker or server said.
fn clip(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// The gateway's own token for OAUTHBEARER: fetched with `client_credentials` and
/// `client_secret_basic`, kept, and fetched again once [`REFRESH_AT`] of its lifetime has
/// passed (the old one serves while it is valid and the endpoint fails).
#[derive(Debug)]
pub struct TokenSource {
    http: reqwest::Client,
    endpoint: url::Url,
    basic: Secret,
    scope: Option<String>,
    extensions: Vec<(String, String)>,
    current: tokio::sync::Mutex<Option<Token>>,
}

#[derive(Debug)]
struct Token {
    value: Secret,
    refresh_at: Instant,
    expires_at: Instant,
}

impl TokenSource {
    fn new(o: &UpstreamOAuth) -> Result<TokenSource, UpstreamError> {
        let secret = read_secret(&o.client_secret, "client_secret")?;
        // RFC 6749 section 2.3.1: both are form-encoded before they are joined.
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = Secret(STANDARD.encode(format!("{}:{}", enc(&o.client_id), enc(&secret.0))));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!o.insecure_allow_http)
            .user_agent(concat!("poolgate-gateway/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .map_err(|e| UpstreamError::Setup(format!("HTTP client: {e}")))?;
        Ok(TokenSource {
            http,
            endpoint: o.token_endpoint.clone(),
            basic,
            scope: o.scope.clone(),
            extensions: o.extensions.clone(),
            current: tokio::sync::Mutex::new(None),
        })
    }

    /// A valid token: the kept one, or a new one once the kept one is due for refresh.
    async fn token(&self) -> Result<String, UpstreamError> {
        // One fetch at a time: callers wait for it rather than fetching too.
        let mut current = self.current.lock().await;
        let now = Instant::now();
        if let Some(t) = current.as_ref()
            && now < t.refresh_at
        {
            return Ok(t.value.0.clone());
        }
        match self.fetch().await {
            Ok(t) => {
                let value = t.value.0.clone();
                *current = Some(t);
                Ok(value)
            }
            Err(e) => match current.as_ref() {
                Some(t) if now < t.expires_at => {
                    tracing::warn!(error = %e, "cannot refresh the gateway's upstream token; using the current one until it expires");
                    Ok(t.value.0.clone())
                }
                _ => Err(e),
            },
        }
    }

    async fn fetch(&self) -> Result<Token, UpstreamError> {
        let err = |reason: String| UpstreamError::Token {
            url: self.endpoint.to_string(),
            reason,
        };
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if let Some(scope) = &self.scope {
                form.append_pair("scope", scope);
            }
            form.finish()
        };
        let started = Instant::now();
        let resp = self
            .http
            .post(self.endpoint.clone())
            .header(
                reqwest::header::AUTHORIZATION,
                format!("Basic {}", self.basic.0),
            )
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| err(format!("request failed: {}", without_url(&e))))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| err(format!("reading the answer failed: {}", without_url(&e))))?;
        let parsed = parse_token_response(&body, status.as_u16()).map_err(err)?;
        let lifetime = parsed.1.unwrap_or(DEFAULT_TOKEN_LIFETIME);
        Ok(Token {
            value: Secret(parsed.0),
            refresh_at: started + lifetime.mul_f64(REFRESH_AT),
            expires_at: started + lifetime,
        })
    }
}

/// A reqwest error without its URL (the URL is already in the message).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(&format!(" ({url})"), "");
    }
    s
}

/// The token and its lifetime from a token endpoint's answer (RFC 6749 section 5.1/5.2).
fn parse_token_response(body: &[u8], status: u16) -> Result<(String, Option<Duration>), String> {
    let json: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| format!("HTTP {status}, and the answer is not JSON"))?;
    if !(200..300).contains(&status) {
        let error = json.get("error").and_then(|e| e.as_str()).unwrap_or("?");
        return Err(format!("HTTP {status}, error `{}`", clip(error)));
    }
    let token = json
        .get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty() && t.bytes().all(|b| (0x21..=0x7e).contains(&b)))
        .ok_or("the answer has no usable `access_token`")?;
    if let Some(t) = json.get("token_type").and_then(|t| t.as_str())
        && !t.eq_ignore_ascii_case("bearer")
    {
        return Err(format!("`token_type` is `{}`, not Bearer", clip(t)));
    }
    let lifetime = json
        .get("expires_in")
        .and_then(serde_json::Value::as_u64)
        .filter(|&s| s > 0)
        .map(Duration::from_secs);
    Ok((token.to_owned(), lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oauthbearer_message_is_rfc_7628() {
        assert_eq!(
            oauthbearer_message("t.k.n", &[]).unwrap(),
            b"n,,\x01auth=Bearer t.k.n\x01\x01"
        );
        let ext = [
            ("logicalCluster".to_owned(), "lkc-1".to_owned()),
            ("identityPoolId".to_owned(), "pool-1".to_owned()),
        ];
        let m = oauthbearer_message("t", &ext).unwrap();
        assert_eq!(
            m,
            b"n,,\x01auth=Bearer t\x01logicalCluster=lkc-1\x01identityPoolId=pool-1\x01\x01"
        );
        // The parser the gateway uses for its own clients reads it back.
        let parsed = poolgate::sasl::ClientFirstMessage::parse(&m).unwrap();
        assert_eq!(parsed.token(), "t");
    }

    #[test]
    fn token_responses() {
        /// The token and `expires_in`, or the error.
        type Expected = Result<(&'static str, Option<u64>), &'static str>;
        let table: [(&str, u16, Expected); 6] = [
            (
                r#"{"access_token":"abc","token_type":"Bearer","expires_in":60}"#,
                200,
                Ok(("abc", Some(60))),
            ),
            (r#"{"access_token":"abc"}"#, 200, Ok(("abc", None))),
            (
                r#"{"error":"invalid_client"}"#,
                401,
                Err("HTTP 401, error `invalid_client`"),
            ),
            ("<html>", 502, Err("HTTP 502, and the answer is not JSON")),
            (
                r#"{"access_token":"a b"}"#,
                200,
                Err("the answer has no usable `access_token`"),
            ),
            (
                r#"{"access_token":"abc","token_type":"mac"}"#,
                200,
                Err("`token_type` is `mac`, not Bearer"),
            ),
        ];
        for (body, status, expected) in table {
            let got = parse_token_response(body.as_bytes(), status);
            let expected = expected
                .map(|(t, s)| (t.to_owned(), s.map(Duration::from_secs)))
                .map_err(str::to_owned);
            assert_eq!(got, expected, "{body}");
        }
    }

    #[test]
    fn secrets_are_not_printed() {
        let s = Secret("hunter2".to_owned());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
