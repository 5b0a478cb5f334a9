//! `poolgate check`: runs tokens through the path a gateway uses and prints, per token, the
//! decision, every pool's outcome, the principals and the permissions. Batches are checked in
//! parallel on every worker of the runtime and printed in input order.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::style::Paint;
use super::{
    Cell, CliError, CliResult, Context, EXIT_OK, EXIT_REJECTED, EXIT_USAGE, Format, Style,
    grant_line, json_line, load_config, login_request, parse_at, relative, request_of, start_gate,
    table, write_error,
};
use crate::gate::{Gate, LoginRequest};
use crate::report::{CheckReport, PoolReport, ReportError};
use crate::sasl::ClientFirstMessage;
use crate::time::UnixTime;

/// Tokens checked by one task: large enough to amortise spawning, small enough to spread a
/// batch over every worker.
const CHUNK: usize = 32;

/// Batches at least this long get a progress bar (on a terminal).
const PROGRESS_MIN: usize = 500;

/// `poolgate check`: which pools accept these tokens, and why not.
#[derive(Clone, Debug, clap::Args)]
pub struct CheckArgs {
    /// The configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// A token to check; repeat for several.
    #[arg(long = "token", value_name = "JWT")]
    pub token: Vec<String>,
    /// A file of tokens, one per line (`-` reads stdin); blank lines and `#` comments are
    /// skipped. Checked in parallel on all cores, printed in input order.
    #[arg(long, value_name = "FILE|-")]
    pub tokens: Option<String>,
    /// The SASL extension `identityPoolId`: the pools to consider (comma-separated).
    #[arg(long, value_name = "ID[,ID...]")]
    pub pool: Option<String>,
    /// The SASL extension `logicalCluster`.
    #[arg(long, value_name = "ID")]
    pub logical_cluster: Option<String>,
    /// A raw SASL/OAUTHBEARER client first message to check instead (`-` reads stdin); one
    /// trailing newline after its final 0x01 is ignored.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["token", "tokens", "pool", "logical_cluster"])]
    pub sasl: Option<String>,
    /// Print only the totals: how many tokens were accepted and rejected, and the rejections
    /// by reason code (a `summary` record in JSON).
    #[arg(long, conflicts_with = "rejected_only")]
    pub summary: bool,
    /// Print only the tokens that were rejected, then the totals.
    #[arg(long)]
    pub rejected_only: bool,
    /// Check as of this time instead of now: RFC 3339, unix seconds, or unix
    /// milliseconds with `ms` (`1796528486000ms`); 13 digits or more without `ms` is refused.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

/// How a batch went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchSummary {
    /// Tokens checked.
    pub total: usize,
    /// Tokens that authenticated.
    pub authenticated: usize,
    /// Rejections per error code.
    pub rejected: BTreeMap<String, usize>,
}

/// The last record of a batch in JSON: `{"type": "summary", "total": 3, "accepted": 2,
/// "rejected": 1, "reasons": {"expired": 1}}`.
#[derive(serde::Serialize)]
#[serde(tag = "type", rename = "summary")]
struct SummaryRecord<'a> {
    total: usize,
    accepted: usize,
    rejected: usize,
    reasons: &'a BTreeMap<String, usize>,
}

impl BatchSummary {
    fn add(&mut self, rejected: Option<&str>) {
        self.total += 1;
        match rejected {
            None => self.authenticated += 1,
            Some(code) => match self.rejected.get_mut(code) {
                Some(n) => *n += 1,
                None => {
                    self.rejected.insert(code.to_owned(), 1);
                }
            },
        }
    }

    fn record(&self) -> SummaryRecord<'_> {
        SummaryRecord {
            total: self.total,
            accepted: self.authenticated,
            rejected: self.total - self.authenticated,
            reasons: &self.rejected,
        }
    }

    /// The exit code: 0 when every token authenticated, else 1.
    pub fn exit_code(&self) -> u8 {
        if self.authenticated == self.total {
            EXIT_OK
        } else {
            EXIT_REJECTED
        }
    }
}

/// A token of a batch, and the line of the token file it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchToken {
    /// The token.
    pub token: String,
    /// Its 1-based line in the token file; `None` for a token given otherwise.
    pub line: Option<usize>,
}

impl From<String> for BatchToken {
    fn from(token: String) -> BatchToken {
        BatchToken { token, line: None }
    }
}

