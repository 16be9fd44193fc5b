//! Mock replies for unknown users (SPEC 4 step 2, finding M6): an unknown user's
//! A2 must look like a real user's, also after the server's iteration count was
//! changed or records were imported. So its `(ic, salt length)` is drawn from the
//! shapes of the real records, weighted by their counts, deterministically per
//! username (HMAC of the server's mock secret), and its salt is a deterministic
//! HMAC expansion of the same secret and the name.

use std::collections::BTreeMap;

use zeroize::Zeroize as _;

use crate::crypto::HmacKey;
#[cfg(test)]
use crate::crypto::hmac;
use crate::record::{Labels, Record, RecordShape};
use crate::secret::{ServerKey, StoredKey};

/// The longest mock salt (and so the longest salt a shape may have to be imitated).
pub const MAX_MOCK_SALT_LEN: usize = 64;

const SALT_LABEL: &[u8] = b"scram-dh mock salt";
const SHAPE_LABEL: &[u8] = b"scram-dh mock shape";

/// The distribution of record shapes that unknown users' replies imitate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MockProfile {
    /// Shapes in a fixed (sorted) order with their counts, all counts > 0.
    shapes: Vec<(RecordShape, u64)>,
    total: u64,
}

impl MockProfile {
    /// An empty profile: unknown users get the server's own ic and 32-byte salts.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A profile from a store's histogram of `(ic, salt length) -> count`. Shapes no
    /// mock can imitate (salt empty or over 64 bytes) are left out.
    #[must_use]
    pub fn from_shapes(shapes: &BTreeMap<RecordShape, u64>) -> Self {
        let mut profile = Self::new();
        for (&shape, &count) in shapes {
            profile.add_n(shape, count);
        }
        profile
    }

    /// Counts one more record of `shape` (a registration just committed).
    pub fn add(&mut self, shape: RecordShape) {
        self.add_n(shape, 1);
    }

    fn add_n(&mut self, shape: RecordShape, count: u64) {
        if count == 0 || shape.salt_len == 0 || shape.salt_len > MAX_MOCK_SALT_LEN {
            return;
        }
        match self.shapes.binary_search_by(|(s, _)| s.cmp(&shape)) {
            Ok(i) => self.shapes[i].1 = self.shapes[i].1.saturating_add(count),
            Err(i) => self.shapes.insert(i, (shape, count)),
        }
        self.total = self.total.saturating_add(count);
    }

    /// The number of records the profile was built from.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The shape of `username`'s mock reply: drawn from the profile weighted by the
    /// counts, with `HMAC(mock_secret, "scram-dh mock shape" || username)` as the
    /// (deterministic) randomness; `(default_ic, 32)` when the profile is empty.
    /// Every entry is visited whatever the outcome.
    #[must_use]
    pub fn shape_for(&self, mock_secret: &[u8; 32], username: &str, default_ic: u32) -> RecordShape {
        self.shape_for_key(&HmacKey::new(mock_secret), username, default_ic)
    }

    fn shape_for_key(&self, mock_key: &HmacKey, username: &str, default_ic: u32) -> RecordShape {
        let h = mock_key.mac(&[SHAPE_LABEL, username.as_bytes()]);
        let mut x = [0u8; 8];
        x.copy_from_slice(&h[..8]);
        // A uniform draw in 0..total by multiply-shift (bias < total / 2^64).
        let target = ((u128::from(u64::from_be_bytes(x)) * u128::from(self.total)) >> 64) as u64;
        let mut chosen = RecordShape { ic: default_ic, salt_len: 32 };
        let mut cumulative = 0u64;
        let mut found = false;
        for &(shape, count) in &self.shapes {
            cumulative = cumulative.saturating_add(count);
            let hit = !found & (target < cumulative);
            if hit {
                chosen = shape;
            }
            found |= hit;
        }
        chosen
    }

    /// `username`'s mock salt: the first `len` bytes (at most 64) of
    /// `T1 = HMAC(mock_secret, "scram-dh mock salt" || username)`,
    /// `T2 = HMAC(mock_secret, T1 || "scram-dh mock salt" || 0x02)`. Both blocks are
    /// always computed; `T1` alone is the 32-byte salt this server always gave.
    #[must_use]
    pub fn salt_for(mock_secret: &[u8; 32], username: &str, len: usize) -> Vec<u8> {
        Self::salt_for_key(&HmacKey::new(mock_secret), username, len)
    }

    fn salt_for_key(mock_key: &HmacKey, username: &str, len: usize) -> Vec<u8> {
        let t1 = mock_key.mac(&[SALT_LABEL, username.as_bytes()]);
        let t2 = mock_key.mac(&[&t1, SALT_LABEL, &[2]]);
        let mut out = Vec::with_capacity(MAX_MOCK_SALT_LEN);
        out.extend_from_slice(&t1);
        out.extend_from_slice(&t2);
        out.truncate(len.min(MAX_MOCK_SALT_LEN));
        out
    }

