//! Owns the `poolgate` command line: every command's options (clap `Args`), what it does and
//! how it prints (JSON Lines or an aligned table), and the exit codes. `main.rs` only parses
//! the arguments and dispatches here.
//!
//! It must not hold login or verification logic: it calls [`Gate::check`](crate::gate::Gate),
//! [`explain`](crate::explain), [`Session::authorize`](crate::gate::Session::authorize), the key
//! set and fetch modules, and the local test issuer, and only prints what they return.
//!
//! Exit codes: [`EXIT_OK`] (every token authenticated, or the operation allowed),
//! [`EXIT_REJECTED`] (some token rejected, or denied) and [`EXIT_USAGE`] (usage,
//! configuration or file error). Errors go to stderr, one line each.

mod authorize;
mod check;
mod config_check;
mod decode;
mod demo;
mod explain;
mod issuer;
mod jwks;
mod style;

use std::io::{IsTerminal as _, Write};
use std::path::Path;
use std::sync::Arc;

pub use authorize::AuthorizeArgs;
pub use check::{BatchSummary, BatchToken, CheckArgs, check_stream, read_token_lines, read_tokens};
pub use config_check::ConfigCheckArgs;
pub use decode::DecodeArgs;
pub use demo::DemoArgs;
pub use explain::ExplainArgs;
pub use issuer::{IssuerArgs, TokenArgs, parse_clients};
pub use jwks::JwksArgs;
pub use style::Style;

use crate::config::Config;
use crate::gate::{Gate, LoginRequest};
use crate::time::{Clock, ManualClock, SystemClock, UnixTime};

/// Runs `poolgate demo`.
///
/// # Errors
/// A [`CliError`] to print.
pub fn demo(args: &DemoArgs, ctx: &Context) -> CliResult {
    demo::run(args, ctx)
}

/// Runs `poolgate check`.
///
/// # Errors
/// A [`CliError`] to print.
pub fn check(args: &CheckArgs, ctx: &Context) -> CliResult {
    check::run(args, ctx)
}

/// Runs `poolgate explain`.
///
/// # Errors
/// A [`CliError`] to print.
pub fn explain(args: &ExplainArgs, ctx: &Context) -> CliResult {
    explain::run(args, ctx)
}

/// Runs `poolgate authorize`.
///
/// # Errors
/// A [`CliError`] to print.
pub fn authorize(args: &AuthorizeArgs, ctx: &Context) -> CliResult {
    authorize::run(args, ctx)
}

/// Runs `poolgate decode`.
///
/// # Errors
/// A [`CliError`] to print.
pub fn decode(args: &DecodeArgs, ctx: &Context) -> CliResult {
    decode::run(args, ctx)
}

/// Runs `poolgate jwks`.
///
/// # Errors
/// A [`CliError`] to print.
pub fn jwks(args: &JwksArgs, ctx: &Context) -> CliResult {
    jwks::run(args, ctx)
}

/// Runs `poolgate config check`.
///
/// # Errors
/// A [`CliError`] to print.
pub fn config_check(args: &ConfigCheckArgs, ctx: &Context) -> CliResult {
    config_check::run(args, ctx)
}

/// Runs `poolgate issuer`.
///
/// # Errors
/// A [`CliError`] to print.
pub fn issuer(args: &IssuerArgs, ctx: &Context) -> CliResult {
    issuer::run_issuer(args, ctx)
}

/// Runs `poolgate token`.
///
/// # Errors
/// A [`CliError`] to print.
pub fn token(args: &TokenArgs, ctx: &Context) -> CliResult {
    issuer::run_token(args, ctx)
}

/// Every token authenticated, or the operation was allowed.
pub const EXIT_OK: u8 = 0;
/// Some token was rejected, or the operation was denied.
pub const EXIT_REJECTED: u8 = 1;
/// A usage, configuration or file error.
pub const EXIT_USAGE: u8 = 2;

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table for people, coloured only on a terminal (and never with `NO_COLOR`).
    #[default]
    Human,
    /// One JSON object per line (JSON Lines).
    Json,
}

