//! The `poolgate` command line: a thin dispatcher over the library.
//!
//! The command set (`check`, `explain`, `authorize`, `decode`, `jwks`, `issuer`, `demo`, …) is
//! specified by issue 4 and built on the library; until then the binary reports its version.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        None | Some("-V" | "--version" | "version") => {
            println!("poolgate {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("-h" | "--help" | "help") => {
            println!(
                "poolgate {}: broker-side Kafka SASL/OAUTHBEARER validation\n\n\
                 The library is ready (see README.md); the command line arrives with the CLI work.",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("poolgate: unknown command `{other}` (try --help)");
            ExitCode::from(2)
        }
    }
}
