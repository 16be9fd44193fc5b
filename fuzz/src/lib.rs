//! Fuzzing for scram-dh: the target bodies live in [`targets`], shared by the
//! libFuzzer binaries in `fuzz_targets/` (nightly, `cargo +nightly fuzz run <target>`)
//! and by the stable replay test `crates/scram-dh/tests/fuzz_replay.rs`.

pub mod targets;
