//! Owns the `[gateway.upstream]` table: how `poolgate gateway` reaches its brokers (TLS, and
//! SASL with the gateway's own credentials). Pure: it checks the table and resolves paths; it
//! never reads a secret, a certificate or the environment (the gateway does, at start).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use url::Url;

use super::{Diagnostics, Place, Section, duration_field};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstream {
    pub(crate) security_protocol: Option<Spanned<String>>,
    pub(crate) connect_timeout: Option<Spanned<String>>,
    pub(crate) tls_ca_file: Option<Spanned<String>>,
    pub(crate) tls_server_name: Option<Spanned<String>>,
    pub(crate) tls_cert_file: Option<Spanned<String>>,
    pub(crate) tls_key_file: Option<Spanned<String>>,
    pub(crate) sasl_mechanism: Option<Spanned<String>>,
    pub(crate) sasl_username: Option<Spanned<String>>,
    pub(crate) sasl_password_file: Option<Spanned<String>>,
    pub(crate) sasl_password_env: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) insecure_cleartext_credentials: bool,
    pub(crate) token_endpoint: Option<Spanned<String>>,
    pub(crate) client_id: Option<Spanned<String>>,
    pub(crate) client_secret_file: Option<Spanned<String>>,
    pub(crate) client_secret_env: Option<Spanned<String>>,
    pub(crate) scope: Option<Spanned<String>>,
    pub(crate) extensions: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    #[serde(default)]
    pub(crate) insecure_allow_http: bool,
}

/// How the gateway reaches its brokers: the `[gateway.upstream]` table. The default is Kafka's
/// `PLAINTEXT`: no TLS and no login, for a broker on a trusted network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// TLS towards the brokers (`security_protocol` `SSL` or `SASL_SSL`); `None`: plaintext.
    pub tls: Option<UpstreamTls>,
    /// The gateway's own SASL login (`SASL_PLAINTEXT` or `SASL_SSL`); `None`: no login.
    pub sasl: Option<UpstreamSasl>,
    /// How long TCP connect plus the TLS handshake may take (default 10 s).
    pub connect_timeout: Duration,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            tls: None,
            sasl: None,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl UpstreamConfig {
    /// Kafka's name for the combination: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    pub fn security_protocol(&self) -> &'static str {
        match (self.tls.is_some(), self.sasl.is_some()) {
            (false, false) => "PLAINTEXT",
            (true, false) => "SSL",
            (false, true) => "SASL_PLAINTEXT",
            (true, true) => "SASL_SSL",
        }
    }
}

/// TLS towards the brokers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamTls {
    /// PEM file with the CA certificates the brokers' certificates must chain to (required:
    /// there is no implicit trust store).
    pub ca_file: PathBuf,
    /// The name the broker's certificate must carry; `None` (the default): the host of the
    /// broker address.
    pub server_name: Option<String>,
    /// The gateway's client certificate chain and private key (PEM) for brokers that require
    /// client authentication (mTLS); `None` (the default): no client certificate.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// Where a secret comes from. Never the configuration file or the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretSource {
    /// The whole file, without a final line break.
    File(PathBuf),
    /// The environment variable of this name.
    Env(String),
}

/// The SCRAM hash (RFC 5802, RFC 7677).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScramHash {
    /// `SCRAM-SHA-256`.
    Sha256,
    /// `SCRAM-SHA-512`.
    Sha512,
}

