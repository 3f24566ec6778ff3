//! Local HTTP fakes of Vault and OCI Vault for the provider tests: a small HTTP/1.1 server and the two APIs over it.
#![allow(dead_code, unreachable_pub)]

pub mod oci;
pub mod vault;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`…
    pub method: String,
    /// The path and query, as sent.
    pub target: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// A query parameter (the fakes' parameters need no decoding).
    pub fn query(&self, name: &str) -> Option<&str> {
        self.target
            .split_once('?')?
            .1
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
    }
}

/// An answer: status and JSON body.
pub type Answer = (u16, serde_json::Value);

/// Serves `handle` on a loopback port of the calling runtime, one request
/// per connection (answers close it), until the runtime ends; over TLS
/// when `tls` is given.
pub async fn serve(handle: Arc<dyn Fn(Request) -> Answer + Send + Sync>) -> SocketAddr {
    serve_with(handle, None).await
}

/// [`serve`], over TLS with `tls` when given.
pub async fn serve_with(
    handle: Arc<dyn Fn(Request) -> Answer + Send + Sync>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handle = handle.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    // A refused handshake (an unknown CA on the client's
                    // side) just ends the connection.
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(stream).await {
                            answer(stream, &*handle).await;
                        }
                    }
                    None => answer(stream, &*handle).await,
                }
            });
        }
    });
    addr
}

/// Reads one request from `stream` and writes `handle`'s answer.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    handle: &(dyn Fn(Request) -> Answer + Send + Sync),
) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).await.is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).await.unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len = headers
        .get("content-length")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).await.is_err() {
        return;
    }
    let (status, json) = handle(Request {
        method,
        target,
        headers,
        body,
    });
    let text = json.to_string();
    let answer = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
    let mut stream = reader.into_inner();
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A self-signed certificate for `localhost`: the server's TLS acceptor
/// and the certificate as PEM (the CA a client must be given).
pub fn self_signed() -> (tokio_rustls::TlsAcceptor, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("server config");
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(cert.der());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    );
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), pem)
}
