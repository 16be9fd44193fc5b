//! Clients behind a load balancer: which address a request's penalties and rate
//! limits count against. Only a connection from a trusted proxy
//! ([`HttpOptions::trusted_proxies`](super::HttpOptions::trusted_proxies)) has its
//! `X-Forwarded-For` believed, and of that list only the rightmost address that is
//! not itself a trusted proxy: everything left of it was written by the client.

use core::fmt;
use core::str::FromStr;
use std::net::IpAddr;

use axum::http::HeaderMap;

/// An address range, `ADDR/BITS` or a single `ADDR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    bits: u8,
}

impl IpNet {
    /// Whether `ip` is in the range (IPv4-mapped IPv6 addresses count as IPv4).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.bits)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.bits)
    }
}

impl FromStr for IpNet {
    type Err = String;

    /// `10.0.0.0/8`, `127.0.0.1` (a /32), `fd00::/8`, `::1` (a /128).
    ///
    /// ```
    /// use scram_dh_net::http::IpNet;
    ///
    /// let lb: IpNet = "10.1.0.0/16".parse().unwrap();
    /// assert!(lb.contains([10, 1, 2, 3].into()));
    /// assert!(!lb.contains([10, 2, 0, 1].into()));
    /// assert!("10.1.0.0/33".parse::<IpNet>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| format!("{addr:?} is not an IP address"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("prefix length {b:?} is not 0..={max}"))?,
        };
        Ok(Self { addr, bits })
    }
}

/// The address a request comes from: `peer` itself, unless `peer` is a trusted
/// proxy; then the rightmost `X-Forwarded-For` entry that is not one (or `peer`
/// when every entry is, or there is none).
///
/// # Errors
/// A trusted proxy sent an `X-Forwarded-For` that is not a list of IP addresses.
pub(crate) fn client_ip(
    trusted: &[IpNet],
    peer: IpAddr,
    headers: &HeaderMap,
) -> Result<IpAddr, &'static str> {
    let peer = peer.to_canonical();
    if !trusted.iter().any(|t| t.contains(peer)) {
        return Ok(peer);
    }
    let mut entries = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let text = value.to_str().map_err(|_| "X-Forwarded-For is not ASCII")?;
        entries.extend(text.split(',').map(str::trim));
    }
    for entry in entries.iter().rev() {
        let ip: IpAddr =
            entry.parse().map_err(|_| "X-Forwarded-For holds something other than an IP address")?;
        let ip = ip.to_canonical();
        if !trusted.iter().any(|t| t.contains(ip)) {
            return Ok(ip);
        }
    }
    Ok(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges() {
        let n: IpNet = "192.168.0.0/16".parse().unwrap();
        assert!(n.contains(ip("192.168.255.1")) && !n.contains(ip("192.169.0.1")));
        assert!(n.contains(ip("::ffff:192.168.1.1")), "mapped v4");
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("1.2.3.4")) && !all.contains(ip("::1")));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert_eq!("::1".parse::<IpNet>().unwrap().to_string(), "::1/128");
        for bad in ["", "10.0.0.0/", "10.0.0.0/x", "::/129", "host/8", "10.0.0.1/32/1"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_a_trusted_proxy_is_believed_and_only_for_its_own_entry() {
        let trusted: Vec<IpNet> = vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/24".parse().unwrap()];
        // Straight from a client: its header is ignored.
        assert_eq!(client_ip(&trusted, ip("203.0.113.9"), &headers(&["10.9.9.9"])), Ok(ip("203.0.113.9")));
        // Through nginx: the entry it wrote.
        assert_eq!(client_ip(&trusted, ip("127.0.0.1"), &headers(&["198.51.100.7"])), Ok(ip("198.51.100.7")));
        // A client's own entry on the left is skipped, and so are trusted hops.
        assert_eq!(
            client_ip(&trusted, ip("127.0.0.1"), &headers(&["1.1.1.1, 198.51.100.7", "10.0.0.5"])),
            Ok(ip("198.51.100.7"))
        );
        // No header, or only proxies: the connection's own address.
        assert_eq!(client_ip(&trusted, ip("127.0.0.1"), &headers(&[])), Ok(ip("127.0.0.1")));
        assert_eq!(client_ip(&trusted, ip("127.0.0.1"), &headers(&["10.0.0.1"])), Ok(ip("127.0.0.1")));
        // Garbage from a trusted proxy is refused, not guessed at.
        assert!(client_ip(&trusted, ip("127.0.0.1"), &headers(&["1.1.1.1, unknown"])).is_err());
        // Nothing trusted: never read.
        assert_eq!(client_ip(&[], ip("127.0.0.1"), &headers(&["garbage"])), Ok(ip("127.0.0.1")));
    }
}