/// The gateway's own SASL login at the brokers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpstreamSasl {
    /// `PLAIN`: user name and password, sent as they are (so only over TLS unless
    /// `insecure_cleartext_credentials`).
    Plain {
        /// The user name.
        username: String,
        /// The password's source.
        password: SecretSource,
    },
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`: the password never crosses the network, and the
    /// broker must prove it knows the password too.
    Scram {
        /// The hash.
        hash: ScramHash,
        /// The user name.
        username: String,
        /// The password's source.
        password: SecretSource,
    },
    /// `OAUTHBEARER` with the gateway's own token from a `client_credentials` grant.
    OAuthBearer(UpstreamOAuth),
}

impl UpstreamSasl {
    /// The SASL mechanism name.
    pub fn mechanism(&self) -> &'static str {
        match self {
            UpstreamSasl::Plain { .. } => "PLAIN",
            UpstreamSasl::Scram {
                hash: ScramHash::Sha256,
                ..
            } => "SCRAM-SHA-256",
            UpstreamSasl::Scram {
                hash: ScramHash::Sha512,
                ..
            } => "SCRAM-SHA-512",
            UpstreamSasl::OAuthBearer(_) => "OAUTHBEARER",
        }
    }
}

/// The gateway's OAuth client for `OAUTHBEARER` towards the brokers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamOAuth {
    /// The token endpoint (https; loopback http with `insecure_allow_http`).
    pub token_endpoint: Url,
    /// The client id, sent with the secret as HTTP Basic credentials (`client_secret_basic`).
    pub client_id: String,
    /// The client secret's source.
    pub client_secret: SecretSource,
    /// The `scope` parameter, if any (default: none).
    pub scope: Option<String>,
    /// SASL extensions sent with the token (RFC 7628 `key=value`), such as `logicalCluster`
    /// (default: none).
    pub extensions: Vec<(String, String)>,
    /// Whether a plain `http://` loopback token endpoint is allowed (default false).
    pub insecure_allow_http: bool,
}

fn field(name: &str) -> Place {
    Section::Upstream.field(name)
}

/// Checks the `[gateway.upstream]` table, resolving relative paths against `base_dir`.
pub(crate) fn check_upstream(
    d: &mut Diagnostics<'_>,
    raw: &RawUpstream,
    base_dir: &Path,
) -> UpstreamConfig {
    let mut out = UpstreamConfig::default();
    let timeout = &raw.connect_timeout;
    if let Some(t) = duration_field(d, &Section::Upstream, "connect_timeout", timeout, true) {
        out.connect_timeout = t;
    }
    let protocol = raw
        .security_protocol
        .as_ref()
        .map_or("PLAINTEXT", |p| p.get_ref().as_str());
    let (tls, sasl) = match protocol {
        "PLAINTEXT" => (false, false),
        "SSL" => (true, false),
        "SASL_PLAINTEXT" => (false, true),
        "SASL_SSL" => (true, true),
        other => {
            let span = raw.security_protocol.as_ref().map(Spanned::span);
            d.error(
                span.as_ref(),
                field("security_protocol"),
                format!(
                    "`{}` is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
                    crate::error::clip(other)
                ),
            );
            return out;
        }
    };
    let path = |p: &Spanned<String>| base_dir.join(p.get_ref());
    // Fields that only make sense with TLS (or SASL) must not sit there unused: a forgotten
    // `security_protocol` would otherwise quietly connect in plaintext.
    let unused = |d: &mut Diagnostics<'_>, name: &str, v: Option<std::ops::Range<usize>>, what| {
        if let Some(span) = v {
            d.error(
                Some(&span),
                field(name),
                format!("is set but `security_protocol` `{protocol}` does not use {what}"),
            );
        }
    };
    let span = |v: &Option<Spanned<String>>| v.as_ref().map(Spanned::span);
    if tls {
        let ca_file = match &raw.tls_ca_file {
            Some(p) if !p.get_ref().is_empty() => path(p),
            _ => {
                d.error(
                    None,
                    field("tls_ca_file"),
                    format!(
                        "is required with `security_protocol` `{protocol}` (the CA certificates that sign the brokers' certificates)"
                    ),
                );
                PathBuf::new()
            }
        };
        if let Some(n) = &raw.tls_server_name
            && n.get_ref().is_empty()
        {
            d.error(
                Some(&n.span()),
                field("tls_server_name"),
                "must not be empty",
            );
        }
        let client_cert = match (&raw.tls_cert_file, &raw.tls_key_file) {
            (Some(c), Some(k)) => Some((path(c), path(k))),
            (None, None) => None,
            (Some(c), None) => {
                d.error(
                    Some(&c.span()),
                    field("tls_cert_file"),
                    "needs `tls_key_file` too",
                );
                None
            }
            (None, Some(k)) => {
                d.error(
                    Some(&k.span()),
                    field("tls_key_file"),
                    "needs `tls_cert_file` too",
                );
                None
            }
        };
        out.tls = Some(UpstreamTls {
            ca_file,
            server_name: raw.tls_server_name.as_ref().map(|n| n.get_ref().clone()),
            client_cert,
        });
    } else {
        for (name, v) in [
            ("tls_ca_file", &raw.tls_ca_file),
            ("tls_server_name", &raw.tls_server_name),
            ("tls_cert_file", &raw.tls_cert_file),
            ("tls_key_file", &raw.tls_key_file),
        ] {
            unused(d, name, span(v), "TLS");
        }
    }
    if sasl {
        out.sasl = check_sasl(d, raw, protocol, tls, base_dir);
    } else {
        for (name, v) in [
            ("sasl_mechanism", &raw.sasl_mechanism),
            ("sasl_username", &raw.sasl_username),
            ("sasl_password_file", &raw.sasl_password_file),
            ("sasl_password_env", &raw.sasl_password_env),
            ("token_endpoint", &raw.token_endpoint),
            ("client_id", &raw.client_id),
            ("client_secret_file", &raw.client_secret_file),
            ("client_secret_env", &raw.client_secret_env),
            ("scope", &raw.scope),
        ] {
            unused(d, name, span(v), "SASL");
        }
    }
    out
}

