//! The example service the server binary ships: a small per-user key-value store
//! over the encrypted channel, every reply naming the authenticated user, plus
//! `passwd`, the only way a record is ever replaced.
//!
//! Requests and replies are JSON objects, one per channel record:
//! `{"cmd":"set","args":["color","blue"]}` →
//! `{"ok":true,"user":"alice","result":"OK"}`.

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::CryptoRng;
use scram_dh::credential::{ClientKeys, salted_password};
use scram_dh::{ClientCredential, CredentialStore, MIN_ITERATIONS, Password};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::debug;

use crate::log::{Escaped, escaped};

use crate::passwd::{PasswdBounds, PasswdRequest, replace_credential};
use crate::server::{ServerChannel, Service};

/// A request on the channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Command name.
    pub cmd: String,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
}

/// A reply on the channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// Whether the command succeeded.
    pub ok: bool,
    /// The authenticated user the server served.
    pub user: String,
    /// The result, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// The error, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Bounds of the example service (finding M7): what one user may store, what
/// all users together may store, and what `passwd` accepts.
#[derive(Debug, Clone)]
pub struct KvLimits {
    /// Longest key, bytes.
    pub max_key: usize,
    /// Longest value, bytes.
    pub max_value: usize,
    /// Keys per user.
    pub max_entries_per_user: usize,
    /// Bytes of keys and values, all users together.
    pub max_total_bytes: usize,
    /// Salt lengths `passwd` accepts, bytes.
    pub passwd_salt_len: RangeInclusive<usize>,
    /// Iteration counts `passwd` accepts: the server's bounds (`ServerConfig::max_ic`),
    /// so that unknown users' mock replies can look like any record (finding M6).
    pub passwd_ic: RangeInclusive<u32>,
}

impl Default for KvLimits {
    fn default() -> Self {
        Self {
            max_key: 128,
            max_value: 1024,
            max_entries_per_user: 128,
            max_total_bytes: 64 << 20,
            passwd_salt_len: scram_dh::config::SALT_LEN_RANGE,
            passwd_ic: MIN_ITERATIONS..=scram_dh::config::DEFAULT_MAX_IC,
        }
    }
}

#[derive(Debug, Default)]
struct Data {
    users: HashMap<String, BTreeMap<String, String>>,
    bytes: usize,
}

/// The key-value example service.
#[derive(Debug)]
pub struct KvService<C> {
    credentials: Arc<C>,
    limits: KvLimits,
    data: Mutex<Data>,
}

impl<C: CredentialStore + 'static> KvService<C> {
    /// A service that replaces records in `credentials` on `passwd`, with default bounds.
    pub fn new(credentials: Arc<C>) -> Self {
        Self::with_limits(credentials, KvLimits::default())
    }

    /// A service with these bounds.
    pub fn with_limits(credentials: Arc<C>, limits: KvLimits) -> Self {
        Self { credentials, limits, data: Mutex::new(Data::default()) }
    }

    async fn execute(&self, user: &str, req: Request) -> Result<String, String> {
        let arity = |n: usize| {
            if req.args.len() == n { Ok(()) } else { Err(format!("{} takes {n} argument(s)", req.cmd)) }
        };
        match req.cmd.as_str() {
            "whoami" => {
                arity(0)?;
                Ok(user.to_owned())
            }
            "echo" => Ok(req.args.join(" ")),
            "set" => {
                arity(2)?;
                let (key, value) = (&req.args[0], &req.args[1]);
                let l = &self.limits;
                if key.is_empty() || key.len() > l.max_key {
                    return Err(format!("key must be 1 to {} bytes", l.max_key));
                }
                if value.len() > l.max_value {
                    return Err(format!("value longer than {} bytes", l.max_value));
                }
                let mut data = self.data.lock().map_err(|_| "internal error".to_owned())?;
                let old = data.users.get(user).and_then(|m| m.get(key)).map(|v| key.len() + v.len());
                let entries = data.users.get(user).map_or(0, BTreeMap::len);
                if old.is_none() && entries >= l.max_entries_per_user {
                    return Err(format!("too many keys (at most {})", l.max_entries_per_user));
                }
                let bytes = data.bytes - old.unwrap_or(0) + key.len() + value.len();
                if bytes > l.max_total_bytes {
                    return Err("the service's storage is full".into());
                }
                data.bytes = bytes;
                data.users.entry(user.to_owned()).or_default().insert(key.clone(), value.clone());
                Ok("OK".into())
            }
            "get" => {
                arity(1)?;
                let data = self.data.lock().map_err(|_| "internal error".to_owned())?;
                data.users
                    .get(user)
                    .and_then(|m| m.get(&req.args[0]))
                    .cloned()
                    .ok_or_else(|| "no such key".into())
            }
            "del" => {
                arity(1)?;
                let mut data = self.data.lock().map_err(|_| "internal error".to_owned())?;
                match data.users.get_mut(user).and_then(|m| m.remove_entry(&req.args[0])) {
                    Some((k, v)) => {
                        data.bytes -= k.len() + v.len();
                        if data.users.get(user).is_some_and(BTreeMap::is_empty) {
                            data.users.remove(user);
                        }
                        Ok("OK".into())
                    }
                    None => Err("no such key".into()),
                }
            }
            "keys" => {
                arity(0)?;
                let data = self.data.lock().map_err(|_| "internal error".to_owned())?;
                Ok(data
                    .users
                    .get(user)
                    .map(|m| m.keys().cloned().collect::<Vec<_>>().join(" "))
                    .unwrap_or_default())
            }
            "passwd" => {
                arity(5)?;
                let request = passwd_args(&req.args)?;
                match replace_credential(&*self.credentials, user, &request, &self.limits.passwd_bounds())
                    .await
                {
                    Ok(()) => Ok("credential replaced".into()),
                    Err(e) => Err(e.to_string()),
                }
            }
            other => Err(format!("unknown command: {other} (try whoami, echo, set, get, del, keys, passwd)")),
        }
    }
}

