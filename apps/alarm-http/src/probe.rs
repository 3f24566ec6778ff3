//! `alarm-http probe URL`: one plain-HTTP GET, exit 0 on a 2xx answer; the container image's health check, which needs no shell and no curl inside the image.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::Duration;

/// The answer's status code, or why there was none.
pub(crate) fn probe(url: &str, timeout: Duration) -> Result<u16, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("{url}: only http:// URLs (the probe runs beside the server it checks)")
    })?;
    let (authority, path) = rest
        .find(['/', '?'])
        .map_or((rest, "/"), |at| (&rest[..at], &rest[at..]));
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url}: no host, or credentials in the URL"));
    }
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let address = with_port
        .to_socket_addrs()
        .map_err(|e| format!("{authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority}: no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&address, timeout).map_err(|e| format!("{address}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    // One write: `write!` on a bare socket sends each formatted piece as its own segment.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: alarm-http-probe\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("{address}: {e}"))?;
    // The status line is all that is read: a short, bounded read.
    let mut head = [0_u8; 64];
    let mut got = 0;
    while got < head.len() {
        let n = stream
            .read(&mut head[got..])
            .map_err(|e| format!("{address}: {e}"))?;
        if n == 0 {
            break;
        }
        got += n;
        if head[..got].contains(&b'\n') {
            break;
        }
    }
    let line = String::from_utf8_lossy(&head[..got]);
    line.strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("{address}: not an HTTP answer: {:?}", line.trim_end()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_it_cannot_probe() {
        let t = Duration::from_millis(200);
        assert!(
            probe("https://127.0.0.1/health", t)
                .unwrap_err()
                .contains("only http://")
        );
        assert!(
            probe("http://user:pw@127.0.0.1/", t)
                .unwrap_err()
                .contains("credentials")
        );
        // Nothing listens on port 1.
        assert!(probe("http://127.0.0.1:1/health/ready", t).is_err());
    }

    #[test]
    fn reads_the_status_of_a_real_answer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            for status in ["204 No Content", "503 Service Unavailable"] {
                let (mut s, _) = listener.accept().expect("accept");
                // The whole head, however the segments fall.
                let mut request = String::new();
                let mut buf = [0_u8; 1024];
                while !request.contains("\r\n\r\n") {
                    let n = s.read(&mut buf).expect("read");
                    assert!(n > 0, "the probe closed before its head ended: {request}");
                    request.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
                write!(s, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").expect("write");
                assert!(
                    request.starts_with("GET /health/ready?x=1 HTTP/1.1\r\n"),
                    "{request}"
                );
            }
        });
        let url = format!("http://127.0.0.1:{port}/health/ready?x=1");
        assert_eq!(probe(&url, Duration::from_secs(5)), Ok(204));
        assert_eq!(probe(&url, Duration::from_secs(5)), Ok(503));
        server.join().expect("server");
    }
}