/// Exactly one of `<stem>_file` and `<stem>_env`.
fn secret(
    d: &mut Diagnostics<'_>,
    stem: &str,
    file: &Option<Spanned<String>>,
    env: &Option<Spanned<String>>,
    base_dir: &Path,
) -> Option<SecretSource> {
    match (file, env) {
        (Some(f), None) if !f.get_ref().is_empty() => {
            Some(SecretSource::File(base_dir.join(f.get_ref())))
        }
        (None, Some(e)) if !e.get_ref().is_empty() && !e.get_ref().contains('=') => {
            Some(SecretSource::Env(e.get_ref().clone()))
        }
        (Some(f), None) => {
            d.error(
                Some(&f.span()),
                field(&format!("{stem}_file")),
                "must not be empty",
            );
            None
        }
        (None, Some(e)) => {
            d.error(
                Some(&e.span()),
                field(&format!("{stem}_env")),
                "is not an environment variable name",
            );
            None
        }
        (Some(_), Some(e)) => {
            d.error(
                Some(&e.span()),
                field(&format!("{stem}_env")),
                format!("give either `{stem}_file` or `{stem}_env`, not both"),
            );
            None
        }
        (None, None) => {
            d.error(
                None,
                field(&format!("{stem}_file")),
                format!(
                    "the secret is required: give `{stem}_file` or `{stem}_env` (never in this file or on the command line)"
                ),
            );
            None
        }
    }
}

