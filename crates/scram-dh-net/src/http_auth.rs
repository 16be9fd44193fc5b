//! The request and response authentication of the HTTP front (SPEC 7, "After
//! authentication"), shared by its server and its client: the MACs, the
//! `Authorization: SCRAM-DH sid=…, seq=…, mac=…` header, and the anti-replay
//! window of the 64 highest sequence numbers seen (RFC 4303 section 3.4.3).
//!
//! - request mac = HMAC(`k_c2s`, `lp(method)`, `lp(path and query)`, `seq` as u64
//!   big-endian, SHA-256(body));
//! - response `Scram-DH-Mac` = HMAC(`k_s2c`, status as u16 big-endian, `seq` as u64
//!   big-endian, SHA-256(body)), where `seq` is the request's.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use scram_dh::crypto::{hmac, put_lp, sha256};
use scram_dh::secret::SymmetricKey;
use subtle::ConstantTimeEq;

/// The authentication scheme's name in `Authorization`.
pub const SCHEME: &str = "SCRAM-DH";
/// The response header carrying the response MAC.
pub const RESPONSE_MAC_HEADER: &str = "Scram-DH-Mac";
/// The width of the anti-replay window.
pub const WINDOW: u64 = 64;

/// The MAC of a request.
#[must_use]
pub fn request_mac(
    k_c2s: &SymmetricKey,
    method: &str,
    path_and_query: &str,
    seq: u64,
    body: &[u8],
) -> [u8; 32] {
    let mut head = Vec::with_capacity(16 + method.len() + path_and_query.len());
    put_lp(&mut head, method.as_bytes());
    put_lp(&mut head, path_and_query.as_bytes());
    hmac(k_c2s.expose(), &[&head, &seq.to_be_bytes(), &sha256(body)])
}

/// The MAC of a response to the request numbered `seq`.
#[must_use]
pub fn response_mac(k_s2c: &SymmetricKey, status: u16, seq: u64, body: &[u8]) -> [u8; 32] {
    hmac(k_s2c.expose(), &[&status.to_be_bytes(), &seq.to_be_bytes(), &sha256(body)])
}

/// Whether `presented` (base64 from a header) is `expected`, in constant time.
#[must_use]
pub fn mac_matches(expected: &[u8; 32], presented: &str) -> bool {
    match STANDARD.decode(presented.trim()) {
        Ok(bytes) if bytes.len() == 32 => bool::from(expected.ct_eq(bytes.as_slice())),
        _ => false,
    }
}

/// The `Scram-DH-Mac` header value for a MAC.
#[must_use]
pub fn encode_mac(mac: &[u8; 32]) -> String {
    STANDARD.encode(mac)
}

/// A parsed `Authorization: SCRAM-DH sid=<session_id>, seq=<n>, mac=<b64>` header.
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The session id from A4.
    pub sid: String,
    /// The request's sequence number.
    pub seq: u64,
    /// The request MAC.
    pub mac: [u8; 32],
}

impl core::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The session id is a bearer-like handle: keep it out of debug output.
        f.debug_struct("Authorization").field("seq", &self.seq).finish_non_exhaustive()
    }
}

/// Why an `Authorization` header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Authorization header: {0}")]
pub struct BadAuthorization(pub &'static str);

impl Authorization {
    /// Builds the header for a request.
    #[must_use]
    pub fn sign(
        sid: &str,
        seq: u64,
        k_c2s: &SymmetricKey,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Self {
        Self { sid: sid.to_owned(), seq, mac: request_mac(k_c2s, method, path_and_query, seq, body) }
    }

    /// The header value.
    #[must_use]
    pub fn to_header(&self) -> String {
        format!("{SCHEME} sid={}, seq={}, mac={}", self.sid, self.seq, STANDARD.encode(self.mac))
    }

    /// Parses a header value: the scheme (case-insensitive), then exactly the
    /// parameters `sid`, `seq` and `mac`, once each, in any order, separated by
    /// commas; values may be quoted.
    ///
    /// # Errors
    /// [`BadAuthorization`] naming what is wrong.
    pub fn parse(value: &str) -> Result<Self, BadAuthorization> {
        let value = value.trim();
        let (scheme, params) = value.split_once(' ').ok_or(BadAuthorization("no parameters"))?;
        if !scheme.eq_ignore_ascii_case(SCHEME) {
            return Err(BadAuthorization("not the SCRAM-DH scheme"));
        }
        let (mut sid, mut seq, mut mac) = (None, None, None);
        for part in params.split(',') {
            let (k, v) = part.trim().split_once('=').ok_or(BadAuthorization("a parameter without '='"))?;
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            let slot = match k.trim().to_ascii_lowercase().as_str() {
                "sid" => &mut sid,
                "seq" => &mut seq,
                "mac" => &mut mac,
                _ => return Err(BadAuthorization("an unknown parameter")),
            };
            if slot.replace(v).is_some() {
                return Err(BadAuthorization("a repeated parameter"));
            }
        }
        let sid = sid.ok_or(BadAuthorization("no sid"))?;
        if sid.is_empty()
            || sid.len() > 128
            || !sid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(BadAuthorization("sid is not a session id"));
        }
        let seq = seq.ok_or(BadAuthorization("no seq"))?;
        if seq.is_empty()
            || seq.len() > 20
            || !seq.bytes().all(|b| b.is_ascii_digit())
            || (seq.len() > 1 && seq.starts_with('0'))
        {
            return Err(BadAuthorization("seq is not a decimal integer"));
        }
        let seq = seq.parse::<u64>().map_err(|_| BadAuthorization("seq is out of range"))?;
        let mac = STANDARD
            .decode(mac.ok_or(BadAuthorization("no mac"))?)
            .map_err(|_| BadAuthorization("mac is not base64"))?;
        let mac: [u8; 32] = mac.try_into().map_err(|_| BadAuthorization("mac is not 32 bytes"))?;
        Ok(Self { sid: sid.to_owned(), seq, mac })
    }
}

/// The anti-replay window (RFC 4303 section 3.4.3, 64 wide): each sequence number
/// is accepted at most once, and only if it is above, or within 64 of, the highest
/// accepted so far, so concurrent requests may arrive out of order.
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    /// The highest accepted, plus one (0: none yet).
    top: u64,
    /// Bit i: `top - 1 - i` was accepted.
    seen: u64,
}

