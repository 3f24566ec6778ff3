//! The API as an OCI Function: Fn's hot-function `http-stream` contract (the agent's `POST /call` over the unix socket named by `FN_LISTENER`, the client's request wrapped in `Fn-Http-*` headers) around the same poem app, so no route exists twice.
//!
//! What the contract asks, as fnproject/docs `fn/develop/fn-format.md` and the FDKs
//! (fdk-go `handler.go`, fdk-python, fdk-rust `socket.rs`) state it:
//! - Listen on the unix socket in `FN_LISTENER` (`unix:/tmp/iofs/lsnr.sock`) within 5 s of
//!   start. The agent reacts to the *creation* of that name, so bind a sibling name first,
//!   make it 0666 (the agent runs as another user), and only then symlink the real name to it
//!   with a relative target ([`listen`]).
//! - Each call is `POST /call` with `Fn-Call-Id`, `Fn-Deadline` (RFC 3339) and, through API
//!   Gateway, `Fn-Intent: httprequest`, `Fn-Http-Method`, `Fn-Http-Request-Url` (path and query
//!   on OCI; an absolute URL on Fn's own HTTP triggers) and every client header as
//!   `Fn-Http-H-<name>`, `Content-Type` also unprefixed.
//! - The answer to the agent is 200 with the client's status in `Fn-Http-Status` and each
//!   header as `Fn-Http-H-<name>`, `Content-Type` unprefixed. 502 tells the agent the function
//!   failed, 504 that it ran out of time; any other status makes the agent drop the container.
//! - One call at a time per connection, HTTP/1.1 keep-alive, no read or write timeouts of the
//!   function's own.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use poem::http::header::{self, HeaderName, HeaderValue};
use poem::http::{HeaderMap, Method, StatusCode, Uri};
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Body, Endpoint, IntoResponse as _, Request, RequestParts, Response};

/// The prefix of a wrapped client header, lower-case as `http` stores names.
const HEADER_PREFIX: &str = "fn-http-h-";
/// How much of the deadline is kept back to answer the agent in time.
const DEADLINE_MARGIN: Duration = Duration::from_millis(200);

/// Headers that describe one connection, never the message: they are not passed on either way.
fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "content-length"
    )
}

/// The socket path of `FN_LISTENER`.
///
/// # Errors
/// Anything but `unix:<absolute path>` of at most 107 bytes (the contract says an FDK must exit
/// then).
pub fn listener_path(value: &str) -> Result<PathBuf, String> {
    let path = value
        .strip_prefix("unix:")
        .filter(|p| p.starts_with('/'))
        .ok_or_else(|| format!("FN_LISTENER must be unix:<absolute path>, not {value:?}"))?;
    if path.len() > 107 {
        return Err("FN_LISTENER's path is longer than a unix socket address allows".to_owned());
    }
    Ok(PathBuf::from(path))
}