/// What every command is given besides its own options.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    /// The output format.
    pub format: Format,
    /// Colours for stdout.
    pub style: Style,
    /// Whether stderr is a terminal (progress bars go there only then).
    pub stderr_is_terminal: bool,
}

impl Context {
    /// The context for this process: colour only when stdout is a terminal and `NO_COLOR` is
    /// not set (to a non-empty value, as no-color.org says).
    pub fn detect(format: Format) -> Context {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Context {
            format,
            style: Style::new(std::io::stdout().is_terminal() && !no_color),
            stderr_is_terminal: std::io::stderr().is_terminal(),
        }
    }
}

/// A command that could not run: each line is printed to stderr as `error: <line>`, and the
/// process exits with `code` (usually [`EXIT_USAGE`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliError {
    /// One message per problem; each names what to fix.
    pub lines: Vec<String>,
    /// The exit code.
    pub code: u8,
}

impl CliError {
    /// A usage, configuration or file error (exit 2).
    pub fn usage(line: impl Into<String>) -> CliError {
        CliError {
            lines: vec![line.into()],
            code: EXIT_USAGE,
        }
    }

    /// A failure that is not the user's input (exit 1), e.g. an IdP that refused.
    pub fn failed(line: impl Into<String>) -> CliError {
        CliError {
            lines: vec![line.into()],
            code: EXIT_REJECTED,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.lines.join("; "))
    }
}

impl std::error::Error for CliError {}

/// What a command returns: its exit code, or an error to print.
pub type CliResult = Result<u8, CliError>;

/// Prints a command's error lines to stderr and returns the exit code to use.
pub fn report(result: CliResult) -> u8 {
    match result {
        Ok(code) => code,
        Err(e) => {
            let mut stderr = std::io::stderr().lock();
            for line in &e.lines {
                // A closed stderr leaves nothing to report to.
                let _ = writeln!(stderr, "error: {line}");
            }
            e.code
        }
    }
}

/// Prints a warning line to stderr.
pub(crate) fn warn(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "warning: {line}");
}

/// Sets up `tracing` output on stderr: errors only by default, `-v` info, `-vv` debug,
/// `-vvv` trace. `RUST_LOG`, when set, takes precedence.
pub fn init_tracing(verbosity: u8) {
    init_tracing_with(verbosity, "error");
}

/// Like [`init_tracing`], with `quiet` as the filter when no `-v` is given (the gateway keeps
/// its audit events on: `warn,poolgate::audit=info`).
pub fn init_tracing_with(verbosity: u8, quiet: &str) {
    use tracing_subscriber::EnvFilter;
    let level = match verbosity {
        0 => quiet,
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(level));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    // Fails only when a subscriber is already installed, which then keeps serving.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .try_init();
}

/// The multi-thread runtime the commands run on: one worker per core.
///
/// # Errors
/// When the runtime cannot start (exit 2).
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::usage(format!("cannot start the async runtime: {e}")))
}

/// Parses `--at` with [`parse_time`] (`None`: the caller reads the system clock).
pub(crate) fn parse_at(at: Option<&str>) -> Result<Option<UnixTime>, CliError> {
    at.map(|s| parse_time(s).map_err(|e| CliError::usage(format!("--at: {e}"))))
        .transpose()
}

/// A time given on the command line: RFC 3339, unix seconds, or unix milliseconds written
/// with `ms` (`1796528486000ms`, truncated to the second). A bare number of 13 digits or more
/// is refused: as seconds it lies thousands of years ahead, and it is almost always
/// milliseconds (as Kafka and Java write time) or finer, so reading it as seconds would give a
/// wrong answer rather than an error.
pub(crate) fn parse_time(s: &str) -> Result<UnixTime, String> {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if let Some(ms) = s.strip_suffix("ms").filter(|t| digits(t)) {
        return ms
            .parse::<u64>()
            .map(|ms| UnixTime::from_secs(ms / 1000))
            .map_err(|_| format!("`{s}` is too large for unix milliseconds"));
    }
    if digits(s) && s.len() >= 13 {
        let unit = match s.len() {
            13..=15 => "milliseconds",
            16..=18 => "microseconds",
            _ => "nanoseconds",
        };
        let year = s.parse::<u64>().map_or(String::new(), |n| {
            format!(" (as seconds: about the year {})", 1970 + n / 31_556_952)
        });
        return Err(format!(
            "`{s}` looks like {unit}, not unix seconds{year}: write milliseconds with `ms` \
             (`{}ms`) or give seconds (`{}`)",
            &s[..13.min(s.len())],
            &s[..10.min(s.len())]
        ));
    }
    UnixTime::parse(s)
}