/// The tokens of a token file: one per line, surrounding whitespace trimmed, blank lines and
/// lines starting with `#` skipped.
pub fn read_tokens<R: BufRead>(reader: R) -> impl Iterator<Item = std::io::Result<String>> {
    read_token_lines(reader).map(|r| r.map(|t| t.token))
}

/// [`read_tokens`], each token with its 1-based line number (skipped lines counted).
pub fn read_token_lines<R: BufRead>(
    reader: R,
) -> impl Iterator<Item = std::io::Result<BatchToken>> {
    reader
        .lines()
        .enumerate()
        .filter_map(|(i, line)| match line {
            Err(e) => Some(Err(e)),
            Ok(line) => {
                let t = line.trim();
                (!t.is_empty() && !t.starts_with('#')).then(|| {
                    Ok(BatchToken {
                        token: t.to_owned(),
                        line: Some(i + 1),
                    })
                })
            }
        })
}

/// Checks `tokens` (strings, or [`BatchToken`]s that carry their line) through `gate` in
/// parallel on the current multi-thread runtime, in chunks, and hands each report's rendering
/// to `emit` in input order (an empty rendering too: a filtered-out token). `render` runs on the workers,
/// and each report is dropped where it was made: only its text and outcome cross threads
/// (memory allocated on one thread and freed on another makes the allocator contend).
///
/// # Errors
/// The first error from `tokens` or `emit`.
pub async fn check_stream<I, T>(
    gate: &Gate,
    tokens: I,
    request: &LoginRequest,
    now: UnixTime,
    render: Arc<dyn Fn(&CheckReport) -> String + Send + Sync>,
    mut emit: impl FnMut(&str) -> Result<(), CliError>,
) -> Result<BatchSummary, CliError>
where
    I: IntoIterator<Item = Result<T, CliError>>,
    T: Into<BatchToken>,
{
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    let window = workers.max(1) * 4;
    let mut in_flight: VecDeque<tokio::task::JoinHandle<Vec<Checked>>> = VecDeque::new();
    let mut summary = BatchSummary::default();
    let mut tokens = tokens.into_iter();
    let mut index = 0;
    let mut done = false;
    while !done || !in_flight.is_empty() {
        while !done && in_flight.len() < window {
            // One buffer per chunk: the tokens end to end, where each ends and its line.
            let mut buf = String::new();
            let mut ends = Vec::with_capacity(CHUNK);
            while ends.len() < CHUNK {
                match tokens.next() {
                    Some(token) => {
                        let token: BatchToken = token?.into();
                        buf.push_str(&token.token);
                        ends.push((buf.len(), token.line));
                    }
                    None => {
                        done = true;
                        break;
                    }
                }
            }
            if ends.is_empty() {
                break;
            }
            let gate = gate.clone();
            let request = request.clone();
            let render = Arc::clone(&render);
            let first = index;
            index += ends.len();
            in_flight.push_back(tokio::spawn(async move {
                let mut out = Vec::with_capacity(ends.len());
                let mut start = 0;
                for (i, (end, line)) in ends.into_iter().enumerate() {
                    let token = &buf[start..end];
                    start = end;
                    let mut report = gate.check(first + i, token, request.clone(), now).await;
                    report.line = line;
                    out.push(Checked {
                        text: render(&report),
                        rejected: match (report.authenticated, report.error) {
                            (true, _) => None,
                            (false, Some(e)) => Some(e.code),
                            (false, None) => Some("rejected".to_owned()),
                        },
                    });
                }
                out
            }));
        }
        let Some(next) = in_flight.pop_front() else {
            break;
        };
        let results = next
            .await
            .map_err(|e| CliError::failed(format!("a check task failed: {e}")))?;
        for checked in &results {
            summary.add(checked.rejected.as_deref());
            emit(&checked.text)?;
        }
    }
    Ok(summary)
}

/// What a worker hands back for one token.
struct Checked {
    text: String,
    rejected: Option<String>,
}