/// The socket the agent will find, bound and listening before its name appears: a sibling
/// `phony<name>` made 0666, then the name as a relative symlink to it.
///
/// # Errors
/// The socket cannot be bound or linked.
pub fn listen(path: &Path) -> Result<std::os::unix::net::UnixListener, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path.parent().ok_or("FN_LISTENER names no folder")?;
    let name = path.file_name().ok_or("FN_LISTENER names no file")?;
    let mut phony_name = std::ffi::OsString::from("phony");
    phony_name.push(name);
    let phony = dir.join(&phony_name);
    for stale in [path, phony.as_path()] {
        match std::fs::remove_file(stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", stale.display())),
        }
    }
    let listener = std::os::unix::net::UnixListener::bind(&phony)
        .map_err(|e| format!("{}: {e}", phony.display()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{}: {e}", phony.display()))?;
    std::fs::set_permissions(&phony, std::fs::Permissions::from_mode(0o666))
        .map_err(|e| format!("{}: {e}", phony.display()))?;
    std::os::unix::fs::symlink(&phony_name, path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(listener)
}

/// Removes the socket and its link, as the contract asks of a function that exits.
pub fn unlisten(path: &Path) {
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
        let mut phony = std::ffi::OsString::from("phony");
        phony.push(name);
        let _ = std::fs::remove_file(dir.join(phony));
    }
    let _ = std::fs::remove_file(path);
}

/// OCI's log framing: with `FN_LOGFRAME_NAME` and `FN_LOGFRAME_HDR` set, each call starts a
/// `<name>=<value of that request header>` line on stdout and stderr, so the service can tell
/// one call's log lines from the next.
#[derive(Debug, Clone)]
pub struct LogFrame {
    /// `FN_LOGFRAME_NAME`.
    pub name: String,
    /// `FN_LOGFRAME_HDR`, the request header whose value marks the call.
    pub header: HeaderName,
}

/// The agent-facing endpoint: unwraps each call into the client's request, runs `inner` on
/// it, and wraps the answer.
pub struct FnHttpStream<E> {
    inner: E,
    frame: Option<LogFrame>,
    version: HeaderValue,
}

impl<E: Endpoint> FnHttpStream<E> {
    /// Serves `inner` to the agent.
    pub fn new(inner: E, frame: Option<LogFrame>) -> Self {
        Self {
            inner,
            frame,
            version: HeaderValue::from_static(concat!("smart-alarm/", env!("CARGO_PKG_VERSION"))),
        }
    }

    /// The agent's answer that this call failed (502: the container stays), with why.
    fn failed(&self, why: &str) -> Response {
        tracing::warn!(reason = why, "function call refused");
        Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .header("fn-fdk-version", self.version.clone())
            .content_type("application/json")
            .body(serde_json::json!({ "message": why }).to_string())
    }
}

/// What the agent says about the client's request.
#[derive(Debug)]
struct Unwrapped {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    client: Option<IpAddr>,
}

fn unwrap_request(agent: &HeaderMap) -> Result<Unwrapped, String> {
    let text = |name: &str| agent.get(name).and_then(|v| v.to_str().ok());
    if !text("fn-intent").is_some_and(|i| i.eq_ignore_ascii_case("httprequest")) {
        return Err(
            "only HTTP requests through API Gateway are served (Fn-Intent: httprequest)".to_owned(),
        );
    }
    let method = text("fn-http-method")
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or("no valid Fn-Http-Method")?;
    let url = text("fn-http-request-url").ok_or("no Fn-Http-Request-Url")?;
    // OCI sends the path and query; Fn's own triggers an absolute URL.
    let uri: Uri = if url.starts_with('/') {
        url.parse()
    } else {
        url.parse::<Uri>().and_then(|u| {
            u.path_and_query()
                .map_or("/", poem::http::uri::PathAndQuery::as_str)
                .parse()
        })
    }
    .map_err(|e| format!("Fn-Http-Request-Url {url:?}: {e}"))?;
    let mut headers = HeaderMap::new();
    for (name, value) in agent {
        let Some(original) = name.as_str().strip_prefix(HEADER_PREFIX) else {
            continue;
        };
        if hop_by_hop(original) {
            continue;
        }
        if let Ok(name) = HeaderName::from_bytes(original.as_bytes()) {
            headers.append(name, value.clone());
        }
    }
    // Content-Type comes unprefixed too; the prefixed copy wins when both are there.
    if !headers.contains_key(header::CONTENT_TYPE)
        && let Some(v) = agent.get(header::CONTENT_TYPE)
    {
        headers.insert(header::CONTENT_TYPE, v.clone());
    }
    // The body's length as the agent sends it (the client's may describe another framing).
    if let Some(v) = agent.get(header::CONTENT_LENGTH) {
        headers.insert(header::CONTENT_LENGTH, v.clone());
    }
    // The gateway appends the address it saw last: that hop is the client, the gateway being
    // the only proxy in front of a function.
    let client = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .and_then(|hop| hop.trim().parse::<IpAddr>().ok())
        .or_else(|| {
            headers
                .get("x-real-ip")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
        });
    Ok(Unwrapped {
        method,
        uri,
        headers,
        client,
    })
}

/// The agent's view of the client's answer: 200, the status and headers wrapped.
fn wrap_response(answer: Response, version: &HeaderValue) -> Response {
    let (parts, body) = answer.into_parts();
    let mut wrapped = Response::builder()
        .status(StatusCode::OK)
        .header("fn-http-status", parts.status.as_u16())
        .header("fn-fdk-version", version.clone());
    for (name, value) in &parts.headers {
        let name = name.as_str();
        if name == "content-type" {
            wrapped = wrapped.header(header::CONTENT_TYPE, value.clone());
        } else if !hop_by_hop(name) {
            wrapped = wrapped.header(format!("{HEADER_PREFIX}{name}"), value.clone());
        }
    }
    wrapped.body(body)
}

/// How long the call may still take: `Fn-Deadline` less a margin to answer in.
fn time_left(agent: &HeaderMap) -> Option<Duration> {
    let deadline: alarm_domain::jiff::Timestamp = agent
        .get("fn-deadline")
        .and_then(|v| v.to_str().ok())?
        .parse()
        .ok()?;
    let left = deadline.duration_since(alarm_domain::jiff::Timestamp::now());
    Some(
        Duration::try_from(left)
            .unwrap_or(Duration::ZERO)
            .saturating_sub(DEADLINE_MARGIN),
    )
}

impl<E: Endpoint> Endpoint for FnHttpStream<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        if let Some(frame) = &self.frame {
            let value = req
                .headers()
                .get(&frame.header)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            println!("\n{}={value}", frame.name);
            eprintln!("\n{}={value}", frame.name);
        }
        if req.method() != Method::POST || req.uri().path() != "/call" {
            return Ok(self.failed("the agent calls POST /call"));
        }
        let unwrapped = match unwrap_request(req.headers()) {
            Ok(u) => u,
            Err(why) => return Ok(self.failed(&why)),
        };
        let left = time_left(req.headers());
        let local = req.local_addr().clone();
        let body: Body = req.into_body();
        let mut head = poem::http::Request::builder()
            .method(unwrapped.method)
            .uri(unwrapped.uri)
            .body(())
            .map_err(|e| poem::Error::from_string(e.to_string(), StatusCode::BAD_GATEWAY))?
            .into_parts()
            .0;
        head.headers = unwrapped.headers;
        let remote = RemoteAddr(
            unwrapped
                .client
                .map_or(Addr::Custom("fn", "".into()), |ip| {
                    Addr::SocketAddr(SocketAddr::new(ip, 0))
                }),
        );
        // The gateway terminated TLS: the client spoke HTTPS.
        let parts = RequestParts::from((
            head,
            LocalAddr(local.0),
            remote,
            poem::http::uri::Scheme::HTTPS,
        ));
        let inner = Request::from_parts(parts, body);
        let timed_out = || {
            tracing::warn!("function call ran past its Fn-Deadline");
            Response::builder()
                .status(StatusCode::GATEWAY_TIMEOUT)
                .header("fn-fdk-version", self.version.clone())
                .finish()
        };
        let answer = match left {
            // Already past it: nothing is started whose answer nobody waits for (a timeout of
            // zero would still poll the call once, and a quick one would run to its end).
            Some(Duration::ZERO) => return Ok(timed_out()),
            Some(left) => match tokio::time::timeout(left, self.inner.get_response(inner)).await {
                Ok(answer) => answer,
                Err(_) => return Ok(timed_out()),
            },
            None => self.inner.get_response(inner).await,
        };
        Ok(wrap_response(answer.into_response(), &self.version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn the_socket_path_is_checked() {
        assert_eq!(
            listener_path("unix:/tmp/iofs/lsnr.sock"),
            Ok(PathBuf::from("/tmp/iofs/lsnr.sock"))
        );
        for bad in [
            "/tmp/iofs/lsnr.sock",
            "unix:relative.sock",
            "tcp:1.2.3.4:80",
        ] {
            assert!(listener_path(bad).is_err(), "{bad}");
        }
        assert!(listener_path(&format!("unix:/{}", "a".repeat(120))).is_err());
    }

    #[test]
    fn a_gateway_request_unwraps() {
        let u = unwrap_request(&agent(&[
            ("Fn-Intent", "httprequest"),
            ("Fn-Http-Method", "PATCH"),
            ("Fn-Http-Request-Url", "/api/v1/alarms/x?y=1"),
            ("Fn-Http-H-Authorization", "Bearer t"),
            ("Fn-Http-H-If-Match", "\"3\""),
            ("Fn-Http-H-Connection", "keep-alive"),
            ("Fn-Http-H-X-Forwarded-For", "203.0.113.9, 198.51.100.7"),
            ("Content-Type", "application/json"),
            ("Content-Length", "12"),
            ("Fn-Call-Id", "01ABC"),
            ("Host", "localhost"),
        ]))
        .expect("unwraps");
        assert_eq!(u.method, Method::PATCH);
        assert_eq!(u.uri, "/api/v1/alarms/x?y=1");
        assert_eq!(u.headers["authorization"], "Bearer t");
        assert_eq!(u.headers["if-match"], "\"3\"");
        assert_eq!(u.headers["content-type"], "application/json");
        assert_eq!(u.headers["content-length"], "12");
        assert!(!u.headers.contains_key("connection"));
        assert!(!u.headers.contains_key("fn-call-id") && !u.headers.contains_key("host"));
        assert_eq!(
            u.client,
            Some("198.51.100.7".parse().expect("ip")),
            "the gateway's hop"
        );
        let absolute = unwrap_request(&agent(&[
            ("Fn-Intent", "httprequest"),
            ("Fn-Http-Method", "GET"),
            (
                "Fn-Http-Request-Url",
                "http://fn.example:8080/t/app/health?x=1",
            ),
        ]))
        .expect("an absolute URL");
        assert_eq!(absolute.uri, "/t/app/health?x=1");
        assert_eq!(absolute.client, None);
    }

    #[test]
    fn only_gateway_requests_are_served() {
        for headers in [
            agent(&[("Fn-Http-Method", "GET"), ("Fn-Http-Request-Url", "/")]),
            agent(&[("Fn-Intent", "cloudevent")]),
            agent(&[("Fn-Intent", "httprequest"), ("Fn-Http-Request-Url", "/")]),
            agent(&[("Fn-Intent", "httprequest"), ("Fn-Http-Method", "GET")]),
        ] {
            assert!(unwrap_request(&headers).is_err(), "{headers:?}");
        }
    }

    #[test]
    fn an_answer_wraps() {
        let answer = Response::builder()
            .status(StatusCode::CREATED)
            .header("location", "/api/v1/alarms/1")
            .header("content-type", "application/json")
            .header("content-length", "2")
            .header("connection", "close")
            .body("{}");
        let wrapped = wrap_response(answer, &HeaderValue::from_static("v"));
        assert_eq!(wrapped.status(), StatusCode::OK);
        let h = wrapped.headers();
        assert_eq!(h["fn-http-status"], "201");
        assert_eq!(h["fn-http-h-location"], "/api/v1/alarms/1");
        assert_eq!(h["content-type"], "application/json");
        assert!(!h.contains_key("fn-http-h-content-type"));
        assert!(
            !h.contains_key("fn-http-h-content-length") && !h.contains_key("fn-http-h-connection")
        );
    }

    #[test]
    fn the_deadline_keeps_a_margin() {
        let soon = alarm_domain::jiff::Timestamp::now()
            + alarm_domain::jiff::SignedDuration::from_secs(30);
        let left = time_left(&agent(&[("Fn-Deadline", &soon.to_string())])).expect("parsed");
        assert!(
            left <= Duration::from_secs(30) - DEADLINE_MARGIN && left > Duration::from_secs(25),
            "{left:?}"
        );
        let past = time_left(&agent(&[("Fn-Deadline", "2020-12-10T01:36:13Z")])).expect("parsed");
        assert_eq!(past, Duration::ZERO);
        assert_eq!(time_left(&agent(&[])), None);
    }
}
