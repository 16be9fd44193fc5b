#![no_main]
//! Arbitrary lines into a live server engine (memory stores), as a hostile client
//! would send them: the engine must answer every line without panicking.
use libfuzzer_sys::fuzz_target;
use scram_dh::pair::{Pair, block_on};

fuzz_target!(|data: &[u8]| {
    let mut pair = Pair::new(1);
    for line in data.split(|&b| b == b'\n').take(8) {
        let text = String::from_utf8_lossy(line);
        let _ = block_on(pair.engine.handle_json(&text, "fuzz", pair.now_ms, &mut pair.server_rng));
    }
});
