//! The encrypted channel after an authentication with a channel (SPEC 7):
//! records `u32 big-endian length || ChaCha20-Poly1305(k_dir, n(seq), aad empty,
//! plaintext)`, plaintext at most 16384 bytes, `seq` from 0 per direction. A
//! record with an empty plaintext is the authenticated end of stream (TLS's
//! `close_notify`): a sender sends one before it closes, and a receiver that meets
//! the end of the connection without one reports truncation, never a clean end.
//! Any failure closes the channel for good.
//!
//! `RecordLayer` is the one implementation of all this; [`SecureChannel`]
//! (message-oriented, async methods) and [`SecureStream`](crate::stream::SecureStream)
//! (`AsyncRead + AsyncWrite`) are two faces of it.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use scram_dh::SessionKeys;
use scram_dh::crypto::{open, seal};
use scram_dh::secret::SymmetricKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use zeroize::Zeroizing;

use crate::error::NetError;

/// The largest plaintext one record carries.
pub const MAX_RECORD_PLAINTEXT: usize = 16384;
const TAG: usize = 16;

/// Which end of the channel this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sends with `k_c2s`, receives with `k_s2c`.
    Client,
    /// Sends with `k_s2c`, receives with `k_c2s`.
    Server,
}

/// When a channel last moved a record in either direction; a server watches it
/// to close idle channels.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self { start: Instant::now(), last_ms: AtomicU64::new(0) })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// How long since the last record.
    #[must_use]
    pub fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// Why a record could not be read or written.
#[derive(Debug)]
pub(crate) enum RecordError {
    Io(io::Error),
    /// A protocol violation: the channel is unusable.
    Bad(&'static str),
    /// The connection ended without the authenticated end of stream.
    Truncated,
}

impl From<io::Error> for RecordError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<RecordError> for io::Error {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Io(e) => e,
            RecordError::Bad(m) => io::Error::new(io::ErrorKind::InvalidData, m),
            RecordError::Truncated => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection ended without an authenticated end of stream (truncated)",
            ),
        }
    }
}

impl From<RecordError> for NetError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Io(e) => NetError::Io(e),
            RecordError::Bad(m) => NetError::Channel(m),
            RecordError::Truncated => NetError::Truncated,
        }
    }
}

/// The record layer: sealing, framing, sequence numbers and the end-of-stream
/// rule, over any byte transport. All buffering lives here, so every operation is
/// cancel-safe: a read or write abandoned half-way loses nothing.
pub(crate) struct RecordLayer<S> {
    io: S,
    send_key: SymmetricKey,
    recv_key: SymmetricKey,
    send_seq: u64,
    recv_seq: u64,
    /// Raw bytes read but not yet a whole record.
    inbox: Vec<u8>,
    /// Sealed records not yet written, and how much of them was.
    outbox: Vec<u8>,
    out_pos: usize,
    failed: Option<&'static str>,
    /// The peer's authenticated end of stream arrived.
    peer_closed: bool,
    /// Ours was queued.
    closed: bool,
    activity: Arc<Activity>,
}

impl<S> RecordLayer<S> {
    fn new(io: S, keys: SessionKeys, role: Role) -> Self {
        let SessionKeys { c2s, s2c } = keys;
        let (send_key, recv_key) = match role {
            Role::Client => (c2s, s2c),
            Role::Server => (s2c, c2s),
        };
        Self {
            io,
            send_key,
            recv_key,
            send_seq: 0,
            recv_seq: 0,
            inbox: Vec::new(),
            outbox: Vec::new(),
            out_pos: 0,
            failed: None,
            peer_closed: false,
            closed: false,
            activity: Activity::new(),
        }
    }

    fn check(&self) -> Result<(), RecordError> {
        match self.failed {
            Some(_) => Err(RecordError::Bad("channel closed after an earlier failure")),
            None => Ok(()),
        }
    }

    fn fail<T>(&mut self, e: RecordError) -> Result<T, RecordError> {
        if self.failed.is_none() {
            self.failed = Some("failed");
        }
        Err(e)
    }

    /// Seals one record into the outbox: application data (1..=16384 bytes) or,
    /// with an empty `plaintext`, the end of stream.
    fn queue(&mut self, plaintext: &[u8]) -> Result<(), RecordError> {
        self.check()?;
        if self.closed {
            return Err(RecordError::Bad("channel already closed for sending"));
        }
        if plaintext.len() > MAX_RECORD_PLAINTEXT {
            return self.fail(RecordError::Bad("message larger than one record (16384 bytes)"));
        }
        let Some(next) = self.send_seq.checked_add(1) else {
            return self.fail(RecordError::Bad("sequence numbers exhausted"));
        };
        let sealed = match seal(&self.send_key, self.send_seq, b"", plaintext) {
            Ok(sealed) => sealed,
            Err(_) => return self.fail(RecordError::Bad("sealing a record failed")),
        };
        // At most 16384 + 16 bytes: always fits the u32 length prefix.
        let len = u32::try_from(sealed.len()).unwrap_or(u32::MAX);
        self.outbox.extend_from_slice(&len.to_be_bytes());
        self.outbox.extend_from_slice(&sealed);
        self.send_seq = next;
        if plaintext.is_empty() {
            self.closed = true;
        }
        self.activity.touch();
        Ok(())
    }
}

