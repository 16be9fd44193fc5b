//! Placeholder until the DH benchmarks land.
fn main() {}
