#![no_main]
//! Arbitrary bytes as stored session state (a corrupted or hostile session store).
use libfuzzer_sys::fuzz_target;
use scram_dh::auth::server::PendingAuth;
use scram_dh::register::server::PendingRegistration;

fuzz_target!(|data: &[u8]| {
    let _ = PendingAuth::from_bytes(data);
    let _ = PendingRegistration::from_bytes(data);
});
