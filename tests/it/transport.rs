//! The listening side end to end: clients that send half a request are dropped after the head deadline, a slow body gets 408, the connection cap holds a new client back until a place frees, and TLS serves HTTPS with HSTS.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Harness, Limits};
use crate::{Db, block_on};

fn transport(max_connections: usize) -> Limits {
    let mut limits = Limits::lenient();
    limits.transport = alarm_api::transport::Transport {
        header_timeout: Duration::from_secs(1),
        keep_alive: Duration::from_secs(2),
        answer_timeout: Duration::from_secs(5),
        max_connections,
        // Every client of these tests is 127.0.0.1.
        max_per_address: max_connections,
        exempt: Vec::new(),
        tls: None,
    };
    limits.body_timeout = Duration::from_secs(1);
    limits
}

fn addr(h: &Harness) -> String {
    h.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection; what it sent.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    // The safety net only bounds a broken server; the server's own
    // deadlines end the connection long before it.
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    got
}

/// Three hundred clients each send half a request head: every one is
/// dropped after the head deadline, and a normal client is answered
/// meanwhile.
async fn half_requests_are_dropped() {
    let Some(h) = Harness::start_with(Db::Sqlite, "slow-heads", transport(1000)).await else {
        return;
    };
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(addr(&h)).await.expect("connect");
        s.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        slow.push(s);
    }
    let r = h.req("GET", "/health/live").send().await;
    assert_eq!(r.status, 200, "a normal client is answered");
    let closed = futures_util::future::join_all(slow.iter_mut().map(until_closed)).await;
    assert!(
        closed.iter().all(Vec::is_empty),
        "dropped without an answer"
    );
    // Blank lines are not a head (the parser skips them): no way out of
    // the deadline that way, nor by opening with HTTP/2's preface.
    for opening in [&b"\r\n\r\n\r\n"[..], b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"] {
        let mut s = TcpStream::connect(addr(&h)).await.expect("connect");
        s.write_all(opening).await.expect("write");
        assert!(
            until_closed(&mut s).await.is_empty(),
            "dropped without an answer"
        );
    }
    // A trickle of bytes does not keep a head alive either.
    let mut s = TcpStream::connect(addr(&h)).await.expect("connect");
    let trickle = async {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        for b in b"GET /health/live HTTP/1.1\r\nHost: x\r\n".iter().cycle() {
            tick.tick().await;
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
        }
    };
    let bounded = tokio::time::timeout(Duration::from_secs(30), trickle).await;
    assert!(bounded.is_ok(), "the trickling client was cut off");
    h.stop().await;
}

/// A body that does not arrive within the body timeout is answered 408
/// `request-timeout`; a kept-alive connection that stays silent is closed.
async fn slow_bodies_and_idle_connections() {
    let Some(h) = Harness::start_with(Db::Sqlite, "slow-bodies", transport(1000)).await else {
        return;
    };
    let mut s = TcpStream::connect(addr(&h)).await.expect("connect");
    s.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":",
    )
    .await
    .expect("write");
    let answer = String::from_utf8_lossy(&until_closed(&mut s).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request-timeout"), "{answer}");

    // One answered request, then silence: closed after the keep-alive window.
    let mut s = TcpStream::connect(addr(&h)).await.expect("connect");
    s.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let answer = String::from_utf8_lossy(&until_closed(&mut s).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    h.stop().await;
}

/// With a cap of three connections held by silent clients, a fourth
/// client is answered only after the head deadline frees a place.
async fn the_connection_cap_holds() {
    let Some(h) = Harness::start_with(Db::Sqlite, "cap", transport(3)).await else {
        return;
    };
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(TcpStream::connect(addr(&h)).await.expect("connect"));
    }
    // The fourth client is only accepted once the server has closed one
    // of the silent connections (after their head deadline), so when its
    // answer arrives, that close has already reached its client.
    let r = h.req("GET", "/health/live").send().await;
    assert_eq!(r.status, 200);
    let closed = silent
        .iter()
        .filter(|s| {
            let mut b = [0u8; 1];
            matches!(s.try_read(&mut b), Ok(0))
        })
        .count();
    assert!(closed >= 1, "answered while all three places were taken");
    h.stop().await;
}

/// A connection from 127.0.0.1 through a socket bound to `from`.
async fn connect_from(h: &Harness, from: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{from}:0").parse().expect("local address"))
        .expect("bind");
    socket
        .connect(addr(h).parse().expect("server address"))
        .await
        .expect("connect")
}