/// The channel command's five arguments as a [`PasswdRequest`].
fn passwd_args(args: &[String]) -> Result<PasswdRequest, String> {
    let ic: u32 = args[1].parse().map_err(|_| "ic is not a number")?;
    Ok(PasswdRequest {
        salt: args[0].clone(),
        ic,
        stored_key: args[2].clone(),
        server_key: args[3].clone(),
        labels: args[4].clone(),
    })
}

impl KvLimits {
    /// The bounds `passwd` applies.
    #[must_use]
    pub fn passwd_bounds(&self) -> PasswdBounds {
        PasswdBounds { salt_len: self.passwd_salt_len.clone(), ic: self.passwd_ic.clone() }
    }
}

/// Builds a `passwd` request for a new password, computed entirely on the client:
/// the server receives the new StoredKey and ServerKey, never the password nor
/// the salted password. Returns the request and the credential to save once the
/// server confirms.
///
/// # Errors
/// Not today: a password that fails SASLprep is used as its raw bytes (README
/// protocol note 22); the `Result` leaves room for key-derivation failures.
pub fn passwd_request<R: CryptoRng + ?Sized>(
    rng: &mut R,
    current: &ClientCredential,
    new_password: &Password,
) -> Result<(Request, ClientCredential), scram_dh::Error> {
    let (body, updated) = passwd_body(rng, current, new_password)?;
    let request = Request {
        cmd: "passwd".into(),
        args: vec![body.salt, body.ic.to_string(), body.stored_key, body.server_key, body.labels],
    };
    Ok((request, updated))
}

/// [`passwd_request`] for the HTTP front: the body of `POST /v1/passwd`
/// (serialise it with `serde_json`) and the credential to save once the server
/// confirms.
///
/// # Errors
/// Not today: a password that fails SASLprep is used as its raw bytes (README
/// protocol note 22); the `Result` leaves room for key-derivation failures.
pub fn passwd_body<R: CryptoRng + ?Sized>(
    rng: &mut R,
    current: &ClientCredential,
    new_password: &Password,
) -> Result<(PasswdRequest, ClientCredential), scram_dh::Error> {
    let mut salt = [0u8; 32];
    rng.fill_bytes(&mut salt);
    let ic = current.ic.max(MIN_ITERATIONS);
    let salted = salted_password(new_password, &salt, ic)?;
    let keys = ClientKeys::generate(rng, &salted, current.labels);
    let request = PasswdRequest {
        salt: STANDARD.encode(salt),
        ic,
        stored_key: STANDARD.encode(keys.stored_key().expose()),
        server_key: STANDARD.encode(keys.server_key.expose()),
        labels: current.labels.as_str().into(),
    };
    let mut updated = current.clone();
    updated.salt = salt.to_vec();
    updated.ic = ic;
    updated.client_key = keys.client_key;
    updated.server_key = keys.server_key;
    updated.password = None;
    Ok((request, updated))
}

