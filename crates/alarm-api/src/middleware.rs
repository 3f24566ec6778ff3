//! Cross-cutting request handling: the request id, the access log, and turning every error (parse failures, unknown routes, panics) into a problem.

use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseMultipartError, ParseParamError,
    ParseRequestPayloadError,
};

use crate::problem::{PROBLEM_JSON, Problem, ProblemType, REQUEST_ID};
use crate::state::AppState;

/// The header carrying the request id, in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A client's id is kept when it is short and plain (it ends up in logs).
fn accepted_id(req: &Request) -> Option<String> {
    let v = req.headers().get(REQUEST_ID_HEADER)?.to_str().ok()?;
    let ok = (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| v.to_owned())
}

/// The answer with the `RateLimit-*` headers of the tightest limit this
/// request was counted against (and `Retry-After` if it was refused), and
/// `Connection: close` on the answers after which the connection ends.
fn with_rate_headers(mut resp: Response) -> Response {
    let decision = crate::limiter::DECISION
        .try_with(|slot| {
            *slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        })
        .ok()
        .flatten();
    if let Some(d) = decision {
        crate::limiter::set_headers(&mut resp, &d);
    }
    // A limited client does not keep its connection (and its place under
    // the connection cap) for the next try. A body refused from its length
    // (413) is left unread on the connection, which the server then drops:
    // saying so keeps a client from sending its next request down it (seen
    // as a reset on the request after a 413 in CI).
    if matches!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::PAYLOAD_TOO_LARGE
    ) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// Maps an error that escaped the operations to a problem.
fn problem_for(err: poem::Error) -> Response {
    if err.is_from_response() {
        // Our own `ApiError`s and the security checker's answers: already problems.
        return err.into_response();
    }
    let status = err.status();
    let problem = if let Some(e) = err.downcast_ref::<ParseParamError>() {
        Problem::invalid(e.name, e.reason.clone()).with_status(400)
    } else if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        Problem::new(ProblemType::MalformedJson, e.reason.clone())
    } else if let Some(e) = err.downcast_ref::<ContentTypeError>() {
        Problem::new(ProblemType::UnsupportedMediaType, e.to_string())
    } else if err.is::<AuthorizationError>() || status == StatusCode::UNAUTHORIZED {
        Problem::new(
            ProblemType::Unauthorized,
            "send `Authorization: Bearer <access token>`",
        )
    } else if let Some(e) = err.downcast_ref::<ParseMultipartError>() {
        Problem::new(ProblemType::Validation, e.to_string()).with_status(400)
    } else {
        match status {
            StatusCode::NOT_FOUND => Problem::new(ProblemType::NotFound, "no such route"),
            // poem's CORS middleware refuses an origin it was not given.
            StatusCode::FORBIDDEN => Problem::new(ProblemType::Forbidden, err.to_string()),
            StatusCode::METHOD_NOT_ALLOWED => Problem::new(
                ProblemType::MethodNotAllowed,
                "this route does not accept this method",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => {
                Problem::new(ProblemType::PayloadTooLarge, err.to_string())
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                Problem::new(ProblemType::UnsupportedMediaType, err.to_string())
            }
            StatusCode::TOO_MANY_REQUESTS => {
                Problem::new(ProblemType::RateLimited, err.to_string())
            }
            s if s.is_client_error() => {
                Problem::new(ProblemType::Validation, err.to_string()).with_status(s.as_u16())
            }
            _ => {
                tracing::error!(error = %err, "unhandled error");
                Problem::new(
                    ProblemType::Internal,
                    "an unexpected error occurred; quote the request id when reporting it",
                )
            }
        }
    };
    problem.into_http()
}

/// The client's address as the trusted-proxy rule found it (`None` for a
/// peer without an IP, such as a Unix socket); handlers read it with
/// `Data<&ClientAddress>`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddress(pub(crate) Option<std::net::IpAddr>);

impl ClientAddress {
    /// The address as a counter key (`local` without one).
    pub(crate) fn key(&self) -> String {
        self.0
            .map_or_else(|| "local".to_owned(), crate::limiter::address_key)
    }
}