/// A report for a SASL message that does not parse.
fn sasl_failure(e: &crate::sasl::SaslError, gate: &Gate) -> CheckReport {
    CheckReport {
        index: 0,
        line: None,
        authenticated: false,
        error: Some(ReportError {
            code: e.code().to_owned(),
            message: e.to_string(),
        }),
        issuer: None,
        subject: None,
        expires_at: None,
        pools: gate
            .config()
            .pools()
            .pools()
            .iter()
            .map(|p| PoolReport {
                id: p.id().to_owned(),
                matched: false,
                identity: None,
                principal: None,
                reason: Some(format!("message rejected: {}", e.code())),
            })
            .collect(),
        principals: Vec::new(),
        permissions: Vec::new(),
        diagnostics: Vec::new(),
    }
}

fn read_input(source: &str) -> Result<Vec<u8>, CliError> {
    if source == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut buf)
            .map_err(|e| CliError::usage(format!("cannot read stdin: {e}")))?;
        Ok(buf)
    } else {
        std::fs::read(source).map_err(|e| CliError::usage(format!("cannot read `{source}`: {e}")))
    }
}

/// Runs `poolgate check`.
///
/// # Errors
/// A usage, configuration or file error (exit 2).
pub(crate) fn run(args: &CheckArgs, ctx: &Context) -> CliResult {
    let at = parse_at(args.at.as_deref())?;
    if args.token.is_empty() && args.tokens.is_none() && args.sasl.is_none() {
        return Err(CliError::usage(
            "nothing to check: give --token JWT, --tokens FILE (or - for stdin), or --sasl FILE",
        ));
    }
    let sasl = args.sasl.as_deref().map(read_input).transpose()?;
    // Open the token file before anything slow, so a missing file fails fast.
    let file = match args.tokens.as_deref() {
        Some(path) if path != "-" => Some(
            std::fs::File::open(path)
                .map_err(|e| CliError::usage(format!("--tokens: cannot read `{path}`: {e}")))?,
        ),
        _ => None,
    };
    let config = load_config(&args.config)?;
    let rt = super::runtime()?;
    let format = ctx.format;
    let style = ctx.style;
    rt.block_on(async {
        let gate = start_gate(config, at).await?;
        let now = at.unwrap_or_else(|| gate.validator().clock().now());
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());

        if let Some(bytes) = sasl {
            let bytes = strip_newline(&bytes);
            let report = match ClientFirstMessage::parse(bytes) {
                Ok(msg) => gate.check(0, msg.token(), request_of(&msg), now).await,
                Err(e) => sasl_failure(&e, &gate),
            };
            print_one(&mut out, &report, format, style, now)?;
            out.flush().map_err(write_error)?;
            return Ok(if report.authenticated {
                EXIT_OK
            } else {
                EXIT_REJECTED
            });
        }

        let request = login_request(args.pool.as_deref(), args.logical_cluster.as_deref());
        let named = args
            .token
            .iter()
            .map(|t| Ok(BatchToken::from(t.trim().to_owned())));
        let path = args.tokens.clone().unwrap_or_default();
        let lines: Box<dyn Iterator<Item = Result<BatchToken, CliError>>> =
            match (&args.tokens, file) {
                (None, _) => Box::new(std::iter::empty()),
                (Some(_), Some(f)) => Box::new(read_token_lines(BufReader::new(f)).map(move |r| {
                    r.map_err(|e| CliError::usage(format!("--tokens: cannot read `{path}`: {e}")))
                })),
                (Some(_), None) => Box::new(read_token_lines(std::io::stdin().lock()).map(|r| {
                    r.map_err(|e| CliError::usage(format!("--tokens: cannot read stdin: {e}")))
                })),
            };

        let progress = progress_bar(args, ctx);
        // `--summary` prints no token, `--rejected-only` only the rejected ones: the others
        // render as nothing.
        let (only_totals, rejected_only) = (args.summary, args.rejected_only);
        let shown = move |r: &CheckReport| !(only_totals || rejected_only && r.authenticated);
        let render: Arc<dyn Fn(&CheckReport) -> String + Send + Sync> = match format {
            Format::Json => Arc::new(move |r: &CheckReport| {
                if shown(r) {
                    serde_json::to_string(r).unwrap_or_default()
                } else {
                    String::new()
                }
            }),
            Format::Human => Arc::new(move |r: &CheckReport| {
                if shown(r) {
                    render_human(r, style, now)
                } else {
                    String::new()
                }
            }),
        };
        let mut first = true;
        let summary = check_stream(&gate, named.chain(lines), &request, now, render, |text| {
            progress.inc(1);
            if text.is_empty() {
                return Ok(());
            }
            // Human blocks are separated by a blank line; JSON Lines are not.
            if format == Format::Human && !std::mem::take(&mut first) {
                writeln!(out).map_err(write_error)?;
            }
            writeln!(out, "{text}").map_err(write_error)
        })
        .await;
        progress.finish_and_clear();
        let summary = summary?;
        if summary.total == 0 {
            return Err(CliError {
                lines: vec![
                    "no token to check: the token file has only blank lines and comments"
                        .to_owned(),
                ],
                code: EXIT_USAGE,
            });
        }
        // A batch ends with its totals; so does any filtered output.
        if summary.total > 1 || args.summary || args.rejected_only {
            match format {
                Format::Json => json_line(&mut out, &summary.record())?,
                Format::Human if first => {
                    writeln!(out, "{}", summary_line(&summary, style)).map_err(write_error)?;
                }
                Format::Human => {
                    writeln!(out, "\n{}", summary_line(&summary, style)).map_err(write_error)?;
                }
            }
        }
        out.flush().map_err(write_error)?;
        // The process exits next: freeing a cache of a whole batch entry by entry would only
        // delay that.
        std::mem::forget(gate);
        Ok(summary.exit_code())
    })
}

