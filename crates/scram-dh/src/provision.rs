//! Out-of-band provisioning (SPEC 3b): the server host makes the password, salt,
//! labels and record, and hands the client its credential bundle over a channel
//! it already trusts (`ssh admin@host scram-dh provision alice > alice.cred`).

use rand_core::CryptoRng;

use crate::credential::{CREDENTIAL_FORMAT, ClientCredential};
use crate::error::{Error, Result};
use crate::hostkey::Fingerprint;
use crate::keys::{ClientKeys, MIN_ITERATIONS, salted_password};
use crate::record::{Labels, Record};
use crate::secret::Password;

/// A provisioned user: the record for the store and the bundle for the client.
#[derive(Debug)]
pub struct Provisioned {
    /// Insert this (insert-if-absent).
    pub record: Record,
    /// Deliver this to the user; it is secret.
    pub bundle: ClientCredential,
}

/// A random UUIDv4 string, as the original used for provisioned passwords (122 random bits).
pub fn random_password<R: CryptoRng + ?Sized>(rng: &mut R) -> Password {
    let mut b = zeroize::Zeroizing::new([0u8; 16]);
    rng.fill_bytes(b.as_mut());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, chunk) in [&b[0..4], &b[4..6], &b[6..8], &b[8..10], &b[10..16]].iter().enumerate() {
        if i > 0 {
            s.push('-');
        }
        crate::nonce::push_hex(&mut s, chunk);
    }
    Password::new(s)
}

/// Provisions `username`.
///
/// The bundle carries the password only with RFC labels, where it is what a
/// standard SCRAM client needs; with random labels the keys are all the client uses.
///
/// ```
/// use rand_core::SeedableRng;
/// use scram_dh::{Labels, provision::provision};
///
/// let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
/// let p = provision(&mut rng, "alice", 4096, Labels::Random, 0, None, None).unwrap();
/// assert_eq!(p.record.username, "alice");
/// assert!(p.bundle.password.is_none());
/// ```
///
/// # Errors
/// [`Error::InvalidMessage`] for an invalid username; [`Error::ServerError`] for
/// an iteration count below 4096.
pub fn provision<R: CryptoRng + ?Sized>(
    rng: &mut R,
    username: &str,
    ic: u32,
    labels: Labels,
    now_secs: u64,
    server: Option<String>,
    host_key: Option<Fingerprint>,
) -> Result<Provisioned> {
    let username = crate::username::normalize(username)?;
    if ic < MIN_ITERATIONS {
        return Err(Error::ServerError(format!("iteration count must be at least {MIN_ITERATIONS}")));
    }
    let password = random_password(rng);
    let mut salt = [0u8; 32];
    rng.fill_bytes(&mut salt);
    let salted = salted_password(&password, &salt, ic)?;
    let keys = ClientKeys::generate(rng, &salted, labels);
    let record = keys.record(&username, &salt, ic, now_secs, labels);
    let bundle = ClientCredential {
        format: CREDENTIAL_FORMAT.to_owned(),
        username,
        salt: salt.to_vec(),
        ic,
        labels,
        client_key: keys.client_key,
        server_key: keys.server_key,
        server,
        host_key,
        password: (labels == Labels::Rfc).then_some(password),
        unconfirmed: false,
    };
    Ok(Provisioned { record, bundle })
}
