#![no_main]
//! Arbitrary bytes into the server-message parser (what a client reads).
use libfuzzer_sys::fuzz_target;
use scram_dh::message::ServerMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(m) = ServerMessage::from_json(text) {
            let again = ServerMessage::from_json(&m.to_json()).expect("re-encoded message parses");
            assert_eq!(again, m);
        }
    }
});
