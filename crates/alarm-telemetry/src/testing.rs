//! A loopback HTTP sink for tests and benchmarks (feature `testing`): an OTLP/HTTP collector, or any receiver answering one fixed response, that keeps every request it took.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

/// What the sink took: each request's head (lower-cased) and body.
pub type Taken = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A sink listening on 127.0.0.1 until the process ends.
#[derive(Debug, Clone)]
pub struct Sink {
    /// `host:port`.
    pub addr: String,
    /// Every request taken, in order.
    pub taken: Taken,
}

/// What an OTLP/HTTP collector answers an export it accepted in full.
const OTLP_ACCEPTED: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";

impl Sink {
    /// An OTLP/HTTP collector: every export is accepted.
    ///
    /// # Panics
    /// No loopback port can be bound.
    pub fn otlp() -> Self {
        Self::answering(OTLP_ACCEPTED)
    }

    /// Starts a sink on a free port that answers every request with
    /// `answer` (a whole HTTP/1.1 response), serving each connection
    /// (keep-alive included) on its own thread.
    ///
    /// # Panics
    /// No loopback port can be bound.
    pub fn answering(answer: &'static [u8]) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the OTLP sink");
        let addr = listener.local_addr().expect("addr").to_string();
        let taken = Taken::default();
        let took = taken.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let took = took.clone();
                std::thread::spawn(move || serve(stream, &took, answer));
            }
        });
        Self { addr, taken }
    }

    /// The endpoint to set as `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The body bytes taken so far.
    pub fn bytes(&self) -> usize {
        self.taken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(_, body)| body.len())
            .sum()
    }
}

/// Requests on one connection until the client closes it.
fn serve(mut stream: std::net::TcpStream, took: &Taken, answer: &[u8]) {
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    loop {
        let mut head = String::new();
        let mut line = String::new();
        let mut length = 0usize;
        while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            head.push_str(&lower);
            line.clear();
        }
        if head.is_empty() {
            return;
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        took.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((head, body));
        if stream.write_all(answer).is_err() {
            return;
        }
    }
}