impl<C: CredentialStore + 'static> Service for KvService<C> {
    async fn serve(&self, mut channel: ServerChannel, mut shutdown: watch::Receiver<bool>) {
        let user = channel.username().to_owned();
        loop {
            let msg = tokio::select! {
                m = channel.recv() => m,
                _ = shutdown.changed() => {
                    // Server shutdown or idle timeout: end the stream properly.
                    let _ = channel.close().await;
                    return;
                }
            };
            let msg = match msg {
                Ok(Some(m)) => m,
                Ok(None) => {
                    let _ = channel.close().await;
                    return;
                }
                Err(e) => {
                    debug!(username = %Escaped(&user), error = %escaped(&e), "channel ended");
                    return;
                }
            };
            let reply = match serde_json::from_slice::<Request>(&msg) {
                Ok(req) => match self.execute(&user, req).await {
                    Ok(result) => Reply { ok: true, user: user.clone(), result: Some(result), error: None },
                    Err(error) => Reply { ok: false, user: user.clone(), result: None, error: Some(error) },
                },
                Err(_) => Reply {
                    ok: false,
                    user: user.clone(),
                    result: None,
                    error: Some("request must be {\"cmd\":...,\"args\":[...]}".into()),
                },
            };
            let Ok(bytes) = serde_json::to_vec(&reply) else { return };
            if channel.send(&bytes).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scram_dh::MemoryCredentialStore;

    fn kv(limits: KvLimits) -> KvService<MemoryCredentialStore> {
        KvService::with_limits(Arc::new(MemoryCredentialStore::default()), limits)
    }

    fn req(cmd: &str, args: &[&str]) -> Request {
        Request { cmd: cmd.into(), args: args.iter().map(|s| (*s).to_owned()).collect() }
    }

    // M7: keys, values and entries per user are bounded, and so is the total.
    #[tokio::test]
    async fn m7_storage_is_bounded() {
        let s = kv(KvLimits {
            max_key: 8,
            max_value: 16,
            max_entries_per_user: 3,
            max_total_bytes: 60,
            ..KvLimits::default()
        });
        assert!(s.execute("a", req("set", &["k1", "v"])).await.is_ok());
        assert!(s.execute("a", req("set", &["123456789", "v"])).await.unwrap_err().contains("key"));
        assert!(s.execute("a", req("set", &["", "v"])).await.is_err(), "empty key");
        assert!(s.execute("a", req("set", &["k2", &"x".repeat(17)])).await.unwrap_err().contains("value"));
        s.execute("a", req("set", &["k2", "v"])).await.unwrap();
        s.execute("a", req("set", &["k3", "v"])).await.unwrap();
        assert!(s.execute("a", req("set", &["k4", "v"])).await.unwrap_err().contains("too many keys"));
        // Overwriting an existing key is not a new entry.
        s.execute("a", req("set", &["k3", "w"])).await.unwrap();
        // The total across users: 3 * 3 bytes used by a; b may add until 60.
        s.execute("b", req("set", &["k1", &"y".repeat(16)])).await.unwrap();
        s.execute("b", req("set", &["k2", &"y".repeat(16)])).await.unwrap();
        assert!(s.execute("b", req("set", &["k3", &"y".repeat(16)])).await.unwrap_err().contains("full"));
        // Deleting gives the bytes back.
        s.execute("b", req("del", &["k1"])).await.unwrap();
        s.execute("b", req("set", &["k3", &"y".repeat(16)])).await.unwrap();
        let d = s.data.lock().unwrap();
        assert_eq!(
            d.bytes,
            d.users.values().flat_map(|m| m.iter()).map(|(k, v)| k.len() + v.len()).sum::<usize>()
        );
    }

    // M6: passwd takes only record shapes a mock reply can imitate.
    #[tokio::test]
    async fn m6_passwd_bounds_salt_and_ic() {
        let s = kv(KvLimits { passwd_ic: MIN_ITERATIONS..=10_000, ..KvLimits::default() });
        let key = STANDARD.encode([1u8; 32]);
        let args = |salt: usize, ic: u32| {
            vec![
                STANDARD.encode(vec![7u8; salt]),
                ic.to_string(),
                key.clone(),
                key.clone(),
                "random".to_owned(),
            ]
        };
        for (salt, ic, want) in [(15, 4096, "salt"), (65, 4096, "salt"), (32, 4095, "ic"), (32, 10_001, "ic")]
        {
            let e =
                passwd_args(&args(salt, ic)).unwrap().to_record("u", &s.limits.passwd_bounds()).unwrap_err();
            assert!(e.to_string().contains(want), "{salt} {ic}: {e}");
        }
        for (salt, ic) in [(16, 4096), (64, 10_000), (32, 8192)] {
            passwd_args(&args(salt, ic)).unwrap().to_record("u", &s.limits.passwd_bounds()).unwrap();
        }
    }
}
