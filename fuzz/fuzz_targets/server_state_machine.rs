#![no_main]
//! A program of operations against one ServerEngine (see `targets::server_state_machine`).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _stats = scram_dh_fuzz::targets::server_state_machine(data);
});
