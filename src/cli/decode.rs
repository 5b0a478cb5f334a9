//! `poolgate decode`: a token's header and claims, read without verification and marked so.

use std::io::Write;

use base64::Engine as _;
use serde_json::{Value, json};

use super::style::Paint;
use super::{
    CliResult, Context, EXIT_OK, EXIT_REJECTED, Format, json_line, parse_at, relative, write_error,
};
use crate::time::UnixTime;
use crate::token::{DEFAULT_MAX_TOKEN_SIZE, UnverifiedToken};

/// `poolgate decode`: show a token's header and claims (not verified).
#[derive(Clone, Debug, clap::Args)]
pub struct DecodeArgs {
    /// The token.
    #[arg(value_name = "JWT")]
    pub token: String,
    /// Show the expiry relative to this time instead of now: RFC 3339, unix seconds, or
    /// unix milliseconds with `ms` (`1796528486000ms`); 13 digits or more without `ms` is refused.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

/// The decoded token as JSON: `verified` is always false.
pub(crate) fn decode(token: &str, now: UnixTime) -> Value {
    let parsed = match UnverifiedToken::parse(token, DEFAULT_MAX_TOKEN_SIZE) {
        Ok(parsed) => parsed,
        Err(e) => {
            return json!({
                "type": "decoded",
                "verified": false,
                "error": {"code": e.code().as_str(), "message": e.to_string()},
            });
        }
    };
    // The whole header, for display: `UnverifiedToken` keeps only the members it uses.
    let header = token
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .unwrap_or(Value::Null);
    let claims = parsed.unverified_claims();
    let exp = claims
        .get("exp")
        .and_then(Value::as_f64)
        .filter(|e| e.is_finite() && *e >= 0.0)
        .map(|e| UnixTime::from_secs(e as u64));
    json!({
        "type": "decoded",
        "verified": false,
        "error": null,
        "header": header,
        "claims": claims,
        "expires_at": exp.map(UnixTime::to_rfc3339),
        "expires": exp.map(|e| relative(e, now)),
        "expired": exp.map(|e| e <= now),
    })
}

/// Runs `poolgate decode`.
///
/// # Errors
/// A usage error (exit 2) for a bad `--at`.
pub(crate) fn run(args: &DecodeArgs, ctx: &Context) -> CliResult {
    let now = parse_at(args.at.as_deref())?.unwrap_or_else(UnixTime::now);
    let decoded = decode(args.token.trim(), now);
    let ok = decoded["error"].is_null();
    let mut out = std::io::stdout().lock();
    match ctx.format {
        Format::Json => json_line(&mut out, &decoded)?,
        Format::Human => {
            let style = ctx.style;
            if !ok {
                writeln!(
                    out,
                    "{}  {}",
                    style.paint(
                        &format!(
                            "rejected: {}",
                            decoded["error"]["code"].as_str().unwrap_or("?")
                        ),
                        Paint::Bad
                    ),
                    decoded["error"]["message"].as_str().unwrap_or("")
                )
                .map_err(write_error)?;
            } else {
                let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
                let expiry = match (decoded["expires_at"].as_str(), decoded["expires"].as_str()) {
                    (Some(at), Some(rel)) => {
                        let paint = if decoded["expired"] == json!(true) {
                            Paint::Bad
                        } else {
                            Paint::Good
                        };
                        format!("expires  {at} ({})", style.paint(rel, paint))
                    }
                    _ => "expires  (no usable exp claim)".to_owned(),
                };
                writeln!(
                    out,
                    "{}\nheader\n{}\nclaims\n{}\n{expiry}",
                    style.paint(
                        "NOT VERIFIED: decoded without checking the signature or any claim",
                        Paint::Warn
                    ),
                    pretty(&decoded["header"]),
                    pretty(&decoded["claims"]),
                )
                .map_err(write_error)?;
            }
        }
    }
    out.flush().map_err(write_error)?;
    Ok(if ok { EXIT_OK } else { EXIT_REJECTED })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_tokens_are_named() {
        let d = decode("not-a-token", UnixTime::from_secs(0));
        assert_eq!(d["error"]["code"], "malformed");
        assert_eq!(d["verified"], false);
    }

    #[test]
    fn expiry_is_relative_to_now() {
        // {"alg":"RS256","kid":"k1","x5u":"https://evil"} . {"iss":"https://idp","exp":1000}
        let h = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"alg":"RS256","kid":"k1","x5u":"https://evil"}"#);
        let p = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"iss":"https://idp","exp":1000}"#);
        let d = decode(&format!("{h}.{p}.c2ln"), UnixTime::from_secs(940));
        assert_eq!(d["header"]["x5u"], "https://evil");
        assert_eq!(d["claims"]["iss"], "https://idp");
        assert_eq!(d["expires"], "in 1m");
        assert_eq!(d["expired"], false);
        assert_eq!(d["expires_at"], "1970-01-01T00:16:40Z");
    }
}