/// Loads a configuration, turning every error into its own line (exit 2).
pub(crate) fn load_config(path: &Path) -> Result<Config, CliError> {
    Config::load(path).map_err(|errors| CliError {
        lines: errors.0.iter().map(ToString::to_string).collect(),
        code: EXIT_USAGE,
    })
}

/// Starts a gate leniently: a provider whose IdP cannot serve its keys now is reported as a
/// warning (its tokens get `jwks_unavailable`); a configuration that cannot work is exit 2.
/// With `at`, the gate's clock is fixed there.
pub(crate) async fn start_gate(config: Config, at: Option<UnixTime>) -> Result<Gate, CliError> {
    let clock: Arc<dyn Clock> = match at {
        Some(t) => Arc::new(ManualClock::new(t)),
        None => Arc::new(SystemClock),
    };
    let (gate, degraded) = Gate::start_lenient(config, clock)
        .await
        .map_err(|e| CliError::usage(format!("{e}")))?;
    for d in degraded {
        warn(&format!(
            "{d}; its tokens are rejected with jwks_unavailable until its keys can be fetched"
        ));
    }
    Ok(gate)
}

/// The login request `--pool` and `--logical-cluster` stand for: the SASL extensions
/// `identityPoolId` and `logicalCluster`.
pub(crate) fn login_request(pool: Option<&str>, logical_cluster: Option<&str>) -> LoginRequest {
    let mut extensions = Vec::new();
    if let Some(p) = pool {
        extensions.push(("identityPoolId".to_owned(), p.to_owned()));
    }
    if let Some(c) = logical_cluster {
        extensions.push(("logicalCluster".to_owned(), c.to_owned()));
    }
    LoginRequest {
        pools: pool.map(|p| {
            p.split(',')
                .map(str::trim_ascii)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect()
        }),
        logical_cluster: logical_cluster.map(str::to_owned),
        authzid: None,
        extensions,
    }
}

/// The login request a SASL client message carries.
pub(crate) fn request_of(msg: &crate::sasl::ClientFirstMessage) -> LoginRequest {
    LoginRequest {
        pools: msg
            .identity_pool_ids()
            .map(|ids| ids.into_iter().map(str::to_owned).collect()),
        logical_cluster: msg.logical_cluster().map(str::to_owned),
        authzid: msg.authzid().map(str::to_owned),
        extensions: msg.extensions().to_vec(),
    }
}

/// Writes a serialisable value as one JSON line.
pub(crate) fn json_line(
    out: &mut dyn Write,
    value: &impl serde::Serialize,
) -> Result<(), CliError> {
    let line = serde_json::to_string(value)
        .map_err(|e| CliError::failed(format!("cannot encode JSON output: {e}")))?;
    writeln!(out, "{line}").map_err(write_error)
}

/// A failed write to stdout (a closed pipe, a full disk).
pub(crate) fn write_error(e: std::io::Error) -> CliError {
    CliError::usage(format!("cannot write the output: {e}"))
}

pub(crate) use crate::explain::{human_duration, relative};

