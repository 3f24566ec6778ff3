//! Placeholder replaced by the schedule benchmark.
fn main() {}
