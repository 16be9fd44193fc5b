//! Test support shared by the workspace's test suites (a dev-dependency only).
//!
//! [`free_port`] hands out a loopback port for a server the test starts itself
//! and may restart on the same port: PostgreSQL, Redis, nginx, `scram-dh serve`.
//!
//! The usual trick, bind port 0 and close the listener, races: between that
//! close and the server's own bind, the kernel may give the same port to any
//! other `bind(0)` or to the local end of an outgoing connection, and the
//! server then fails with "Address already in use". CI saw exactly that when a
//! test of one cluster ran beside the others. So the port here comes from
//! outside the kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`),
//! where the kernel never picks one by itself, and each port handed out is
//! reserved for [`RESERVATION_TTL`] by a file created with `O_EXCL` in
//! [`reservation_dir`], so that two tests (in one process or in several) never
//! get the same one. `scripts/cluster.sh` follows the same protocol, in Python,
//! with the same directory.
//!
//! ```
//! let a = scram_dh_testkit::free_port();
//! let b = scram_dh_testkit::free_port();
//! assert_ne!(a, b);
//! std::net::TcpListener::bind(("127.0.0.1", a)).expect("the port is free");
//! ```
#![forbid(unsafe_code)]

use std::collections::hash_map::RandomState;
use std::fs::OpenOptions;
use std::hash::{BuildHasher, Hasher};
use std::io::{ErrorKind, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long a handed-out port stays reserved: longer than any test holds one.
pub const RESERVATION_TTL: Duration = Duration::from_secs(30 * 60);

/// The lowest port handed out (below it sit well-known services: 3306, 5432, 6379, 8080).
const LOWEST: u16 = 10_000;

/// The directory of port reservations: `$TMPDIR/scram-dh-test-ports`.
pub fn reservation_dir() -> PathBuf {
    std::env::temp_dir().join("scram-dh-test-ports")
}

/// The kernel's ephemeral range, inclusive (Linux's default when it cannot be read).
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32_768, 60_999))
}

/// The ports outside the ephemeral range, from [`LOWEST`] up.
fn candidates() -> Vec<u16> {
    let (lo, hi) = ephemeral_range();
    (LOWEST..=u16::MAX).filter(|p| !(lo..=hi).contains(p)).collect()
}

/// Whether [`reserve`] got the port.
#[derive(Debug, PartialEq, Eq)]
enum Reservation {
    /// The reservation file was created (or a stale one replaced).
    Made,
    /// Another caller holds it: pick another port.
    Held,
    /// The directory cannot be used (not writable, say): the port is taken
    /// unreserved, still from outside the ephemeral range.
    Unusable,
}

/// Reserves `port` for this caller in [`reservation_dir`].
fn reserve(port: u16) -> Reservation {
    reserve_in(&reservation_dir(), port)
}

fn reserve_in(dir: &Path, port: u16) -> Reservation {
    let path = dir.join(port.to_string());
    for _ in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                // Who took it, for a person looking at the directory.
                let _ = writeln!(f, "{}", std::process::id());
                return Reservation::Made;
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let age = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok());
                match age {
                    // Stale: take it over (one retry; a racing caller may win it).
                    Some(age) if age > RESERVATION_TTL => {
                        let _ = std::fs::remove_file(&path);
                    }
                    _ => return Reservation::Held,
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if std::fs::create_dir_all(dir).is_err() {
                    return Reservation::Unusable;
                }
                // Shared by every user's tests, as /tmp is: sticky and world-writable.
                let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777));
            }
            Err(_) => return Reservation::Unusable,
        }
    }
    // A stale file that another caller took over between the two tries.
    Reservation::Held
}

/// A loopback port nothing listens on, for a server the test starts (and may
/// restart) on it; see the crate docs for why not port 0.
///
/// When the reservation directory cannot be used, the port is still one from
/// outside the ephemeral range, unreserved. Falls back to the kernel's pick (bind
/// port 0) only when that range leaves no port above [`LOWEST`], or 256 picks in
/// a row were held or bound.
///
/// # Panics
/// When even port 0 cannot be bound on 127.0.0.1: no loopback, no test.
pub fn free_port() -> u16 {
    let ports = candidates();
    if !ports.is_empty() {
        let mut rng = RandomState::new().build_hasher();
        for attempt in 0..256u32 {
            rng.write_u32(attempt);
            let port = ports[(rng.finish() % ports.len() as u64) as usize];
            if reserve(port) != Reservation::Held && TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    #[allow(clippy::expect_used)]
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind a loopback port")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_outside_the_ephemeral_range_and_never_handed_out_twice() {
        let (lo, hi) = ephemeral_range();
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "a port handed out twice: {ports:?}");
        for &p in &ports {
            assert!(p >= LOWEST && !(lo..=hi).contains(&p), "{p} is in the ephemeral range {lo}-{hi}");
            assert!(reservation_dir().join(p.to_string()).is_file(), "{p} not reserved");
        }
    }

    #[test]
    fn a_held_reservation_is_refused_and_a_stale_one_taken_over() {
        let port = free_port();
        assert_eq!(reserve(port), Reservation::Held, "reserved twice");
        let path = reservation_dir().join(port.to_string());
        let old = SystemTime::now() - RESERVATION_TTL - Duration::from_secs(60);
        std::fs::File::options().write(true).open(&path).and_then(|f| f.set_modified(old)).unwrap();
        assert_eq!(reserve(port), Reservation::Made, "a stale reservation was not taken over");
        assert_eq!(reserve(port), Reservation::Held);
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_unusable_not_held() {
        // A regular file where the directory should be: create_dir_all fails.
        let file = std::env::temp_dir().join(format!("scram-dh-testkit-not-a-dir-{}", std::process::id()));
        std::fs::write(&file, b"").unwrap();
        let got = reserve_in(&file.join("ports"), 20_000);
        std::fs::remove_file(&file).unwrap();
        assert_eq!(got, Reservation::Unusable);
    }

    #[test]
    fn the_candidates_leave_out_the_ephemeral_range() {
        let (lo, hi) = ephemeral_range();
        let ports = candidates();
        assert!(!ports.is_empty());
        for p in ports {
            assert!(p >= LOWEST && !(lo..=hi).contains(&p), "{p} is in {lo}-{hi}");
        }
    }
}
