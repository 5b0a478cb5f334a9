//! `poolgate jwks`: fetches each provider's key set as the key store would and lists its keys
//! and the keys it skips, with why, and which proxy (if any) each fetch went through.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Value, json};

use super::style::Paint;
use super::{
    Cell, CliError, CliResult, Context, EXIT_OK, EXIT_REJECTED, EXIT_USAGE, Format, json_line,
    load_config, table, write_error,
};
use crate::config::ProviderConfig;
use crate::discovery::{Discovery, DiscoveryError};
use crate::fetch::{FetchError, Fetcher};
use crate::keys::{JwksError, KeyKind, KeySet, MAX_JWKS_KEYS};
use crate::keystore::KeySource;

/// `poolgate jwks`: list the keys each provider publishes.
#[derive(Clone, Debug, clap::Args)]
pub struct JwksArgs {
    /// The configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Only this provider.
    #[arg(long, value_name = "ID")]
    pub provider: Option<String>,
}

/// One provider's key set, as printed: a record of `"type": "key_set"`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "key_set")]
struct ProviderKeys {
    provider: String,
    issuer: String,
    source: String,
    jwks_uri: Option<String>,
    proxy: Vec<ProxyRow>,
    error: Option<Value>,
    keys: Vec<KeyRow>,
    skipped: Vec<SkippedRow>,
    #[serde(skip)]
    usage: bool,
}

#[derive(Debug, Serialize)]
struct KeyRow {
    kid: Option<String>,
    kty: String,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    size: usize,
    algorithms: Vec<&'static str>,
}

/// How one URL is fetched; never holds proxy credentials.
#[derive(Debug, Serialize)]
struct ProxyRow {
    /// The URL fetched.
    url: String,
    /// The proxy, credentials redacted; `None` when fetched directly.
    via: Option<String>,
    /// The variable that named the proxy.
    variable: Option<&'static str>,
    /// The human line: `none (...)` or `PROXY (from VARIABLE)`.
    detail: String,
}

impl ProxyRow {
    fn new(fetcher: &Fetcher, url: &url::Url) -> ProxyRow {
        let route = fetcher.route(url);
        ProxyRow {
            url: url.to_string(),
            via: route.proxy().map(|p| p.redacted()),
            variable: route.proxy().map(|p| p.variable()),
            detail: route.to_string(),
        }
    }
}

#[derive(Debug, Serialize)]
struct SkippedRow {
    kid: Option<String>,
    kty: Option<String>,
    reason: String,
}

fn kind_parts(kind: KeyKind) -> (&'static str, usize) {
    match kind {
        KeyKind::Rsa { bits } => ("RSA", bits),
        KeyKind::EcP256 => ("EC", 256),
        KeyKind::EcP384 => ("EC", 384),
        KeyKind::Ed25519 => ("OKP", 256),
    }
}

/// Classifies each JWK of a document on its own, with the key set's own rules.
fn classify(doc: &Value, keys: &mut Vec<KeyRow>, skipped: &mut Vec<SkippedRow>) {
    let Some(raw_keys) = doc.get("keys").and_then(Value::as_array) else {
        return;
    };
    for (i, raw) in raw_keys.iter().enumerate() {
        let text = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_owned);
        if i >= MAX_JWKS_KEYS {
            skipped.push(SkippedRow {
                kid: text("kid"),
                kty: text("kty"),
                reason: format!("beyond the first {MAX_JWKS_KEYS} keys of the document"),
            });
            continue;
        }
        let one = json!({ "keys": [raw] }).to_string();
        match KeySet::from_jwks(one.as_bytes()) {
            Ok(set) => {
                for k in set.keys() {
                    let (kty, size) = kind_parts(k.kind());
                    keys.push(KeyRow {
                        kid: k.kid().map(str::to_owned),
                        kty: kty.to_owned(),
                        alg: k.jwk_alg().map(|a| a.as_str().to_owned()),
                        use_: text("use"),
                        size,
                        algorithms: k.algorithms().map(|a| a.as_str()).collect(),
                    });
                }
            }
            Err(JwksError::NoUsableKey { skipped: s }) => {
                for k in s {
                    skipped.push(SkippedRow {
                        kid: k.kid().map(str::to_owned),
                        kty: text("kty"),
                        reason: k.reason().to_string(),
                    });
                }
            }
            Err(e) => skipped.push(SkippedRow {
                kid: text("kid"),
                kty: text("kty"),
                reason: e.to_string(),
            }),
        }
    }
}