/// Aligns rows of cells into columns separated by two spaces (a row's last cell is left
/// unpadded and does not widen its column). Each cell is `(text, paint)`:
/// the padding is computed on the plain text, then `paint` colours it.
pub(crate) fn table(rows: &[Vec<Cell>], indent: usize, style: Style) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        // The last cell of a row is not padded, so it does not widen its column.
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            widths[i] = widths[i].max(cell.text.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = " ".repeat(indent);
        for (i, cell) in row.iter().enumerate() {
            let last = i + 1 == row.len();
            let pad = if last {
                0
            } else {
                widths[i] - cell.text.chars().count() + 2
            };
            line.push_str(&style.paint(&cell.text, cell.paint));
            line.push_str(&" ".repeat(pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A table cell: its text and how to colour it.
#[derive(Clone, Debug)]
pub(crate) struct Cell {
    pub(crate) text: String,
    pub(crate) paint: style::Paint,
}

impl Cell {
    pub(crate) fn plain(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            paint: style::Paint::None,
        }
    }

    pub(crate) fn painted(text: impl Into<String>, paint: style::Paint) -> Cell {
        Cell {
            text: text.into(),
            paint,
        }
    }
}

/// `allow Read,Describe on Topic:orders-*` from a grant's JSON view.
pub(crate) fn grant_line(view: &serde_json::Value) -> String {
    let s = |k: &str| view.get(k).and_then(|v| v.as_str()).unwrap_or("?");
    let ops: Vec<&str> = view
        .get("operations")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|o| o.as_str()).collect())
        .unwrap_or_default();
    let name = match s("pattern") {
        "prefixed" => format!("{}*", s("name")),
        _ => s("name").to_owned(),
    };
    format!(
        "{} {} on {}:{}",
        s("effect"),
        ops.join(","),
        s("resource_type"),
        name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(12), "12s");
        assert_eq!(human_duration(60), "1m");
        assert_eq!(human_duration(3598), "59m 58s");
        assert_eq!(human_duration(3600), "1h");
        assert_eq!(human_duration(3 * 3600 + 120 + 5), "3h 2m");
        assert_eq!(human_duration(2 * 86_400 + 3 * 3600), "2d 3h");
        let now = UnixTime::from_secs(1000);
        assert_eq!(relative(UnixTime::from_secs(1060), now), "in 1m");
        assert_eq!(relative(UnixTime::from_secs(940), now), "1m ago");
    }

    #[test]
    fn times_that_look_like_milliseconds_are_refused() {
        let secs = UnixTime::from_secs(1_796_528_486);
        assert_eq!(parse_time("1796528486"), Ok(secs));
        assert_eq!(parse_time("1796528486000ms"), Ok(secs));
        assert_eq!(parse_time("1796528486999ms"), Ok(secs));
        assert_eq!(parse_time("2026-12-06T03:41:26Z"), Ok(secs));
        assert_eq!(parse_time("0"), Ok(UnixTime::from_secs(0)));
        // Twelve digits are still seconds (the year 5138).
        assert_eq!(
            parse_time("100000000000"),
            Ok(UnixTime::from_secs(100_000_000_000))
        );
        for (input, unit) in [
            ("1796528486000", "milliseconds"),
            ("1796528486000000", "microseconds"),
            ("1796528486000000000", "nanoseconds"),
        ] {
            let e = parse_time(input).unwrap_err();
            assert!(
                e.starts_with(&format!("`{input}` looks like {unit}")),
                "{e}"
            );
            assert!(
                e.contains("`1796528486000ms`") && e.contains("`1796528486`"),
                "{e}"
            );
        }
        let e = parse_time("1796528486000").unwrap_err();
        assert!(e.contains("about the year 58899"), "{e}");
        for bad in [
            "ms",
            "12s",
            "1.5ms",
            "-1000ms",
            "99999999999999999999999ms",
            "yesterday",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pool_and_cluster_flags_become_extensions() {
        let r = login_request(Some("a, b,,"), Some("lkc-1"));
        assert_eq!(r.pools, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(r.logical_cluster.as_deref(), Some("lkc-1"));
        assert_eq!(r.extensions.len(), 2);
        assert_eq!(login_request(None, None), LoginRequest::default());
    }

    #[test]
    fn tables_align_on_plain_text() {
        let rows = vec![
            vec![Cell::plain("a"), Cell::plain("bb"), Cell::plain("c")],
            vec![Cell::plain("aaa"), Cell::plain("b"), Cell::plain("")],
        ];
        assert_eq!(
            table(&rows, 2, Style::new(false)),
            "  a    bb  c\n  aaa  b\n"
        );
    }

    #[test]
    fn grant_lines() {
        let v = serde_json::json!({"effect": "allow", "operations": ["Read", "Describe"],
            "resource_type": "Topic", "pattern": "prefixed", "name": "orders-"});
        assert_eq!(grant_line(&v), "allow Read,Describe on Topic:orders-*");
    }
}
