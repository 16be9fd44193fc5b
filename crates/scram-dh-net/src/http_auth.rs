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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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

    /// The window as 16 bytes, the highest accepted plus one and then the bitmap
    /// of the 64 below it, each a u64 big-endian: what an
    /// [`HttpSessionStore`](scram_dh::cluster::HttpSessionStore) holds and
    /// compares byte for byte.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.top.to_be_bytes());
        out[8..].copy_from_slice(&self.seen.to_be_bytes());
        out
    }

    /// The window [`to_bytes`](Self::to_bytes) wrote. Any 16 bytes are a window
    /// (bits for numbers below 0 are never read), so this cannot fail.
    #[must_use]
    pub fn from_bytes(bytes: &[u8; 16]) -> Self {
        let (top, seen) = bytes.split_at(8);
        let word = |b: &[u8]| {
            let mut w = [0u8; 8];
            w.copy_from_slice(b);
            u64::from_be_bytes(w)
        };
        Self { top: word(top), seen: word(seen) }
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

/// The RFC 7804 scheme name (SCRAM-SHA-256 over HTTP, SPEC 7).
pub const RFC7804_SCHEME: &str = "SCRAM-SHA-256";
/// The realm the server names in its challenges.
pub const REALM: &str = "scram-dh";
/// The response header carrying the RFC 7804 server-final-message.
pub const AUTHENTICATION_INFO: &str = "Authentication-Info";
/// The longest `Authorization`, `WWW-Authenticate` or `Authentication-Info` value
/// read for RFC 7804 (a client-final-message for a 255-byte name is < 1 KiB).
pub const MAX_RFC7804_HEADER: usize = 4096;

/// One challenge (`WWW-Authenticate`) or the credentials (`Authorization`) of
/// RFC 7235 section 2.1: a scheme and its auth-params, names lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme as sent (compare with [`str::eq_ignore_ascii_case`]).
    pub scheme: String,
    /// `(lowercased name, value)` in order; quoted values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `name` (lowercase), if present.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Whether the scheme is `scheme`, case-insensitively (RFC 7235 section 2.1).
    #[must_use]
    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }
}