async fn inspect(p: &ProviderConfig) -> ProviderKeys {
    let mut out = ProviderKeys {
        provider: p.id.clone(),
        issuer: p.policy.issuer().to_owned(),
        source: String::new(),
        jwks_uri: None,
        proxy: Vec::new(),
        error: None,
        keys: Vec::new(),
        skipped: Vec::new(),
        usage: false,
    };
    let fail = |out: &mut ProviderKeys, code: &str, message: String, usage: bool| {
        out.error = Some(json!({"code": code, "message": message}));
        out.usage = usage;
    };
    let fetcher = match Fetcher::new(p.store.fetch.clone()) {
        Ok(f) => f,
        Err(e) => {
            let usage = matches!(e, FetchError::Proxy(_));
            fail(&mut out, "fetch", e.to_string(), usage);
            return out;
        }
    };
    let fetch_error = |e: &FetchError| matches!(e, FetchError::InsecureUrl(_));
    let body = match &p.source {
        KeySource::Discovery(url) => {
            out.source = format!("discovery {url}");
            out.proxy.push(ProxyRow::new(&fetcher, url));
            let doc = match fetcher.get(url).await {
                Ok(d) => d,
                Err(e) => {
                    fail(&mut out, "jwks_unavailable", e.to_string(), fetch_error(&e));
                    return out;
                }
            };
            let discovery = match Discovery::parse(&doc.body, p.policy.issuer()) {
                Ok(d) => d,
                Err(e) => {
                    let usage = matches!(e, DiscoveryError::WrongIssuer { .. });
                    fail(&mut out, "jwks_unavailable", e.to_string(), usage);
                    return out;
                }
            };
            out.jwks_uri = Some(discovery.jwks_uri.to_string());
            out.proxy.push(ProxyRow::new(&fetcher, &discovery.jwks_uri));
            match fetcher.get(&discovery.jwks_uri).await {
                Ok(d) => d.body,
                Err(e) => {
                    fail(&mut out, "jwks_unavailable", e.to_string(), fetch_error(&e));
                    return out;
                }
            }
        }
        KeySource::JwksUrl(url) => {
            out.source = format!("jwks_uri {url}");
            out.jwks_uri = Some(url.to_string());
            out.proxy.push(ProxyRow::new(&fetcher, url));
            match fetcher.get(url).await {
                Ok(d) => d.body,
                Err(e) => {
                    fail(&mut out, "jwks_unavailable", e.to_string(), fetch_error(&e));
                    return out;
                }
            }
        }
        KeySource::JwksFile(path) => {
            out.source = format!("jwks_file {}", path.display());
            match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => {
                    let msg = format!("cannot read `{}`: {e}", path.display());
                    fail(&mut out, "jwks_unavailable", msg, true);
                    return out;
                }
            }
        }
    };
    if let Err(e) = KeySet::from_jwks(&body) {
        fail(&mut out, "jwks_unavailable", e.to_string(), false);
    }
    if let Ok(doc) = serde_json::from_slice::<Value>(&body) {
        classify(&doc, &mut out.keys, &mut out.skipped);
    }
    out
}

/// One `proxy` line when every fetch goes the same way, else one per URL.
fn push_proxy_lines(text: &mut String, rows: &[ProxyRow]) {
    let Some(first) = rows.first() else {
        return;
    };
    if rows.iter().all(|r| r.detail == first.detail) {
        text.push_str(&format!("  proxy   {}\n", first.detail));
    } else {
        for r in rows {
            text.push_str(&format!("  proxy   {} for {}\n", r.detail, r.url));
        }
    }
}

