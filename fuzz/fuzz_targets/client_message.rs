#![no_main]
//! Arbitrary bytes into the client-message parser: never a panic; what parses
//! re-encodes to something that parses to the same message.
use libfuzzer_sys::fuzz_target;
use scram_dh::message::ClientMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(m) = ClientMessage::from_json(text) {
            let again = ClientMessage::from_json(&m.to_json()).expect("re-encoded message parses");
            assert_eq!(again, m);
        }
    }
});