fn strip_newline(bytes: &[u8]) -> &[u8] {
    let b = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let b = b.strip_suffix(b"\r").unwrap_or(b);
    if b.ends_with(b"\x01") { b } else { bytes }
}

/// A progress bar on stderr for long batches, only when stderr is a terminal.
fn progress_bar(args: &CheckArgs, ctx: &Context) -> ProgressBar {
    let Some(source) = args.tokens.as_deref() else {
        return ProgressBar::hidden();
    };
    if !ctx.stderr_is_terminal {
        return ProgressBar::hidden();
    }
    let total = if source == "-" {
        None
    } else {
        std::fs::File::open(source)
            .ok()
            .map(|f| read_tokens(BufReader::new(f)).count() + args.token.len())
    };
    match total {
        Some(n) if n < PROGRESS_MIN => ProgressBar::hidden(),
        Some(n) => {
            let bar = ProgressBar::with_draw_target(Some(n as u64), ProgressDrawTarget::stderr());
            if let Ok(s) =
                ProgressStyle::with_template("{bar:40} {pos}/{len} tokens  {rate}  eta {eta}")
            {
                bar.set_style(s.with_key("rate", rate));
            }
            bar
        }
        None => {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(s) = ProgressStyle::with_template("{spinner} {pos} tokens  {rate}") {
                bar.set_style(s.with_key("rate", rate));
            }
            bar
        }
    }
}

/// `12345 tokens/s` for the progress bar.
fn rate(state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.0} tokens/s", state.per_sec());
}

fn print_one(
    out: &mut dyn Write,
    report: &CheckReport,
    format: Format,
    style: Style,
    now: UnixTime,
) -> Result<(), CliError> {
    match format {
        Format::Json => json_line(out, report),
        Format::Human => writeln!(out, "{}", render_human(report, style, now)).map_err(write_error),
    }
}

/// `3 tokens: 2 accepted, 1 rejected (expired 1)`.
fn summary_line(s: &BatchSummary, style: Style) -> String {
    let rejected = s.total - s.authenticated;
    let mut line = format!(
        "{} tokens: {} accepted, {} rejected",
        s.total,
        style.paint(&s.authenticated.to_string(), Paint::Good),
        if rejected > 0 {
            style.paint(&rejected.to_string(), Paint::Bad)
        } else {
            rejected.to_string()
        }
    );
    if !s.rejected.is_empty() {
        let codes: Vec<String> = s.rejected.iter().map(|(c, n)| format!("{c} {n}")).collect();
        line.push_str(&format!(" ({})", codes.join(", ")));
    }
    line
}

