//! The listening side: a cap on open connections and on each client address's share of them, a deadline for each request head (a client that sends half a request is dropped), a keep-alive limit between requests, and optional TLS 1.2+ on rustls with the workspace's ring provider.
//!
//! poem's server offers only an idle timeout, which a client trickling one
//! byte at a time never trips. [`GuardedAcceptor`] hands poem connections
//! wrapped in [`Guarded`], which watches the plaintext bytes: from accept
//! (or from the first byte after a response) the client has
//! `header_timeout` to finish a request head (`\r\n\r\n`), the TLS
//! handshake included; between requests it may stay silent for
//! `keep_alive`. Past either, the read fails and the connection closes.
//! Slow bodies are bounded where they are read (`body.rs`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::{Acceptor, TcpAcceptor};
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// How connections are bounded.
#[derive(Debug, Clone)]
pub struct Transport {
    /// From accept, or from a keep-alive connection's first byte, to the
    /// end of the request head.
    pub header_timeout: Duration,
    /// Silence allowed between requests on one connection (counted from
    /// the server's last write).
    pub keep_alive: Duration,
    /// From the end of a request head, or from the request body's last
    /// byte if it came later, to the first byte of its answer (the body's
    /// own timeout, 408, comes first).
    pub answer_timeout: Duration,
    /// Connections open at once; the next waits in the listen backlog.
    pub max_connections: usize,
    /// Connections one client address (IPv6 by its /64) may hold at once;
    /// the next one from it is closed at once, so one client cannot take
    /// every place under `max_connections`.
    pub max_per_address: usize,
    /// Peers not held to `max_per_address`: the trusted proxies, whose
    /// connections carry many clients.
    pub exempt: Vec<ipnet::IpNet>,
    /// TLS, when the app terminates it itself.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for Transport {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(60),
            answer_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_per_address: 256,
            exempt: Vec::new(),
            tls: None,
        }
    }
}

/// A rustls server configuration from PEM files: the certificate chain
/// and its private key, TLS 1.2 and 1.3 only, on the ring provider, with
/// HTTP/1.1 offered by ALPN.
///
/// # Errors
/// A file that cannot be read or holds no certificate or key, or a key
/// that does not match.
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| format!("TLS_CERT_FILE {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("TLS_CERT_FILE {}: no certificate", cert.display()));
    }
    // The key's bytes are never part of an error.
    let key = PrivateKeyDer::from_pem_file(key).map_err(|_| {
        format!(
            "TLS_KEY_FILE {}: no readable PEM private key",
            key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("TLS_CERT_FILE / TLS_KEY_FILE: {e}"))?;
    // HTTP/1.1 only: the head deadline watches for the end of an HTTP/1
    // head, which HTTP/2's binary frames never show.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Open connections per client address; an entry goes when its count
/// reaches zero, so the map never outgrows the connection cap.
type Shares = Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>;

/// One connection's place in its address's share (none for an exempt
/// peer); given back when the connection ends.
struct Share {
    key: Option<String>,
    shares: Shares,
}

impl Drop for Share {
    fn drop(&mut self) {
        metrics::gauge!("http_connections_open").decrement(1.0);
        let Some(key) = &self.key else { return };
        let mut shares = self.shares.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = shares.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                shares.remove(key);
            }
        }
    }
}

/// Accepts TCP connections within the cap and wraps each in [`Guarded`].
pub struct GuardedAcceptor {
    inner: TcpAcceptor,
    permits: Arc<Semaphore>,
    shares: Shares,
    transport: Arc<Transport>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl GuardedAcceptor {
    /// Wraps `inner`.
    pub fn new(inner: TcpAcceptor, transport: Transport) -> Self {
        let tls = transport.tls.clone().map(tokio_rustls::TlsAcceptor::from);
        metrics::counter!("http_connections_refused_total", "reason" => "address_share")
            .increment(0);
        metrics::gauge!("http_connections_open").increment(0.0);
        Self {
            inner,
            permits: Arc::new(Semaphore::new(transport.max_connections.max(1))),
            shares: Shares::default(),
            transport: Arc::new(transport),
            tls,
        }
    }

    /// A place in `peer`'s share, if it has one left.
    fn share(&self, peer: Option<std::net::IpAddr>) -> Option<Share> {
        let key = match peer {
            // A dual-stack listener sees IPv4 peers as `::ffff:a.b.c.d`;
            // the canonical form matches IPv4 CIDRs.
            Some(ip)
                if !self
                    .transport
                    .exempt
                    .iter()
                    .any(|net| net.contains(&ip.to_canonical())) =>
            {
                Some(crate::limiter::address_key(ip))
            }
            // An exempt proxy, or a peer without an IP address.
            _ => None,
        };
        if let Some(key) = &key {
            let mut shares = self.shares.lock().unwrap_or_else(|e| e.into_inner());
            let held = shares.entry(key.clone()).or_insert(0);
            if *held >= self.transport.max_per_address.max(1) {
                metrics::counter!("http_connections_refused_total", "reason" => "address_share")
                    .increment(1);
                return None;
            }
            *held += 1;
        }
        // Every accepted connection holds one `Share` until it closes.
        metrics::gauge!("http_connections_open").increment(1.0);
        Some(Share {
            key,
            shares: self.shares.clone(),
        })
    }
}

impl Acceptor for GuardedAcceptor {
    type Io = Guarded;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Guarded, LocalAddr, RemoteAddr, Scheme)> {
        // Wait for a free place before taking the next connection: past
        // the cap, clients wait in the kernel's backlog, not in memory.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(io::Error::other)?;
        // A connection past its address's share is closed unanswered and
        // the place under the cap goes to the next one.
        let (tcp, local, remote, scheme, share) = loop {
            let (tcp, local, remote, scheme) = self.inner.accept().await?;
            let peer = remote.as_socket_addr().map(std::net::SocketAddr::ip);
            match self.share(peer) {
                Some(share) => break (tcp, local, remote, scheme, share),
                None => {
                    tracing::debug!(peer = ?peer, "connection over its address's share closed");
                    drop(tcp);
                }
            }
        };
        let _ = tcp.set_nodelay(true);
        let (stream, scheme) = match &self.tls {
            // The handshake runs on the connection's own task, on its first
            // read, under the head deadline: a slow handshake holds up no
            // other accept.
            Some(tls) => (Stream::Handshake(Box::new(tls.accept(tcp))), Scheme::HTTPS),
            None => (Stream::Plain(tcp), scheme),
        };
        let deadline = Instant::now() + self.transport.header_timeout;
        Ok((
            Guarded {
                stream,
                _permit: permit,
                _share: share,
                transport: self.transport.clone(),
                phase: Phase::Head,
                timer: Box::pin(tokio::time::sleep_until(deadline)),
                matched: 0,
                started: false,
                refused: false,
            },
            local,
            remote,
            scheme,
        ))
    }
}

