//! The encrypted channel after an authentication with a channel (SPEC 7):
//! records `u32 big-endian length || ChaCha20-Poly1305(k_dir, n(seq), aad empty,
//! plaintext)`, plaintext at most 16384 bytes, `seq` from 0 per direction. Any
//! failure closes the channel for good.

use scram_dh::SessionKeys;
use scram_dh::crypto::{open, seal};
use scram_dh::secret::SymmetricKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

use crate::error::NetError;

/// The largest plaintext one record carries.
pub const MAX_RECORD_PLAINTEXT: usize = 16384;
const TAG: usize = 16;

/// Appends one record, `u32 BE length || AEAD(key, n(seq), aad empty, plaintext)`, to
/// `out`. The caller keeps `plaintext` within [`MAX_RECORD_PLAINTEXT`]. The one
/// definition of the record format, shared by [`SecureChannel`] and
/// [`SecureStream`](crate::stream::SecureStream).
pub(crate) fn push_record(out: &mut Vec<u8>, key: &SymmetricKey, seq: u64, plaintext: &[u8]) {
    let sealed = seal(key, seq, b"", plaintext);
    // At most 16384 + 16 bytes: always fits the u32 length prefix.
    let len = u32::try_from(sealed.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&sealed);
}

/// Whether a record's length prefix is within SPEC 7's bounds (tag only up to a full record).
pub(crate) fn record_len_ok(len: usize) -> bool {
    (TAG..=MAX_RECORD_PLAINTEXT + TAG).contains(&len)
}

/// Which end of the channel this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sends with `k_c2s`, receives with `k_s2c`.
    Client,
    /// Sends with `k_s2c`, receives with `k_c2s`.
    Server,
}

/// An authenticated, encrypted, message-oriented connection.
pub struct SecureChannel<S> {
    io: S,
    username: String,
    send_key: SymmetricKey,
    recv_key: SymmetricKey,
    send_seq: u64,
    recv_seq: u64,
    broken: bool,
}