impl<S: AsyncWrite + Unpin> RecordLayer<S> {
    /// Writes out queued records until the outbox is empty.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), RecordError>> {
        while self.out_pos < self.outbox.len() {
            match ready!(Pin::new(&mut self.io).poll_write(cx, &self.outbox[self.out_pos..])) {
                Ok(0) => return Poll::Ready(self.fail(io::Error::from(io::ErrorKind::WriteZero).into())),
                Ok(n) => self.out_pos += n,
                Err(e) => return Poll::Ready(self.fail(e.into())),
            }
        }
        self.outbox.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), RecordError>> {
        ready!(self.poll_drain(cx))?;
        Poll::Ready(ready!(Pin::new(&mut self.io).poll_flush(cx)).map_err(RecordError::Io))
    }

    /// Sends the end of stream (once), flushes, and shuts the transport's write half.
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), RecordError>> {
        if !self.closed && self.failed.is_none() {
            self.queue(b"")?;
        }
        ready!(self.poll_drain(cx))?;
        Poll::Ready(ready!(Pin::new(&mut self.io).poll_shutdown(cx)).map_err(RecordError::Io))
    }
}

impl<S: AsyncRead + Unpin> RecordLayer<S> {
    /// The next record's plaintext; `None` once the peer's authenticated end of
    /// stream has arrived.
    fn poll_record(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Zeroizing<Vec<u8>>>, RecordError>> {
        self.check()?;
        loop {
            if self.peer_closed {
                return Poll::Ready(Ok(None));
            }
            if self.inbox.len() >= 4 {
                let len = u32::from_be_bytes([self.inbox[0], self.inbox[1], self.inbox[2], self.inbox[3]]);
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                if !(TAG..=MAX_RECORD_PLAINTEXT + TAG).contains(&len) {
                    return Poll::Ready(self.fail(RecordError::Bad("record length out of range")));
                }
                if self.inbox.len() >= 4 + len {
                    let Some(plain) = open(&self.recv_key, self.recv_seq, b"", &self.inbox[4..4 + len])
                    else {
                        return Poll::Ready(self.fail(RecordError::Bad("record failed authentication")));
                    };
                    self.inbox.drain(..4 + len);
                    let Some(next) = self.recv_seq.checked_add(1) else {
                        return Poll::Ready(self.fail(RecordError::Bad("sequence numbers exhausted")));
                    };
                    self.recv_seq = next;
                    self.activity.touch();
                    if plain.is_empty() {
                        self.peer_closed = true;
                        self.inbox.clear();
                        return Poll::Ready(Ok(None));
                    }
                    return Poll::Ready(Ok(Some(plain)));
                }
            }
            let mut chunk = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut chunk);
            if let Err(e) = ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb)) {
                return Poll::Ready(self.fail(e.into()));
            }
            if rb.filled().is_empty() {
                // The transport ended without our peer's end-of-stream record: an
                // attacker may have cut the connection; never report a clean end.
                return Poll::Ready(self.fail(RecordError::Truncated));
            }
            self.inbox.extend_from_slice(rb.filled());
        }
    }
}

/// An authenticated, encrypted, message-oriented connection: one message is one
/// record.
pub struct SecureChannel<S> {
    layer: RecordLayer<S>,
    username: String,
}

impl<S> core::fmt::Debug for SecureChannel<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SecureChannel")
            .field("username", &self.username)
            .field("send_seq", &self.layer.send_seq)
            .field("recv_seq", &self.layer.recv_seq)
            .finish_non_exhaustive()
    }
}

