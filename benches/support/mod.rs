//! What the gateway benchmarks (`gateway.rs`, `cluster.rs`) share: their test mode, process CPU
//! time from `/proc`, and units.

use std::time::Duration;

/// `cargo bench -- --test` (or `cargo test --benches`): run everything once, small.
pub fn test_mode() -> bool {
    std::env::args().any(|a| a == "--test")
}

/// CPU time of the process `pid` so far.
pub fn cpu_of(pid: u32) -> Duration {
    cpu_time(&format!("/proc/{pid}/stat"))
}

/// User + system CPU time of a process so far, from `/proc` (zero where there is none).
pub fn cpu_time(stat_file: &str) -> Duration {
    let Ok(stat) = std::fs::read_to_string(stat_file) else {
        return Duration::ZERO;
    };
    // After the command name (in parentheses, field 2): state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // In clock ticks of 1/100 s (USER_HZ on Linux).
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Microseconds.
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