impl<S> core::fmt::Debug for SecureChannel<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SecureChannel")
            .field("username", &self.username)
            .field("send_seq", &self.send_seq)
            .field("recv_seq", &self.recv_seq)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> SecureChannel<S> {
    /// Wraps `io` with the keys from an authentication.
    pub fn new(io: S, username: String, keys: SessionKeys, role: Role) -> Self {
        let SessionKeys { c2s, s2c } = keys;
        let (send_key, recv_key) = match role {
            Role::Client => (c2s, s2c),
            Role::Server => (s2c, c2s),
        };
        Self { io, username, send_key, recv_key, send_seq: 0, recv_seq: 0, broken: false }
    }

    /// The authenticated username (the peer's, on the server; one's own, on the client).
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    fn check(&self) -> Result<(), NetError> {
        if self.broken { Err(NetError::Channel("channel closed after an earlier failure")) } else { Ok(()) }
    }

    /// Sends one message as one or more records (16 KiB of plaintext each).
    ///
    /// # Errors
    /// [`NetError::Io`] or [`NetError::Channel`].
    pub async fn send(&mut self, message: &[u8]) -> Result<(), NetError> {
        self.check()?;
        if message.len() > MAX_RECORD_PLAINTEXT {
            self.broken = true;
            return Err(NetError::Channel("message larger than one record (16384 bytes)"));
        }
        let mut frame = Vec::with_capacity(4 + message.len() + TAG);
        push_record(&mut frame, &self.send_key, self.send_seq, message);
        self.send_seq = self.send_seq.checked_add(1).ok_or(NetError::Channel("sequence exhausted"))?;
        let res = async {
            self.io.write_all(&frame).await?;
            self.io.flush().await
        }
        .await;
        if res.is_err() {
            self.broken = true;
        }
        Ok(res?)
    }

    /// Receives one record. `Ok(None)` at a clean end of stream between records.
    ///
    /// # Errors
    /// [`NetError::Channel`] for a record that is oversized, undersized, replayed,
    /// reordered or tampered with (the channel is then unusable);
    /// [`NetError::Io`] / [`NetError::Closed`].
    pub async fn recv(&mut self) -> Result<Option<Zeroizing<Vec<u8>>>, NetError> {
        self.check()?;
        let res = self.recv_inner().await;
        if res.is_err() {
            self.broken = true;
        }
        res
    }

    async fn recv_inner(&mut self) -> Result<Option<Zeroizing<Vec<u8>>>, NetError> {
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            let n = self.io.read(&mut len[got..]).await?;
            if n == 0 {
                return if got == 0 { Ok(None) } else { Err(NetError::Closed) };
            }
            got += n;
        }
        let len = usize::try_from(u32::from_be_bytes(len)).map_err(|_| NetError::Channel("bad length"))?;
        if !record_len_ok(len) {
            return Err(NetError::Channel("record length out of range"));
        }
        let mut sealed = vec![0u8; len];
        self.io.read_exact(&mut sealed).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => NetError::Closed,
            _ => NetError::Io(e),
        })?;
        let plain = open(&self.recv_key, self.recv_seq, b"", &sealed)
            .ok_or(NetError::Channel("record failed authentication"))?;
        self.recv_seq = self.recv_seq.checked_add(1).ok_or(NetError::Channel("sequence exhausted"))?;
        Ok(Some(plain))
    }

    /// Turns the channel into a byte stream implementing `AsyncRead + AsyncWrite`,
    /// continuing the same sequence numbers (nothing is buffered here, so nothing is lost).
    #[must_use]
    pub fn into_stream(self) -> crate::stream::SecureStream<S> {
        crate::stream::SecureStream::from_parts(
            self.io,
            self.username,
            self.send_key,
            self.recv_key,
            (self.send_seq, self.recv_seq),
            self.broken,
        )
    }

    /// Shuts the write half down.
    ///
    /// # Errors
    /// [`NetError::Io`].
    pub async fn shutdown(&mut self) -> Result<(), NetError> {
        Ok(self.io.shutdown().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> SessionKeys {
        SessionKeys { c2s: SymmetricKey::from_bytes([1; 32]), s2c: SymmetricKey::from_bytes([2; 32]) }
    }

    #[tokio::test]
    async fn round_trip_both_ways() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let mut c = SecureChannel::new(a, "u".into(), keys(), Role::Client);
        let mut s = SecureChannel::new(b, "u".into(), keys(), Role::Server);
        c.send(b"ping").await.unwrap();
        c.send(&[7u8; MAX_RECORD_PLAINTEXT]).await.unwrap();
        assert_eq!(s.recv().await.unwrap().unwrap().as_slice(), b"ping");
        assert_eq!(s.recv().await.unwrap().unwrap().len(), MAX_RECORD_PLAINTEXT);
        s.send(b"pong").await.unwrap();
        assert_eq!(c.recv().await.unwrap().unwrap().as_slice(), b"pong");
        assert!(c.send(&[0u8; MAX_RECORD_PLAINTEXT + 1]).await.is_err());
    }

    async fn raw_records(msgs: &[&[u8]]) -> Vec<Vec<u8>> {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut c = SecureChannel::new(a, "u".into(), keys(), Role::Client);
        let mut out = Vec::new();
        for m in msgs {
            c.send(m).await.unwrap();
            let mut len = [0u8; 4];
            b.read_exact(&mut len).await.unwrap();
            let mut body = vec![0; u32::from_be_bytes(len) as usize];
            b.read_exact(&mut body).await.unwrap();
            out.push([len.to_vec(), body].concat());
        }
        out
    }

    async fn server_reading(bytes: Vec<u8>) -> Vec<Result<Option<Vec<u8>>, String>> {
        let (mut a, b) = tokio::io::duplex(1 << 16);
        a.write_all(&bytes).await.unwrap();
        drop(a);
        let mut s = SecureChannel::new(b, "u".into(), keys(), Role::Server);
        let mut out = Vec::new();
        for _ in 0..3 {
            out.push(s.recv().await.map(|o| o.map(|z| z.to_vec())).map_err(|e| e.to_string()));
        }
        out
    }

    #[tokio::test]
    async fn replay_reorder_tamper_and_reflection_fail() {
        let r = raw_records(&[b"a", b"b"]).await;
        // In order: fine.
        let ok = server_reading([r[0].clone(), r[1].clone()].concat()).await;
        assert_eq!(ok[0].as_ref().unwrap().as_deref(), Some(&b"a"[..]));
        assert_eq!(ok[1].as_ref().unwrap().as_deref(), Some(&b"b"[..]));
        // Replayed first record.
        let replay = server_reading([r[0].clone(), r[0].clone()].concat()).await;
        assert!(replay[1].is_err());
        assert!(replay[2].is_err(), "channel stays closed");
        // Reordered.
        assert!(server_reading([r[1].clone(), r[0].clone()].concat()).await[0].is_err());
        // Tampered.
        let mut t = r[0].clone();
        *t.last_mut().unwrap() ^= 1;
        assert!(server_reading(t).await[0].is_err());
        // Oversized length.
        let mut big = (MAX_RECORD_PLAINTEXT as u32 + 17).to_be_bytes().to_vec();
        big.extend(vec![0; 10]);
        assert!(server_reading(big).await[0].is_err());
        // Reflected: a server record sent back to the server fails (direction keys differ).
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut s = SecureChannel::new(a, "u".into(), keys(), Role::Server);
        s.send(b"x").await.unwrap();
        let mut rec = vec![0u8; 4 + 1 + 16];
        b.read_exact(&mut rec).await.unwrap();
        assert!(server_reading(rec).await[0].is_err());
    }
}