impl<S> SecureChannel<S> {
    /// The authenticated username (the peer's, on the server; one's own, on the client).
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// When the channel last moved a record (for idle timeouts).
    #[must_use]
    pub fn activity(&self) -> Arc<Activity> {
        Arc::clone(&self.layer.activity)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> SecureChannel<S> {
    /// Wraps `io` with the keys from an authentication.
    pub fn new(io: S, username: String, keys: SessionKeys, role: Role) -> Self {
        Self { layer: RecordLayer::new(io, keys, role), username }
    }

    /// Sends one message as one record and flushes it. Cancel-safe: if the future
    /// is dropped, the record is kept and goes out with the next send or close.
    ///
    /// # Errors
    /// [`NetError::Channel`] for an empty message (the empty record is reserved
    /// for the end of stream; see [`close`](Self::close)) or one over
    /// [`MAX_RECORD_PLAINTEXT`] bytes (the channel is then unusable); [`NetError::Io`].
    pub async fn send(&mut self, message: &[u8]) -> Result<(), NetError> {
        if message.is_empty() {
            return Err(NetError::Channel("application messages are never empty"));
        }
        self.layer.queue(message)?;
        Ok(poll_fn(|cx| self.layer.poll_flush(cx)).await?)
    }

    /// Receives one message. `Ok(None)` once the peer has sent its authenticated
    /// end of stream. Cancel-safe: partial records stay buffered.
    ///
    /// # Errors
    /// [`NetError::Truncated`] when the connection ends without that end of
    /// stream; [`NetError::Channel`] for a record that is oversized, undersized,
    /// replayed, reordered or tampered with (the channel is then unusable);
    /// [`NetError::Io`].
    pub async fn recv(&mut self) -> Result<Option<Zeroizing<Vec<u8>>>, NetError> {
        Ok(poll_fn(|cx| self.layer.poll_record(cx)).await?)
    }

    /// Sends the authenticated end of stream and shuts the write half down.
    ///
    /// # Errors
    /// [`NetError::Io`].
    pub async fn close(&mut self) -> Result<(), NetError> {
        Ok(poll_fn(|cx| self.layer.poll_close(cx)).await?)
    }

    /// The same as [`close`](Self::close).
    ///
    /// # Errors
    /// [`NetError::Io`].
    pub async fn shutdown(&mut self) -> Result<(), NetError> {
        self.close().await
    }

    /// Turns the channel into a byte stream implementing `AsyncRead + AsyncWrite`
    /// over the same record layer (sequence numbers and buffered bytes carry over).
    #[must_use]
    pub fn into_stream(self) -> crate::stream::SecureStream<S> {
        crate::stream::SecureStream::from_layer(self.layer, self.username)
    }
}

impl<S: AsyncRead + Unpin> RecordLayer<S> {
    pub(crate) fn poll_record_io(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Option<Zeroizing<Vec<u8>>>>> {
        self.poll_record(cx).map_err(io::Error::from)
    }
}

impl<S: AsyncWrite + Unpin> RecordLayer<S> {
    pub(crate) fn queue_io(&mut self, plaintext: &[u8]) -> io::Result<()> {
        self.queue(plaintext).map_err(io::Error::from)
    }
    pub(crate) fn poll_drain_io(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_drain(cx).map_err(io::Error::from)
    }
    pub(crate) fn poll_flush_io(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx).map_err(io::Error::from)
    }
    pub(crate) fn poll_close_io(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_close(cx).map_err(io::Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
        assert!(c.send(b"").await.is_err(), "empty messages are reserved for the end of stream");
        assert!(c.send(&[0u8; MAX_RECORD_PLAINTEXT + 1]).await.is_err());
    }

    async fn raw_records(msgs: &[&[u8]]) -> Vec<Vec<u8>> {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut c = SecureChannel::new(a, "u".into(), keys(), Role::Client);
        let mut out = Vec::new();
        for m in msgs {
            if m.is_empty() {
                c.close().await.unwrap();
            } else {
                c.send(m).await.unwrap();
            }
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
        // In order: fine; then the connection ends without an end-of-stream record.
        let ok = server_reading([r[0].clone(), r[1].clone()].concat()).await;
        assert_eq!(ok[0].as_ref().unwrap().as_deref(), Some(&b"a"[..]));
        assert_eq!(ok[1].as_ref().unwrap().as_deref(), Some(&b"b"[..]));
        assert!(ok[2].as_ref().unwrap_err().contains("truncated"), "{:?}", ok[2]);
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

    // F1: a cut connection is truncation, the empty record is the only clean end.
    #[tokio::test]
    async fn f1_end_of_stream_is_authenticated() {
        let r = raw_records(&[b"a", b""]).await;
        let clean = server_reading([r[0].clone(), r[1].clone()].concat()).await;
        assert_eq!(clean[0].as_ref().unwrap().as_deref(), Some(&b"a"[..]));
        assert_eq!(clean[1], Ok(None), "the empty record is the authenticated end");
        assert_eq!(clean[2], Ok(None), "and it stays ended");
        let cut = server_reading(r[0].clone()).await;
        assert!(matches!(&cut[1], Err(e) if e.contains("truncated")), "{cut:?}");
        // An end-of-stream record forged with the wrong sequence number (replayed
        // from position 1 to position 0) fails authentication.
        assert!(server_reading(r[1].clone()).await[0].is_err());
        // Nothing is empty at the start of a connection either: EOF at once is truncation.
        assert!(matches!(&server_reading(Vec::new()).await[0], Err(e) if e.contains("truncated")));
    }

    // F9: recv is cancel-safe: a record arriving in pieces across cancelled recvs
    // is still delivered whole.
    #[tokio::test]
    async fn f9_recv_is_cancel_safe() {
        let r = raw_records(&[b"hello world"]).await;
        let (mut a, b) = tokio::io::duplex(1 << 16);
        let mut s = SecureChannel::new(b, "u".into(), keys(), Role::Server);
        for byte in &r[0][..r[0].len() - 1] {
            a.write_all(std::slice::from_ref(byte)).await.unwrap();
            let res = tokio::time::timeout(Duration::from_millis(5), s.recv()).await;
            assert!(res.is_err(), "no whole record yet");
        }
        a.write_all(&r[0][r[0].len() - 1..]).await.unwrap();
        let got = s.recv().await.unwrap().unwrap();
        assert_eq!(got.as_slice(), b"hello world");
    }
}