fn check_sasl(
    d: &mut Diagnostics<'_>,
    raw: &RawUpstream,
    protocol: &str,
    tls: bool,
    base_dir: &Path,
) -> Option<UpstreamSasl> {
    let Some(mechanism) = &raw.sasl_mechanism else {
        d.error(
            None,
            field("sasl_mechanism"),
            format!(
                "is required with `security_protocol` `{protocol}`: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER"
            ),
        );
        return None;
    };
    let m = mechanism.get_ref().as_str();
    let cleartext = matches!(m, "PLAIN" | "OAUTHBEARER");
    if cleartext && !tls && !raw.insecure_cleartext_credentials {
        d.error(
            Some(&mechanism.span()),
            field("sasl_mechanism"),
            format!(
                "`{m}` over SASL_PLAINTEXT sends the {} in the clear: use SASL_SSL, or set `insecure_cleartext_credentials = true`",
                if m == "PLAIN" { "password" } else { "token" }
            ),
        );
    }
    if raw.insecure_cleartext_credentials && (tls || !cleartext) {
        d.error(
            None,
            field("insecure_cleartext_credentials"),
            "is only for PLAIN or OAUTHBEARER over SASL_PLAINTEXT",
        );
    }
    let oauth_fields = [
        ("token_endpoint", &raw.token_endpoint),
        ("client_id", &raw.client_id),
        ("client_secret_file", &raw.client_secret_file),
        ("client_secret_env", &raw.client_secret_env),
        ("scope", &raw.scope),
    ];
    let password_fields = [
        ("sasl_username", &raw.sasl_username),
        ("sasl_password_file", &raw.sasl_password_file),
        ("sasl_password_env", &raw.sasl_password_env),
    ];
    let not_for = |d: &mut Diagnostics<'_>, fields: &[(&str, &Option<Spanned<String>>)]| {
        for (name, v) in fields {
            if let Some(v) = v {
                d.error(
                    Some(&v.span()),
                    field(name),
                    format!("is not used by `sasl_mechanism` `{m}`"),
                );
            }
        }
    };
    let username = |d: &mut Diagnostics<'_>| match &raw.sasl_username {
        Some(u) if !u.get_ref().is_empty() => Some(u.get_ref().clone()),
        Some(u) => {
            d.error(Some(&u.span()), field("sasl_username"), "must not be empty");
            None
        }
        None => {
            d.error(
                None,
                field("sasl_username"),
                format!("is required with `sasl_mechanism` `{m}`"),
            );
            None
        }
    };
    match m {
        "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512" => {
            not_for(d, &oauth_fields);
            if let Some(x) = &raw.extensions {
                d.error(
                    Some(&x.span()),
                    field("extensions"),
                    format!("is not used by `sasl_mechanism` `{m}`"),
                );
            }
            let username = username(d);
            let password = secret(
                d,
                "sasl_password",
                &raw.sasl_password_file,
                &raw.sasl_password_env,
                base_dir,
            );
            let (username, password) = (username?, password?);
            Some(match m {
                "PLAIN" => UpstreamSasl::Plain { username, password },
                "SCRAM-SHA-256" => UpstreamSasl::Scram {
                    hash: ScramHash::Sha256,
                    username,
                    password,
                },
                _ => UpstreamSasl::Scram {
                    hash: ScramHash::Sha512,
                    username,
                    password,
                },
            })
        }
        "OAUTHBEARER" => {
            not_for(d, &password_fields);
            let endpoint = match &raw.token_endpoint {
                None => {
                    d.error(
                        None,
                        field("token_endpoint"),
                        "is required with `sasl_mechanism` `OAUTHBEARER`",
                    );
                    None
                }
                Some(u) => match Url::parse(u.get_ref()) {
                    Err(_) => {
                        d.error(Some(&u.span()), field("token_endpoint"), "is not a URL");
                        None
                    }
                    Ok(url) => match crate::fetch::check_url(&url, raw.insecure_allow_http) {
                        Ok(()) => Some(url),
                        Err(e) => {
                            d.error(Some(&u.span()), field("token_endpoint"), e.to_string());
                            None
                        }
                    },
                },
            };
            let client_id = match &raw.client_id {
                Some(c) if !c.get_ref().is_empty() => Some(c.get_ref().clone()),
                _ => {
                    d.error(
                        span_of(&raw.client_id).as_ref(),
                        field("client_id"),
                        "is required with `sasl_mechanism` `OAUTHBEARER` and must not be empty",
                    );
                    None
                }
            };
            let client_secret = secret(
                d,
                "client_secret",
                &raw.client_secret_file,
                &raw.client_secret_env,
                base_dir,
            );
            let mut extensions = Vec::new();
            if let Some(x) = &raw.extensions {
                for (k, v) in x.get_ref() {
                    // RFC 7628 section 3.1: key = 1*(ALPHA), value = *(VCHAR / SP / HTAB / CR / LF);
                    // `auth` is the token's own key.
                    let key_ok =
                        !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphabetic()) && k != "auth";
                    let value_ok = v
                        .bytes()
                        .all(|b| (0x21..=0x7e).contains(&b) || matches!(b, b' ' | b'\t'));
                    if !key_ok || !value_ok {
                        d.error(
                            Some(&x.span()),
                            field("extensions"),
                            format!(
                                "`{}` is not a SASL extension (a key of letters other than `auth`, a value of printable characters)",
                                crate::error::clip(k)
                            ),
                        );
                    }
                    extensions.push((k.clone(), v.clone()));
                }
            }
            Some(UpstreamSasl::OAuthBearer(UpstreamOAuth {
                token_endpoint: endpoint?,
                client_id: client_id?,
                client_secret: client_secret?,
                scope: raw.scope.as_ref().map(|s| s.get_ref().clone()),
                extensions,
                insecure_allow_http: raw.insecure_allow_http,
            }))
        }
        other => {
            d.error(
                Some(&mechanism.span()),
                field("sasl_mechanism"),
                format!(
                    "`{}` is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER",
                    crate::error::clip(other)
                ),
            );
            None
        }
    }
}