enum Stream {
    Plain(TcpStream),
    Handshake(Box<tokio_rustls::Accept<TcpStream>>),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the rest of a request head: the head deadline runs.
    Head,
    /// Between requests: the keep-alive deadline runs until a byte comes.
    Idle,
    /// A request head has arrived: the answer must start within the
    /// answer timeout.
    Open,
}

/// One accepted connection with its place under the cap and its deadlines.
pub struct Guarded {
    stream: Stream,
    _permit: OwnedSemaphorePermit,
    _share: Share,
    transport: Arc<Transport>,
    phase: Phase,
    timer: Pin<Box<Sleep>>,
    /// How much of `\r\n\r\n` the last bytes matched.
    matched: usize,
    /// Whether the current head has begun (blank lines before a request
    /// line are skipped by the parser, so they must not end a head here).
    started: bool,
    /// The client spoke HTTP/2, which this deadline cannot follow.
    refused: bool,
}

const HEAD_END: &[u8; 4] = b"\r\n\r\n";

impl Guarded {
    /// Drives the TLS handshake; `Ready(Ok)` once there is a stream to use.
    fn ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Stream::Handshake(accept) = &mut self.stream {
            match Pin::new(accept.as_mut()).poll(cx) {
                Poll::Ready(Ok(tls)) => self.stream = Stream::Tls(Box::new(tls)),
                Poll::Ready(Err(e)) => {
                    self.stream = Stream::Closed;
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    fn watch(&mut self, new: &[u8]) {
        if new.is_empty() {
            return;
        }
        if self.phase == Phase::Open {
            // Body bytes: the answer's clock runs from the last one, so a
            // large upload may arrive for longer than the answer may take
            // (a silent body is cut by the body's own timeout first).
            let deadline = Instant::now() + self.transport.answer_timeout;
            self.timer.as_mut().reset(deadline);
            return;
        }
        if self.phase == Phase::Idle {
            self.phase = Phase::Head;
            self.matched = 0;
            self.started = false;
            let deadline = Instant::now() + self.transport.header_timeout;
            self.timer.as_mut().reset(deadline);
        }
        if self.phase == Phase::Head {
            for &b in new {
                if !self.started {
                    if b == b'\r' || b == b'\n' {
                        continue;
                    }
                    self.started = true;
                    // The HTTP/2 preface ("PRI * HTTP/2.0"): refused, since
                    // its frames never show an HTTP/1 head's end.
                    if b == b'P' && new.starts_with(b"PRI ") {
                        self.refused = true;
                        return;
                    }
                }
                self.matched = if b == HEAD_END[self.matched] {
                    self.matched + 1
                } else if b == HEAD_END[0] {
                    1
                } else {
                    0
                };
                if self.matched == HEAD_END.len() {
                    self.phase = Phase::Open;
                    let deadline = Instant::now() + self.transport.answer_timeout;
                    self.timer.as_mut().reset(deadline);
                    break;
                }
            }
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.refused || this.timer.as_mut().poll(cx).is_ready() {
            this.stream = Stream::Closed;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the request or its answer did not come in time",
            )));
        }
        match this.ready(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        let before = buf.filled().len();
        let polled = match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Handshake(_) | Stream::Closed => Poll::Ready(Ok(())),
        };
        if let Poll::Ready(Ok(())) = polled {
            this.watch(&buf.filled()[before..]);
            if this.refused {
                // Not handed on: the server must not answer in HTTP/2.
                buf.set_filled(before);
                this.stream = Stream::Closed;
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "HTTP/2 is not served here",
                )));
            }
        }
        polled
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        // An interim answer (`100 Continue`) is not the answer: the body
        // is still to come under the same request.
        let interim = data.starts_with(b"HTTP/1.1 1") || data.starts_with(b"HTTP/1.0 1");
        if !interim && !data.is_empty() {
            // An answer is going out: what the client sends next is a new
            // request, which must begin within the keep-alive window after
            // the server's last write.
            this.phase = Phase::Idle;
            let deadline = Instant::now() + this.transport.keep_alive;
            this.timer.as_mut().reset(deadline);
        }
        match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, data),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
            Stream::Handshake(_) | Stream::Closed => {
                Poll::Ready(Err(io::ErrorKind::NotConnected.into()))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Handshake(_) | Stream::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Handshake(_) | Stream::Closed => Poll::Ready(Ok(())),
        }
    }
}
