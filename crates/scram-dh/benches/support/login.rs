//! The one in-process login both benches time: A1..A4 built, serialised to JSON,
//! parsed, checked, with the session stored and consumed in the memory store.

use std::hint::black_box;

use scram_dh::auth::client::AuthClient;
use scram_dh::message::ServerMessage;
use scram_dh::pair::{Pair, block_on};
use scram_dh::{ClientConfig, ClientSecret, Outcome};

#[inline(never)]
pub fn login_once(pair: &mut Pair, secret: &ClientSecret) {
    let step =
        AuthClient::start(&mut pair.client_rng, "alice", secret.clone(), None, ClientConfig::default())
            .expect("start");
    let a1 = step.message.to_json();
    let out = block_on(pair.engine.handle_json(&a1, "bench", pair.now_ms, &mut pair.server_rng));
    let a2 = ServerMessage::from_json(&out.reply().to_json())
        .and_then(ServerMessage::into_auth_pairing)
        .expect("a2");
    let step = step.state.receive_pairing(a2).expect("a3");
    let a3 = step.message.to_json();
    let out = block_on(pair.engine.handle_json(&a3, "bench", pair.now_ms, &mut pair.server_rng));
    let Outcome::Authenticated { reply, auth } = out else { panic!("auth failed") };
    let a4 = ServerMessage::from_json(&reply.to_json()).and_then(ServerMessage::into_auth_proof).expect("a4");
    black_box((step.state.finish(a4).expect("verify"), auth));
}