/// Runs `poolgate jwks`.
///
/// # Errors
/// A usage, configuration or file error (exit 2).
pub(crate) fn run(args: &JwksArgs, ctx: &Context) -> CliResult {
    let config = load_config(&args.config)?;
    let providers: Vec<&ProviderConfig> = match &args.provider {
        None => config.providers().iter().collect(),
        Some(id) => {
            let found: Vec<_> = config.providers().iter().filter(|p| &p.id == id).collect();
            if found.is_empty() {
                let known: Vec<&str> = config.providers().iter().map(|p| p.id.as_str()).collect();
                return Err(CliError::usage(format!(
                    "--provider: no provider `{id}` in `{}` (it has: {})",
                    config.file(),
                    known.join(", ")
                )));
            }
            found
        }
    };
    let rt = super::runtime()?;
    let results: Vec<ProviderKeys> = rt.block_on(async {
        let mut all = Vec::new();
        for p in providers {
            all.push(inspect(p).await);
        }
        all
    });
    let mut out = std::io::stdout().lock();
    let style = ctx.style;
    for r in &results {
        match ctx.format {
            Format::Json => json_line(&mut out, r)?,
            Format::Human => {
                let mut text = format!(
                    "{} {}  issuer {}\n  source  {}{}\n",
                    style.paint("provider", Paint::Bold),
                    style.paint(&r.provider, Paint::Bold),
                    r.issuer,
                    r.source,
                    r.jwks_uri
                        .as_ref()
                        .filter(|_| r.source.starts_with("discovery"))
                        .map(|u| format!(" -> jwks {u}"))
                        .unwrap_or_default()
                );
                push_proxy_lines(&mut text, &r.proxy);
                if let Some(e) = &r.error {
                    text.push_str(&format!(
                        "  {}  {}\n",
                        style.paint("error", Paint::Bad),
                        e["message"].as_str().unwrap_or("")
                    ));
                }
                if !r.keys.is_empty() {
                    let mut rows = vec![
                        ["kid", "kty", "alg", "use", "size", "algorithms"]
                            .map(|h| Cell::painted(h, Paint::Dim))
                            .to_vec(),
                    ];
                    for k in &r.keys {
                        rows.push(vec![
                            Cell::plain(k.kid.as_deref().unwrap_or("(none)")),
                            Cell::plain(&k.kty),
                            Cell::plain(k.alg.as_deref().unwrap_or("-")),
                            Cell::plain(k.use_.as_deref().unwrap_or("-")),
                            Cell::plain(k.size.to_string()),
                            Cell::plain(k.algorithms.join(",")),
                        ]);
                    }
                    text.push_str(&table(&rows, 2, style));
                }
                if !r.skipped.is_empty() {
                    text.push_str(&format!("  {}\n", style.paint("skipped", Paint::Warn)));
                    let rows: Vec<Vec<Cell>> = r
                        .skipped
                        .iter()
                        .map(|s| {
                            vec![
                                Cell::plain(s.kid.as_deref().unwrap_or("(no kid)")),
                                Cell::plain(s.kty.as_deref().unwrap_or("-")),
                                Cell::plain(&s.reason),
                            ]
                        })
                        .collect();
                    text.push_str(&table(&rows, 4, style));
                }
                writeln!(out, "{text}").map_err(write_error)?;
            }
        }
    }
    out.flush().map_err(write_error)?;
    for r in &results {
        if let Some(e) = &r.error {
            super::warn(&format!(
                "provider `{}`: {}",
                r.provider,
                e["message"].as_str().unwrap_or("")
            ));
        }
    }
    Ok(if results.iter().any(|r| r.usage) {
        EXIT_USAGE
    } else if results.iter().any(|r| r.error.is_some()) {
        EXIT_REJECTED
    } else {
        EXIT_OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_is_classified_on_its_own() {
        let doc = json!({"keys": [
            {"kty":"OKP","crv":"Ed25519","kid":"ed1","use":"sig","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty":"oct","kid":"h1","k":"c2VjcmV0"},
            {"kty":"OKP","crv":"Ed25519","kid":"enc","use":"enc","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
        ]});
        let (mut keys, mut skipped) = (Vec::new(), Vec::new());
        classify(&doc, &mut keys, &mut skipped);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("ed1"));
        assert_eq!((keys[0].kty.as_str(), keys[0].size), ("OKP", 256));
        assert_eq!(keys[0].use_.as_deref(), Some("sig"));
        assert_eq!(skipped.len(), 2);
        assert!(skipped[0].reason.contains("symmetric"), "{skipped:?}");
        assert!(skipped[1].reason.contains("`use` is `enc`"), "{skipped:?}");
    }

    #[test]
    fn rsa_keys_whose_exponent_never_verifies_are_listed_as_skipped() {
        let n = format!("{}-w", "_".repeat(340));
        let rsa = |kid: &str, e: &str| json!({"kty":"RSA","kid":kid,"n":n,"e":e});
        // e = 1, 2, 2^33 + 1, beside a usable key with e = 65537.
        let doc = json!({"keys": [
            rsa("one", "AQ"), rsa("two", "Ag"), rsa("huge", "AgAAAAE"), rsa("ok", "AQAB")
        ]});
        let (mut keys, mut skipped) = (Vec::new(), Vec::new());
        classify(&doc, &mut keys, &mut skipped);
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, [Some("ok")]);
        assert_eq!((keys[0].kty.as_str(), keys[0].size), ("RSA", 2048));
        let reasons: Vec<_> = skipped
            .iter()
            .map(|s| (s.kid.as_deref().unwrap_or(""), s.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("one", "unusable RSA public exponent: it is 1"),
                ("two", "unusable RSA public exponent: it is even"),
                (
                    "huge",
                    "unusable RSA public exponent: it has 34 bits (at most 33 can verify)"
                ),
            ]
        );
    }
}
