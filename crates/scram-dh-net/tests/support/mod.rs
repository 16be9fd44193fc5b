//! Helpers shared by the HTTP front's test crates (`http`, `rfc7804`): a client
//! bound to one loopback source address, and a buffered reply.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::IpAddr;

/// A reqwest client whose connections come from `127.0.0.<src>`, so that tests
/// can play several peers.
pub fn client_from(src: u8) -> reqwest::Client {
    reqwest::Client::builder().local_address(IpAddr::from([127, 0, 0, src])).build().unwrap()
}

/// A whole response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The error object's `code`, or "".
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// Sends and reads the whole response.
pub async fn send(req: reqwest::RequestBuilder) -> Reply {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await.unwrap().to_vec();
    Reply { status, headers, body }
}
