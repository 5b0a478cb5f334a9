//! Gateway benchmarks (placeholder).
fn main() {}