/// Sends a whole request on `s`; the status line of its answer.
async fn status_line(s: &mut TcpStream) -> String {
    s.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let answer = until_closed(s).await;
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// One address holding its share of silent connections gets its next one
/// closed unanswered, while another address is served and a trusted proxy
/// is not held to a share; a place comes back when a connection ends.
async fn a_client_address_holds_at_most_its_share() {
    let mut limits = transport(100);
    limits.transport.header_timeout = Duration::from_secs(120);
    limits.transport.max_per_address = 3;
    limits.transport.exempt = vec!["127.0.0.3/32".parse().expect("cidr")];
    let Some(h) = Harness::start_with(Db::Sqlite, "share", limits).await else {
        return;
    };
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(connect_from(&h, "127.0.0.2").await);
    }
    // Closed long before the 120 s head deadline could close it (the
    // read's own safety net is 30 s).
    let mut fourth = connect_from(&h, "127.0.0.2").await;
    assert!(
        until_closed(&mut fourth).await.is_empty(),
        "closed unanswered"
    );
    let mut other = connect_from(&h, "127.0.0.4").await;
    assert_eq!(
        status_line(&mut other).await,
        "HTTP/1.1 200 OK",
        "another address is served"
    );
    let mut proxied = Vec::new();
    for _ in 0..4 {
        proxied.push(connect_from(&h, "127.0.0.3").await);
    }
    let mut through_proxy = connect_from(&h, "127.0.0.3").await;
    assert_eq!(
        status_line(&mut through_proxy).await,
        "HTTP/1.1 200 OK",
        "a trusted proxy has no share to exhaust"
    );
    // One silent connection ends: its place comes back once the server
    // has seen the close (polled: there is no signal to await).
    drop(silent.pop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut again = connect_from(&h, "127.0.0.2").await;
        if status_line(&mut again).await == "HTTP/1.1 200 OK" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop((silent, proxied));
    h.stop().await;
}

/// TLS: HTTPS with the configured certificate, HSTS on every answer, and a
/// plain-HTTP request to the TLS port gets no answer.
async fn tls_serves_https_with_hsts() {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let pem = |label: &str, der: &[u8]| {
        use base64::Engine as _;
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    };
    let dir = std::env::temp_dir().join(format!("alarm-tls-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    let cert_pem = pem("CERTIFICATE", cert.der());
    std::fs::write(&cert_file, &cert_pem).expect("cert");
    std::fs::write(&key_file, pem("PRIVATE KEY", &key.serialize_der())).expect("key");
    let config = alarm_api::transport::tls_config(&cert_file, &key_file).expect("tls config");
    let mut limits = Limits::lenient();
    limits.transport.tls = Some(Arc::new(config));
    let Some(h) = Harness::start_with(Db::Sqlite, "tls", limits).await else {
        return;
    };
    let port = addr(&h).rsplit(':').next().expect("port").to_owned();
    crate::support::install_tls_provider();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("root"))
        .build()
        .expect("client");
    let r = client
        .get(format!("https://localhost:{port}/health/live"))
        .send()
        .await
        .expect("https answers");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000; includeSubDomains")
    );
    let mut plain = TcpStream::connect(addr(&h)).await.expect("connect");
    plain
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let answer = until_closed(&mut plain).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"),
        "plain HTTP is not served on the TLS port"
    );
    let _ = std::fs::remove_dir_all(&dir);
    h.stop().await;
}

pub(crate) fn trials() -> Vec<libtest_mimic::Trial> {
    let module = "transport";
    let tests: [(&str, fn()); 5] = [
        ("half_requests_are_dropped", || {
            block_on(half_requests_are_dropped())
        }),
        ("slow_bodies_and_idle_connections", || {
            block_on(slow_bodies_and_idle_connections());
        }),
        ("the_connection_cap_holds", || {
            block_on(the_connection_cap_holds())
        }),
        ("a_client_address_holds_at_most_its_share", || {
            block_on(a_client_address_holds_at_most_its_share())
        }),
        ("tls_serves_https_with_hsts", || {
            block_on(tls_serves_https_with_hsts())
        }),
    ];
    tests
        .into_iter()
        .map(|(name, run)| crate::plain(module, name, run))
        .collect()
}