/// The per-request limits that need no body: every request per client
/// address (health checks aside, so a load balancer's probes never
/// starve), and `/api/v1/alarms…` per user. A refusal is the answer.
async fn guard(state: &AppState, req: &mut Request) -> Option<Response> {
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map(std::net::SocketAddr::ip);
    let client = ClientAddress(crate::limiter::client_ip(
        peer,
        req.headers(),
        &state.config.trusted_proxies,
        state.config.proxy_header,
    ));
    req.extensions_mut().insert(client);
    let path = req.uri().path();
    if path.starts_with("/health") {
        return None;
    }
    let limits = &state.config.rate_limits;
    let d = state.limiter.hit(limits.per_ip, &client.key()).await;
    if !d.allowed() {
        return Some(refusal(
            &d,
            "too many requests from this address; wait and retry",
        ));
    }
    crate::limiter::note(d);
    if path == "/api/v1/alarms" || path.starts_with("/api/v1/alarms/") {
        let user = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            // The scheme is case-insensitive, as poem's own parsing.
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .and_then(|token| {
                state
                    .tokens()
                    .verify(token.trim(), state.ports.clock.now())
                    .ok()
            })
            .map(|claims| claims.sub);
        // Without a valid token the request is answered 401 by the
        // operation; the address limit above already counted it.
        if let Some(user) = user {
            let d = state.limiter.hit(limits.alarms_per_user, &user).await;
            if !d.allowed() {
                return Some(refusal(
                    &d,
                    "too many alarm requests for this account; wait and retry",
                ));
            }
            crate::limiter::note(d);
        }
    }
    None
}

fn refusal(d: &crate::limiter::Decision, detail: &str) -> Response {
    crate::limiter::note(*d);
    crate::limiter::counted(d);
    Problem::new(ProblemType::RateLimited, detail)
        .with_quota(d.rate.name, u64::from(d.rate.limit))
        .into_http()
}

/// One request in `api_requests_in_flight`, until dropped (also when the
/// client goes away and the request's future is dropped mid-way).
struct InFlight;

impl InFlight {
    fn enter() -> Self {
        metrics::gauge!("api_requests_in_flight").increment(1.0);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("api_requests_in_flight").decrement(1.0);
    }
}

/// Wraps every request: id, rate limits, log line, problem mapping, and
/// the request metrics (`api_requests_in_flight`,
/// `api_response_duration_seconds` by route template and status class).
pub(crate) async fn around<E: Endpoint>(
    next: E,
    mut req: Request,
    state: Arc<AppState>,
    docs_policy: Arc<str>,
    templates: Arc<crate::routes::RouteTemplates>,
) -> poem::Result<Response> {
    let _in_flight = InFlight::enter();
    let id = accepted_id(&req).unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let route = templates.label(&path).to_owned();
    // The span a client's `traceparent` continues; its OpenTelemetry name
    // is the route template (bounded), never the raw path.
    let trace = alarm_telemetry::decide_for(req.headers());
    let span = alarm_telemetry::span!(
        trace,
        "request",
        request_id = %id,
        %method,
        %path,
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    let resp = REQUEST_ID
        .scope(
            id.clone(),
            crate::limiter::DECISION.scope(std::sync::Mutex::new(None), async {
                if let Some(refused) = guard(&state, &mut req).await {
                    return with_rate_headers(refused);
                }
                let resp = match next.call(req).await {
                    Ok(r) => {
                        let mut r = r.into_response();
                        if r.status() == StatusCode::PAYLOAD_TOO_LARGE
                            && r.content_type() != Some(PROBLEM_JSON)
                        {
                            r = Problem::new(ProblemType::PayloadTooLarge, "the body is too large")
                                .into_http();
                        }
                        r
                    }
                    Err(e) => problem_for(e),
                };
                with_rate_headers(resp)
            }),
        )
        .instrument(span.clone());
    let mut resp = trace.scope(resp).await;
    // Measured before a refusal is held: the hold is the server's choice,
    // not its latency.
    let elapsed = started.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    metrics::histogram!(
        "api_response_duration_seconds",
        "route" => route,
        "status_class" => crate::routes::status_class(status),
    )
    .record(elapsed);
    if resp.status() == StatusCode::TOO_MANY_REQUESTS {
        state
            .limiter
            .hold_refusal(state.config.rate_limits.refusal_delay)
            .await;
    }
    let docs_page = path.starts_with("/docs")
        && resp
            .content_type()
            .is_some_and(|t| t.starts_with("text/html"));
    crate::headers::secure(
        &mut resp,
        docs_page.then_some(&*docs_policy),
        state.config.transport.tls.is_some(),
    );
    if resp.status() == StatusCode::UNAUTHORIZED
        && !resp.headers().contains_key(header::WWW_AUTHENTICATE)
    {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    if path == "/api/v1/uploads" || path.starts_with("/api/v1/uploads/") {
        // tus: every answer says the version; a refused version lists the
        // ones served.
        let tus = HeaderValue::from_static(crate::api::uploads::TUS_VERSION);
        resp.headers_mut().insert("tus-resumable", tus.clone());
        if resp.status() == StatusCode::PRECONDITION_FAILED {
            resp.headers_mut().insert("tus-version", tus);
        }
    }
    let status = resp.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(status, elapsed_ms, "request failed");
        } else {
            tracing::info!(status, elapsed_ms, "request");
        }
    });
    Ok(resp)
}