/// The human view of one report: a headline, then (for a verified token) a table of pools,
/// the principals, the permissions and the diagnostics.
pub(crate) fn render_human(r: &CheckReport, style: Style, now: UnixTime) -> String {
    let mut out = String::new();
    let head = match r.line {
        Some(line) => format!("token {} (line {line})", r.index),
        None => format!("token {}", r.index),
    };
    match &r.error {
        None => {
            out.push_str(&format!(
                "{}  {}",
                style.paint(&head, Paint::Bold),
                style.paint("accepted", Paint::Good)
            ));
        }
        Some(e) => {
            out.push_str(&format!(
                "{}  {}  {}",
                style.paint(&head, Paint::Bold),
                style.paint(&format!("rejected: {}", e.code), Paint::Bad),
                e.message
            ));
        }
    }
    if let Some(sub) = &r.subject {
        out.push_str(&format!("  sub {sub}"));
    }
    if let Some(exp) = &r.expires_at {
        let rel = UnixTime::parse(exp)
            .map(|t| format!(" ({})", relative(t, now)))
            .unwrap_or_default();
        out.push_str(&format!("  expires {exp}{rel}"));
    }
    out.push('\n');
    if r.issuer.is_none() {
        // Rejected before any pool was looked at: the pools say nothing more.
        return out.trim_end().to_owned();
    }
    let mut rows = vec![vec![
        Cell::painted("pool", Paint::Dim),
        Cell::painted("match", Paint::Dim),
        Cell::painted("identity", Paint::Dim),
        Cell::painted("principal", Paint::Dim),
        Cell::painted("reason", Paint::Dim),
    ]];
    for p in &r.pools {
        let (mark, paint) = match (p.matched, &p.principal) {
            (true, Some(_)) => ("yes", Paint::Good),
            (true, None) => ("yes", Paint::Warn),
            (false, _) => ("no", Paint::Dim),
        };
        rows.push(vec![
            Cell::plain(&p.id),
            Cell::painted(mark, paint),
            Cell::plain(p.identity.as_deref().unwrap_or("-")),
            Cell::plain(p.principal.as_deref().unwrap_or("-")),
            Cell::plain(p.reason.as_deref().unwrap_or("")),
        ]);
    }
    out.push_str(&table(&rows, 2, style));
    if !r.principals.is_empty() {
        out.push_str(&format!("  principals   {}\n", r.principals.join(", ")));
    }
    for (i, g) in r.permissions.iter().enumerate() {
        let label = if i == 0 { "permissions" } else { "" };
        out.push_str(&format!("  {label:<11}  {}\n", grant_line(g)));
    }
    for (i, d) in r.diagnostics.iter().enumerate() {
        let label = if i == 0 { "diagnostics" } else { "" };
        out.push_str(&format!("  {label:<11}  {}\n", style.paint(d, Paint::Warn)));
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_skip_blanks_and_comments() {
        let text = "# header\n\n  eyJ.a.b  \n#eyJ.c.d\n\t\neyJ.e.f\n";
        let got: Vec<String> = read_tokens(text.as_bytes()).map(Result::unwrap).collect();
        assert_eq!(got, ["eyJ.a.b", "eyJ.e.f"]);
    }

    #[test]
    fn token_lines_count_skipped_lines() {
        let text = "# header\n\n  eyJ.a.b  \n#eyJ.c.d\r\n\t\neyJ.e.f\n";
        let got: Vec<(Option<usize>, String)> = read_token_lines(text.as_bytes())
            .map(|t| t.map(|t| (t.line, t.token)).unwrap())
            .collect();
        assert_eq!(
            got,
            [
                (Some(3), "eyJ.a.b".to_owned()),
                (Some(6), "eyJ.e.f".to_owned())
            ]
        );
    }

    #[test]
    fn one_trailing_newline_after_a_sasl_message_is_ignored() {
        assert_eq!(
            strip_newline(b"n,,\x01auth=x\x01\x01\n"),
            b"n,,\x01auth=x\x01\x01"
        );
        assert_eq!(
            strip_newline(b"n,,\x01auth=x\x01\x01\r\n"),
            b"n,,\x01auth=x\x01\x01"
        );
        assert_eq!(strip_newline(b"abc\n"), b"abc\n");
    }

    #[test]
    fn summaries() {
        let mut s = BatchSummary::default();
        assert_eq!(s.exit_code(), EXIT_OK);
        s.total = 3;
        s.authenticated = 2;
        s.rejected.insert("expired".into(), 1);
        assert_eq!(s.exit_code(), EXIT_REJECTED);
        assert_eq!(
            summary_line(&s, Style::new(false)),
            "3 tokens: 2 accepted, 1 rejected (expired 1)"
        );
        assert_eq!(
            serde_json::to_value(s.record()).unwrap(),
            serde_json::json!({"type": "summary", "total": 3, "accepted": 2, "rejected": 1,
                "reasons": {"expired": 1}})
        );
    }
}
