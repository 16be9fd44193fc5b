//! Property tests: wire messages round-trip byte-exactly, and no parser panics on
//! arbitrary input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use scram_dh::message::*;
use scram_dh::nonce::{CombinedNonce, Nonce};
use scram_dh::{ClientCredential, ErrorCode, Fingerprint, Record};

fn b64() -> impl Strategy<Value = Base64> {
    proptest::collection::vec(any::<u8>(), 0..200).prop_map(Base64)
}

fn text() -> impl Strategy<Value = String> {
    ".{0,40}"
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        (text(), text(), b64(), text(), text()).prop_map(
            |(username, group, public_key, client_nonce, labels)| {
                ClientMessage::RegistrationPairing(RegistrationPairing {
                    username,
                    group,
                    public_key,
                    client_nonce,
                    labels,
                })
            }
        ),
        (b64(), text()).prop_map(|(secret_key, nonce)| {
            ClientMessage::RegistrationSendPassword(RegistrationSendPassword { secret_key, nonce })
        }),
        (text(), text(), proptest::option::of((text(), b64()))).prop_map(|(username, client_nonce, ch)| {
            let (group, public_key) = ch.map_or((None, None), |(g, k)| (Some(g), Some(k)));
            ClientMessage::AuthPairing(AuthPairing { username, client_nonce, group, public_key })
        }),
        (b64(), text()).prop_map(|(client_proof, nonce)| {
            ClientMessage::AuthClientProofGeneration(AuthClientProof { client_proof, nonce })
        }),
    ]
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    prop_oneof![
        (b64(), any::<u32>(), b64(), text(), b64(), b64()).prop_map(
            |(salt, ic, public_key, nonce, host_key, signature)| {
                ServerMessage::RegistrationPairing(RegistrationPairingReply {
                    salt,
                    ic,
                    public_key,
                    nonce,
                    host_key,
                    signature,
                })
            }
        ),
        (b64(), b64(), text()).prop_map(|(secret_client_key, secret_server_key, nonce)| {
            ServerMessage::RegistrationKeysGeneration(RegistrationKeysGeneration {
                secret_client_key,
                secret_server_key,
                nonce,
            })
        }),
        (b64(), any::<u32>(), text(), proptest::option::of(b64())).prop_map(
            |(salt, ic, nonce, public_key)| {
                ServerMessage::AuthPairing(AuthPairingReply { salt, ic, nonce, public_key })
            }
        ),
        (b64(), proptest::option::of(text())).prop_map(|(server_signature, session_id)| {
            ServerMessage::AuthProof(AuthProof { server_signature, session_id })
        }),
        (
            prop_oneof![
                Just(ErrorCode::Busy),
                Just(ErrorCode::InvalidMessage),
                Just(ErrorCode::UsernameTaken)
            ],
            text()
        )
            .prop_map(|(code, message)| ServerMessage::Error(ErrorMessage { code, message })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn client_messages_round_trip(m in client_message()) {
        let json = m.to_json();
        let back = ClientMessage::from_json(&json).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_json(), json);
    }

    #[test]
    fn server_messages_round_trip(m in server_message()) {
        let json = m.to_json();
        let back = ServerMessage::from_json(&json).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_json(), json);
    }

    #[test]
    fn nonces_round_trip(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
        let c = CombinedNonce { client: Nonce::from_bytes(a), server: Nonce::from_bytes(b) };
        prop_assert_eq!(CombinedNonce::parse(&c.to_wire()).unwrap(), c);
        prop_assert_eq!(Nonce::parse(&c.client.to_hex()).unwrap(), c.client);
    }

    #[test]
    fn escape_round_trips(name in ".{0,64}") {
        prop_assert_eq!(scram_dh::username::unescape(&scram_dh::username::escape(&name)), Some(name));
    }

    #[test]
    fn text_parsers_never_panic(s in ".{0,300}") {
        let _ = ClientMessage::from_json(&s);
        let _ = ServerMessage::from_json(&s);
        let _ = Nonce::parse(&s);
        let _ = CombinedNonce::parse(&s);
        let _ = s.parse::<Fingerprint>();
        let _ = Record::from_postgres_verifier("u", &s, 0);
        let _ = ClientCredential::from_json(&s);
        let _ = scram_dh::username::normalize(&s);
        let _ = scram_dh::username::unescape(&s);
    }

    // Error texts quote the offending JSON value; long non-ASCII values must not break
    // their truncation (a fuzzer found this one).
    #[test]
    fn quoted_unicode_values_never_panic(v in "[a-zé中ŷЖ]{150,400}", field in prop_oneof![Just("username"), Just("nonce"), Just("x")]) {
        let _ = ClientMessage::from_json(&format!("\"{v}\""));
        let _ = ClientMessage::from_json(&format!(r#"{{"type":"registration_send_password","{field}":"{v}"}}"#));
        let _ = ServerMessage::from_json(&format!(r#"{{"type":"auth_proof","server_signature":"{v}"}}"#));
    }

    #[test]
    fn byte_parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        let s = String::from_utf8_lossy(&b);
        let _ = ClientMessage::from_json(&s);
        let _ = ServerMessage::from_json(&s);
        let _ = scram_dh::fuzzing::session_state(&b);
    }

    // Structured fuzzing: valid JSON objects with the right type and random fields.
    #[test]
    fn json_shaped_inputs_never_panic(
        ty in prop_oneof![Just("registration_pairing"), Just("registration_send_password"), Just("auth_pairing"),
                          Just("auth_client_proof_generation"), Just("auth_proof"), Just("error")],
        fields in proptest::collection::vec((prop_oneof![Just("username"), Just("nonce"), Just("salt"), Just("ic"),
            Just("public_key"), Just("group"), Just("client_nonce"), Just("labels"), Just("code"), Just("x")],
            prop_oneof![Just("null".to_string()), Just("4096".to_string()), Just("-1".to_string()), Just("\"AAAA\"".to_string()),
                        Just("[]".to_string()), Just("{}".to_string()), "\"[a-z0-9+/=]{0,20}\""]), 0..8),
    ) {
        let mut j = format!(r#"{{"type":"{ty}""#);
        for (k, v) in fields {
            j.push_str(&format!(r#","{k}":{v}"#));
        }
        j.push('}');
        let _ = ClientMessage::from_json(&j);
        let _ = ServerMessage::from_json(&j);
    }
}
