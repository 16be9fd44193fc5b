//! A minimal length-prefixed binary codec for server session state kept in a
//! [`SessionStore`](crate::session::SessionStore) between handshake steps.

use zeroize::Zeroizing;

use crate::crypto::put_lp;
use crate::error::{Error, Result};
use crate::secret::SecretBytes;

/// Builds a session blob; the buffer is wiped on drop.
pub(crate) struct Writer(SecretBytes);

impl Writer {
    pub(crate) fn new(version: u8) -> Self {
        let mut v = Zeroizing::new(Vec::with_capacity(512));
        v.push(version);
        Self(v)
    }
    pub(crate) fn bytes(mut self, b: &[u8]) -> Self {
        put_lp(&mut self.0, b);
        self
    }
    pub(crate) fn u32(mut self, x: u32) -> Self {
        self.0.extend_from_slice(&x.to_be_bytes());
        self
    }
    #[cfg(test)]
    pub(crate) fn u64(mut self, x: u64) -> Self {
        self.0.extend_from_slice(&x.to_be_bytes());
        self
    }
    pub(crate) fn finish(self) -> SecretBytes {
        self.0
    }
}

/// Reads a session blob; every shortfall is a server error (the store returned junk).
pub(crate) struct Reader<'a>(&'a [u8]);

fn corrupt() -> Error {
    Error::ServerError("corrupt session state".into())
}

impl<'a> Reader<'a> {
    pub(crate) fn new(blob: &'a [u8], version: u8) -> Result<Self> {
        match blob.split_first() {
            Some((&v, rest)) if v == version => Ok(Self(rest)),
            _ => Err(corrupt()),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(corrupt());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = u32::from_be_bytes(self.array()?);
        self.take(usize::try_from(n).map_err(|_| corrupt())?)
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take(N)?.try_into().map_err(|_| corrupt())
    }
    pub(crate) fn array32(&mut self) -> Result<[u8; 32]> {
        self.bytes()?.try_into().map_err(|_| corrupt())
    }
    pub(crate) fn string(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| corrupt())
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    /// The state is over: what is left may only be the engine's zero padding
    /// (`engine::SEAL_RUN`), never another byte.
    pub(crate) fn end(self) -> Result<()> {
        if self.0.iter().all(|&b| b == 0) { Ok(()) } else { Err(corrupt()) }
    }
}