    /// The record an unknown `username` is answered with, by the native protocol
    /// and by standard SCRAM alike: the shape and salt above, and `filler` (64
    /// fresh random bytes) as StoredKey and ServerKey, which no proof matches.
    #[must_use]
    pub fn mock_record(
        &self,
        mock_secret: &[u8; 32],
        username: &str,
        default_ic: u32,
        filler: &[u8; 64],
    ) -> Record {
        // One key setup for the three HMACs under the mock secret.
        self.mock_record_with_key(&HmacKey::new(mock_secret), username, default_ic, filler)
    }

    /// [`mock_record`](Self::mock_record) under the mock secret's absorbed HMAC key
    /// (`HmacKey::new(mock_secret)`), which the engine builds once: the same record,
    /// without the two compressions of the key setup per login.
    pub(crate) fn mock_record_with_key(
        &self,
        mock_key: &HmacKey,
        username: &str,
        default_ic: u32,
        filler: &[u8; 64],
    ) -> Record {
        let shape = self.shape_for_key(mock_key, username, default_ic);
        let mut stored = [0u8; 32];
        let mut server = [0u8; 32];
        stored.copy_from_slice(&filler[..32]);
        server.copy_from_slice(&filler[32..]);
        let record = Record {
            username: username.to_owned(),
            salt: Self::salt_for_key(mock_key, username, shape.salt_len),
            ic: shape.ic,
            stored_key: StoredKey::from_bytes(stored),
            server_key: ServerKey::from_bytes(server),
            created: 0,
            labels: Labels::Random,
        };
        stored.zeroize();
        server.zeroize();
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(ic: u32, salt_len: usize) -> RecordShape {
        RecordShape { ic, salt_len }
    }

    #[test]
    fn empty_profile_gives_server_ic_and_32_bytes() {
        let p = MockProfile::new();
        assert_eq!(p.shape_for(&[1; 32], "x", 8192), shape(8192, 32));
        assert_eq!(MockProfile::salt_for(&[1; 32], "x", 32), hmac(&[1; 32], &[SALT_LABEL, b"x"]).to_vec());
    }

    #[test]
    fn salt_expansion_is_deterministic_prefix_closed_and_bounded() {
        let a = MockProfile::salt_for(&[1; 32], "alice", 64);
        assert_eq!(a.len(), 64);
        assert_eq!(MockProfile::salt_for(&[1; 32], "alice", 16), a[..16]);
        assert_eq!(MockProfile::salt_for(&[1; 32], "alice", 100).len(), 64);
        assert_ne!(MockProfile::salt_for(&[1; 32], "bob", 64), a);
        assert_ne!(MockProfile::salt_for(&[2; 32], "alice", 64), a);
        assert_ne!(a[..32], a[32..]);
    }

    /// The engine's precomputed key gives exactly the record the secret gives.
    #[test]
    fn precomputed_key_gives_the_same_mock() {
        let mut counts = BTreeMap::new();
        counts.insert(shape(4096, 32), 3);
        counts.insert(shape(8192, 16), 2);
        counts.insert(shape(10_000, 64), 1);
        let p = MockProfile::from_shapes(&counts);
        for (i, secret) in [[1u8; 32], [0xa5; 32], [0; 32]].iter().enumerate() {
            let key = HmacKey::new(secret);
            let filler = [u8::try_from(i).unwrap(); 64];
            for name in ["alice", "bob", "", "\u{e9}l\u{e8}ve", "a,b=c"] {
                let a = p.mock_record(secret, name, 4096, &filler);
                let b = p.mock_record_with_key(&key, name, 4096, &filler);
                assert_eq!(a, b, "{name}");
                assert_eq!(a.salt, MockProfile::salt_for(secret, name, a.salt.len()));
            }
        }
    }

    #[test]
    fn shapes_follow_the_counts() {
        let mut counts = BTreeMap::new();
        counts.insert(shape(4096, 32), 3);
        counts.insert(shape(8192, 16), 1);
        counts.insert(shape(4096, 128), 50); // not imitable: left out
        counts.insert(shape(4096, 0), 50);
        let p = MockProfile::from_shapes(&counts);
        assert_eq!(p.total(), 4);
        let mut seen = BTreeMap::new();
        for i in 0..4000 {
            *seen.entry(p.shape_for(&[7; 32], &format!("u{i}"), 1)).or_insert(0u32) += 1;
        }
        assert_eq!(seen.len(), 2, "{seen:?}");
        let big = seen[&shape(4096, 32)];
        assert!((2800..3200).contains(&big), "about 3/4: {seen:?}");
        // Deterministic per name.
        assert_eq!(p.shape_for(&[7; 32], "u1", 1), p.shape_for(&[7; 32], "u1", 1));
        // Incremental updates equal a rebuild.
        let mut q = MockProfile::new();
        for _ in 0..3 {
            q.add(shape(4096, 32));
        }
        q.add(shape(8192, 16));
        assert_eq!(p, q);
    }
}