/// A header that does not follow RFC 7235's auth-param syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed authentication header: {0}")]
pub struct BadAuthHeader(pub &'static str);

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> &'a str {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        // tchar is ASCII, so the slice is UTF-8.
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default()
    }
    /// A quoted-string (RFC 9110 section 5.6.4) or, as RFC 7804's examples and
    /// its clients send base64 (erratum 6558), any run of visible characters other
    /// than `,` and `"`.
    fn value(&mut self) -> Result<String, BadAuthHeader> {
        if self.peek() == Some(b'"') {
            self.i += 1;
            let mut out = Vec::new();
            loop {
                match self.peek() {
                    None => return Err(BadAuthHeader("unterminated quoted string")),
                    Some(b'"') => {
                        self.i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        self.i += 1;
                        out.push(self.peek().ok_or(BadAuthHeader("unterminated quoted string"))?);
                        self.i += 1;
                    }
                    Some(b) => {
                        out.push(b);
                        self.i += 1;
                    }
                }
            }
            return String::from_utf8(out).map_err(|_| BadAuthHeader("quoted string is not UTF-8"));
        }
        let start = self.i;
        while self.peek().is_some_and(|b| b.is_ascii_graphic() && b != b',' && b != b'"') {
            self.i += 1;
        }
        if start == self.i {
            return Err(BadAuthHeader("a parameter without a value"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
}

/// Parses a `WWW-Authenticate` value (several fields joined with `, ` are one
/// list, RFC 9110 section 5.3) into its challenges. Parameter names are
/// lowercased; `token68` forms of other schemes are kept as a parameter with an
/// empty name.
///
/// ```
/// use scram_dh_net::http_auth::parse_challenges;
///
/// let c = parse_challenges(r#"SCRAM-DH realm="scram-dh", scram-sha-256 Realm="scram-dh", sid=ab, data=biws"#).unwrap();
/// assert_eq!(c.len(), 2);
/// assert!(c[1].is("SCRAM-SHA-256"));
/// assert_eq!((c[1].param("realm"), c[1].param("data")), (Some("scram-dh"), Some("biws")));
/// ```
///
/// # Errors
/// [`BadAuthHeader`] for a parameter before any scheme, a parameter without a
/// value, an unterminated quoted string, or a value over [`MAX_RFC7804_HEADER`].
pub fn parse_challenges(value: &str) -> Result<Vec<Challenge>, BadAuthHeader> {
    if value.len() > MAX_RFC7804_HEADER {
        return Err(BadAuthHeader("header too long"));
    }
    let mut c = Cursor { s: value.trim().as_bytes(), i: 0 };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        c.skip_ws_and_commas();
        if c.peek().is_none() {
            break;
        }
        let token = c.token();
        if token.is_empty() {
            return Err(BadAuthHeader("expected a scheme or a parameter name"));
        }
        let before = c.i;
        c.skip_ws();
        if c.peek() == Some(b'=') {
            let current = out.last_mut().ok_or(BadAuthHeader("a parameter before any scheme"))?;
            c.i += 1;
            // token68 (`Negotiate abc==`): only '=' up to the end of the element.
            let rest = &c.s[c.i..];
            let pad = rest.iter().take_while(|b| **b == b'=').count();
            let after = rest.get(pad..).map(|r| r.iter().find(|b| **b != b' ' && **b != b'\t').copied());
            if matches!(after, Some(None | Some(b','))) && (pad > 0 || current.params.is_empty()) {
                c.i += pad;
                current.params.push((String::new(), format!("{token}={}", "=".repeat(pad))));
                continue;
            }
            c.skip_ws();
            let v = c.value()?;
            current.params.push((token.to_ascii_lowercase(), v));
        } else {
            c.i = before;
            out.push(Challenge { scheme: token.to_owned(), params: Vec::new() });
            c.skip_ws();
        }
        c.skip_ws();
        match c.peek() {
            None | Some(b',') => {}
            // `scheme param=…`: the first parameter follows the scheme after a space.
            Some(_) if out.last().is_some_and(|l| l.params.is_empty()) && c.s[c.i - 1] == b' ' => {}
            Some(_) => return Err(BadAuthHeader("expected ',' between parameters")),
        }
    }
    Ok(out)
}

/// Parses `Authorization` credentials: exactly one scheme and its parameters,
/// each name at most once.
///
/// # Errors
/// As [`parse_challenges`], and for no scheme, several schemes, or a repeated
/// parameter.
pub fn parse_credentials(value: &str) -> Result<Challenge, BadAuthHeader> {
    let mut all = parse_challenges(value)?;
    if all.len() != 1 {
        return Err(BadAuthHeader(if all.is_empty() { "no scheme" } else { "more than one scheme" }));
    }
    let one = all.remove(0);
    for (i, (k, _)) in one.params.iter().enumerate() {
        if one.params[..i].iter().any(|(j, _)| j == k) {
            return Err(BadAuthHeader("a repeated parameter"));
        }
    }
    Ok(one)
}

/// Parses an `Authentication-Info` value (RFC 9110 section 11.6.3: parameters, no
/// scheme), each name at most once.
///
/// # Errors
/// As [`parse_credentials`].
pub fn parse_auth_info(value: &str) -> Result<Vec<(String, String)>, BadAuthHeader> {
    let mut c = parse_credentials(&format!("x {value}"))?;
    Ok(std::mem::take(&mut c.params))
}

/// base64 of RFC 7804's `data`: standard alphabet, padding optional on input.
pub(crate) const DATA_B64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Decodes a `data` parameter into the RFC 5802 message it carries: base64
/// (padded or not), UTF-8, with trailing whitespace and line breaks dropped (the
/// RFC's own examples end their messages with a newline; RFC 5802 messages never
/// end in whitespace).
///
/// # Errors
/// [`BadAuthHeader`] when it is not base64 or not UTF-8.
pub fn decode_data(data: &str) -> Result<String, BadAuthHeader> {
    use base64::Engine as _;
    let bytes = DATA_B64.decode(data.trim()).map_err(|_| BadAuthHeader("data is not base64"))?;
    let text = String::from_utf8(bytes).map_err(|_| BadAuthHeader("data is not UTF-8"))?;
    Ok(text.trim_end_matches([' ', '\t', '\r', '\n']).to_owned())
}

/// Encodes an RFC 5802 message as a `data` value (padded base64).
#[must_use]
pub fn encode_data(message: &str) -> String {
    STANDARD.encode(message.as_bytes())
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
    fn rfc7804_auth_params() {
        // RFC 7804 section 5's exchange, and what gel and requests-scram send.
        let c = parse_credentials(
            "SCRAM-SHA-256 realm=\"testrealm@host.com\", data=biwsbj11c2VyLHI9ck9wck5HZndFYmVSV2diTkVrcU8K",
        )
        .unwrap();
        assert!(c.is(RFC7804_SCHEME));
        assert_eq!(c.param("realm"), Some("testrealm@host.com"));
        assert_eq!(decode_data(c.param("data").unwrap()).unwrap(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let c = parse_credentials("scram-sha-256 SID=AAAA, Data=\"Yz1i\"  ").unwrap();
        assert_eq!((c.param("sid"), c.param("data")), (Some("AAAA"), Some("Yz1i")));
        let c = parse_credentials("SCRAM-SHA-256 data=bj1h==").unwrap();
        assert_eq!(c.param("data"), Some("bj1h=="));
        let c = parse_credentials("SCRAM-SHA-256 data = \"a\\\"b\" , x=1").unwrap();
        assert_eq!((c.param("data"), c.param("x")), (Some("a\"b"), Some("1")));
        assert_eq!(
            parse_auth_info("sid=AAAA, data=dj1h").unwrap(),
            vec![("sid".to_owned(), "AAAA".to_owned()), ("data".to_owned(), "dj1h".to_owned())]
        );
        let list =
            parse_challenges("Negotiate abc==, Basic realm=\"x\", SCRAM-SHA-256 sid=1, data=2, Bearer")
                .unwrap();
        let schemes: Vec<&str> = list.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["Negotiate", "Basic", "SCRAM-SHA-256", "Bearer"]);
        assert_eq!(list[2].param("data"), Some("2"));
        assert_eq!(decode_data("bj1h").unwrap(), "n=a", "unpadded");
        assert_eq!(decode_data("bj1hCg==").unwrap(), "n=a", "trailing newline");
        assert_eq!(decode_data(&encode_data("x,y")).unwrap(), "x,y");
        for bad in [
            "",
            "sid=1",
            "SCRAM-SHA-256 data=\"unterminated",
            "SCRAM-SHA-256 data=a b",
            "SCRAM-SHA-256 data=1, data=2",
            "SCRAM-SHA-256 data=1, Basic",
            "SCRAM-SHA-256 =1",
        ] {
            assert!(parse_credentials(bad).is_err(), "{bad:?}");
        }
        assert!(
            parse_credentials(&format!("SCRAM-SHA-256 data={}", "a".repeat(MAX_RFC7804_HEADER))).is_err()
        );
        // `data=` with nothing after it is a token68, not a data parameter.
        assert_eq!(parse_credentials("SCRAM-SHA-256 data=").unwrap().param("data"), None);
        assert!(decode_data("!!").is_err());
        assert!(decode_data("/w==").is_err(), "not UTF-8");
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

    #[test]
    fn window_bytes_round_trip() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.to_bytes(), [0; 16]);
        for seq in [3, 1, 70, 68] {
            assert!(w.accept(seq));
        }
        let bytes = w.to_bytes();
        assert_eq!(&bytes[..8], &71u64.to_be_bytes(), "top first, big-endian");
        let mut back = ReplayWindow::from_bytes(&bytes);
        assert_eq!(back, w);
        assert!(!back.accept(70) && !back.accept(68), "seen bits survive");
        assert!(back.accept(69) && back.accept(7));
        assert!(!back.accept(3), "fell out of the window");
        assert_eq!(ReplayWindow::from_bytes(&[0xff; 16]).to_bytes(), [0xff; 16]);
    }
}