impl ReplayWindow {
    /// Whether `seq` would be accepted (call only after its MAC verified, then
    /// [`accept`](Self::accept)).
    #[must_use]
    pub fn fresh(&self, seq: u64) -> bool {
        if seq >= self.top {
            return seq < u64::MAX;
        }
        let back = self.top - 1 - seq;
        back < WINDOW && self.seen & (1 << back) == 0
    }

    /// Records `seq` as accepted; `false` (and no change) when it is a replay or
    /// below the window.
    pub fn accept(&mut self, seq: u64) -> bool {
        if !self.fresh(seq) {
            return false;
        }
        if seq >= self.top {
            let shift = seq + 1 - self.top;
            self.seen = if shift >= WINDOW { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.top = seq + 1;
        } else {
            self.seen |= 1 << (self.top - 1 - seq);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SymmetricKey {
        SymmetricKey::from_bytes([b; 32])
    }

    #[test]
    fn header_round_trip_and_refusals() {
        let a = Authorization::sign("abc_DEF-123", 7, &key(1), "POST", "/x?y=1", b"body");
        let parsed = Authorization::parse(&a.to_header()).unwrap();
        assert_eq!(parsed, a);
        let quoted = format!("scram-dh sid=\"abc_DEF-123\",seq=\"7\" , mac=\"{}\"", STANDARD.encode(a.mac));
        assert_eq!(Authorization::parse(&quoted).unwrap(), a);
        let m = STANDARD.encode(a.mac);
        for bad in [
            String::new(),
            "SCRAM-DH".into(),
            format!("Basic sid=a, seq=1, mac={m}"),
            "SCRAM-DH sid=a, seq=1".into(),
            format!("SCRAM-DH sid=a, mac={m}"),
            format!("SCRAM-DH seq=1, mac={m}"),
            format!("SCRAM-DH sid=a, seq=1, seq=2, mac={m}"),
            format!("SCRAM-DH sid=a, seq=1, mac={m}, x=1"),
            format!("SCRAM-DH sid=a b, seq=1, mac={m}"),
            format!("SCRAM-DH sid=a, seq=-1, mac={m}"),
            format!("SCRAM-DH sid=a, seq=01, mac={m}"),
            format!("SCRAM-DH sid=a, seq=18446744073709551616, mac={m}"),
            "SCRAM-DH sid=a, seq=1, mac=AAAA".into(),
            "SCRAM-DH sid=a, seq=1, mac=!!".into(),
        ] {
            assert!(Authorization::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn macs_bind_every_field() {
        let k = key(2);
        let base = request_mac(&k, "POST", "/p?q", 1, b"b");
        assert_ne!(base, request_mac(&k, "GET", "/p?q", 1, b"b"));
        assert_ne!(base, request_mac(&k, "POST", "/p?r", 1, b"b"));
        assert_ne!(base, request_mac(&k, "POST", "/p?q", 2, b"b"));
        assert_ne!(base, request_mac(&k, "POST", "/p?q", 1, b"c"));
        assert_ne!(base, request_mac(&key(3), "POST", "/p?q", 1, b"b"));
        // lp() framing: moving a byte between method and path changes the MAC.
        assert_ne!(request_mac(&k, "POS", "T/p", 1, b""), request_mac(&k, "POST", "/p", 1, b""));
        let r = response_mac(&k, 200, 1, b"ok");
        assert_ne!(r, response_mac(&k, 201, 1, b"ok"));
        assert_ne!(r, response_mac(&k, 200, 2, b"ok"));
        assert!(mac_matches(&r, &encode_mac(&r)));
        assert!(!mac_matches(&r, &encode_mac(&base)));
        assert!(!mac_matches(&r, "not base64"));
    }

    #[test]
    fn window_accepts_each_seq_once_within_64() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(0));
        assert!(!w.accept(0), "replay");
        assert!(w.accept(5));
        assert!(w.accept(3), "out of order within the window");
        assert!(!w.accept(3));
        assert!(w.accept(100));
        assert!(!w.accept(36), "below the window (100 - 64)");
        assert!(w.accept(37), "the lowest seq still in the window");
        assert!(!w.accept(37));
        assert!(!w.accept(5), "fell out of the window");
        assert!(w.accept(1000));
        for s in 937..1000 {
            assert!(w.accept(s), "{s}");
        }
        for s in 936..=1000 {
            assert!(!w.accept(s), "{s}");
        }
        assert!(!w.accept(u64::MAX), "the last number is never used");
    }
}