fn span_of(v: &Option<Spanned<String>>) -> Option<std::ops::Range<usize>> {
    v.as_ref().map(Spanned::span)
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    const PROVIDER: &str = "[[providers]]\nid = \"op\"\nissuer = \"https://idp\"\naudiences = [\"kafka\"]\njwks_file = \"jwks.json\"\n";

    fn parse(table: &str) -> Result<UpstreamConfig, Vec<String>> {
        let text = format!("{PROVIDER}[gateway.upstream]\n{table}");
        Config::parse(&text, "c.toml", Path::new("/etc/poolgate"))
            .map(|c| c.gateway().upstream.clone())
            .map_err(|e| e.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn the_default_is_plaintext_without_login() {
        let text = format!("{PROVIDER}[gateway]\nallow_plaintext = true\n");
        let c = Config::parse(&text, "c.toml", Path::new(".")).unwrap();
        assert_eq!(c.gateway().upstream, UpstreamConfig::default());
        assert_eq!(c.gateway().upstream.security_protocol(), "PLAINTEXT");
        assert_eq!(parse(""), Ok(UpstreamConfig::default()));
    }

    #[test]
    fn good_tables_convert() {
        let scram = parse(
            "security_protocol = \"SASL_SSL\"\ntls_ca_file = \"ca.pem\"\nsasl_mechanism = \"SCRAM-SHA-512\"\nsasl_username = \"gw\"\nsasl_password_env = \"GW_PASSWORD\"\n",
        )
        .unwrap();
        assert_eq!(scram.security_protocol(), "SASL_SSL");
        assert_eq!(
            scram.tls.as_ref().unwrap().ca_file,
            Path::new("/etc/poolgate/ca.pem")
        );
        assert_eq!(
            scram.sasl,
            Some(UpstreamSasl::Scram {
                hash: ScramHash::Sha512,
                username: "gw".into(),
                password: SecretSource::Env("GW_PASSWORD".into()),
            })
        );
        let mtls = parse(
            "security_protocol = \"SSL\"\ntls_ca_file = \"/ca.pem\"\ntls_cert_file = \"gw.pem\"\ntls_key_file = \"gw.key\"\ntls_server_name = \"kafka.internal\"\nconnect_timeout = \"3s\"\n",
        )
        .unwrap();
        assert_eq!(mtls.security_protocol(), "SSL");
        assert_eq!(mtls.connect_timeout, Duration::from_secs(3));
        let tls = mtls.tls.unwrap();
        assert_eq!(tls.ca_file, Path::new("/ca.pem"));
        assert_eq!(tls.server_name.as_deref(), Some("kafka.internal"));
        assert_eq!(
            tls.client_cert,
            Some((
                PathBuf::from("/etc/poolgate/gw.pem"),
                PathBuf::from("/etc/poolgate/gw.key")
            ))
        );
        let oauth = parse(
            "security_protocol = \"SASL_SSL\"\ntls_ca_file = \"ca.pem\"\nsasl_mechanism = \"OAUTHBEARER\"\ntoken_endpoint = \"https://idp/token\"\nclient_id = \"gw\"\nclient_secret_file = \"secret\"\nscope = \"kafka\"\nextensions = { logicalCluster = \"lkc-1\" }\n",
        )
        .unwrap();
        let Some(UpstreamSasl::OAuthBearer(o)) = oauth.sasl else {
            panic!("{oauth:?}")
        };
        assert_eq!(
            o.client_secret,
            SecretSource::File("/etc/poolgate/secret".into())
        );
        assert_eq!(
            o.extensions,
            vec![("logicalCluster".into(), "lkc-1".into())]
        );
        let plain = parse(
            "security_protocol = \"SASL_PLAINTEXT\"\nsasl_mechanism = \"PLAIN\"\nsasl_username = \"gw\"\nsasl_password_file = \"p\"\ninsecure_cleartext_credentials = true\n",
        )
        .unwrap();
        assert_eq!(plain.sasl.unwrap().mechanism(), "PLAIN");
    }

    #[test]
    fn errors_name_the_table_the_field_and_the_line() {
        let table = [
            (
                "security_protocol = \"SASL_TLS\"\n",
                "c.toml:7: [gateway.upstream], field `security_protocol`: `SASL_TLS` is not one of",
            ),
            (
                "security_protocol = \"SSL\"\n",
                "c.toml: [gateway.upstream], field `tls_ca_file`: is required",
            ),
            (
                "tls_ca_file = \"ca.pem\"\n",
                "c.toml:7: [gateway.upstream], field `tls_ca_file`: is set but `security_protocol` `PLAINTEXT` does not use TLS",
            ),
            (
                "security_protocol = \"SSL\"\ntls_ca_file = \"ca\"\ntls_cert_file = \"c\"\n",
                "c.toml:9: [gateway.upstream], field `tls_cert_file`: needs `tls_key_file` too",
            ),
            (
                "security_protocol = \"SASL_SSL\"\ntls_ca_file = \"ca\"\n",
                "c.toml: [gateway.upstream], field `sasl_mechanism`: is required",
            ),
            (
                "security_protocol = \"SASL_SSL\"\ntls_ca_file = \"ca\"\nsasl_mechanism = \"GSSAPI\"\n",
                "c.toml:9: [gateway.upstream], field `sasl_mechanism`: `GSSAPI` is not one of",
            ),
            (
                "security_protocol = \"SASL_SSL\"\ntls_ca_file = \"ca\"\nsasl_mechanism = \"SCRAM-SHA-256\"\nsasl_username = \"gw\"\n",
                "c.toml: [gateway.upstream], field `sasl_password_file`: the secret is required",
            ),
            (
                "security_protocol = \"SASL_SSL\"\ntls_ca_file = \"ca\"\nsasl_mechanism = \"PLAIN\"\nsasl_username = \"gw\"\nsasl_password_file = \"f\"\nsasl_password_env = \"E\"\n",
                "c.toml:12: [gateway.upstream], field `sasl_password_env`: give either",
            ),
            (
                "security_protocol = \"SASL_PLAINTEXT\"\nsasl_mechanism = \"PLAIN\"\nsasl_username = \"gw\"\nsasl_password_env = \"E\"\n",
                "c.toml:8: [gateway.upstream], field `sasl_mechanism`: `PLAIN` over SASL_PLAINTEXT sends the password in the clear",
            ),
            (
                "security_protocol = \"SASL_SSL\"\ntls_ca_file = \"ca\"\nsasl_mechanism = \"OAUTHBEARER\"\ntoken_endpoint = \"http://idp.example.com/token\"\nclient_id = \"gw\"\nclient_secret_env = \"S\"\n",
                "c.toml:10: [gateway.upstream], field `token_endpoint`: `http://idp.example.com/token` is not an https URL",
            ),
            (
                "security_protocol = \"SASL_SSL\"\ntls_ca_file = \"ca\"\nsasl_mechanism = \"OAUTHBEARER\"\ntoken_endpoint = \"https://idp/token\"\nclient_id = \"gw\"\nclient_secret_env = \"S\"\nsasl_username = \"gw\"\n",
                "c.toml:13: [gateway.upstream], field `sasl_username`: is not used by `sasl_mechanism` `OAUTHBEARER`",
            ),
            (
                "sasl_username = \"gw\"\n",
                "c.toml:7: [gateway.upstream], field `sasl_username`: is set but `security_protocol` `PLAINTEXT` does not use SASL",
            ),
            (
                "connect_timeout = \"0s\"\n",
                "c.toml:7: [gateway.upstream], field `connect_timeout`: must be more than zero",
            ),
            ("sasl_passwd = \"x\"\n", "c.toml:7"),
        ];
        for (body, expected) in table {
            let errs = parse(body).unwrap_err();
            assert!(
                errs.iter().any(|e| e.starts_with(expected)),
                "{body:?}: {errs:?}"
            );
        }
    }
}
