//! In-band registration over ephemeral Diffie-Hellman (SPEC 3a, wire R1..R4).
//!
//! The client proves nothing here (it has no credential yet); the server proves
//! its identity by signing the transcript with its Ed25519 host key, and both
//! sides derive per-direction AEAD keys from the DH secret bound to that
//! transcript, so neither the salted password nor the labels are exposed to an
//! eavesdropper or to a man in the middle the client has pinned out.

pub mod client;
pub mod server;

use crate::crypto::{hkdf_pair, put_lp, sha256};
use crate::dh::SharedSecret;
use crate::keys::KeyLabels;
use crate::record::Labels;
use crate::secret::SymmetricKey;

pub(crate) const INFO_C2S: &[u8] = b"scram-dh/1 registration c2s";
pub(crate) const INFO_S2C: &[u8] = b"scram-dh/1 registration s2c";

/// The fields of the registration transcript `T` (SPEC 7). Text fields go in as
/// their UTF-8 wire text, binary fields as their decoded bytes.
pub(crate) struct Transcript<'a> {
    pub username: &'a str,
    pub group: &'a str,
    pub client_public_key: &'a [u8],
    pub client_nonce: &'a str,
    pub labels: &'a str,
    pub salt: &'a [u8],
    pub ic: u32,
    pub server_public_key: &'a [u8],
    pub nonce: &'a str,
    pub host_key: &'a [u8],
}

impl Transcript<'_> {
    /// `h = SHA-256(T)`.
    pub(crate) fn hash(&self) -> [u8; 32] {
        let mut t = Vec::with_capacity(
            128 + self.client_public_key.len() + self.server_public_key.len() + self.nonce.len(),
        );
        put_lp(&mut t, b"scram-dh/1 registration");
        put_lp(&mut t, self.username.as_bytes());
        put_lp(&mut t, self.group.as_bytes());
        put_lp(&mut t, self.client_public_key);
        put_lp(&mut t, self.client_nonce.as_bytes());
        put_lp(&mut t, self.labels.as_bytes());
        put_lp(&mut t, self.salt);
        t.extend_from_slice(&self.ic.to_be_bytes());
        put_lp(&mut t, self.server_public_key);
        put_lp(&mut t, self.nonce.as_bytes());
        put_lp(&mut t, self.host_key);
        sha256(&t)
    }
}

/// `(k_c2s, k_s2c, labels)` from `PRK = HKDF-Extract(salt = h, IKM = Z)`: the two
/// direction keys and the record's labels, which both sides compute (SPEC 7).
pub(crate) fn registration_keys(
    h: &[u8; 32],
    z: &SharedSecret,
    labels: Labels,
) -> (SymmetricKey, SymmetricKey, KeyLabels) {
    let (k_c2s, k_s2c) = hkdf_pair(h, z.as_bytes(), INFO_C2S, INFO_S2C);
    (k_c2s, k_s2c, KeyLabels::registration(labels, h, z.as_bytes()))
}
