//! Smart Alarm's HTTP API as a library: poem-openapi operations over the domain services, bearer-JWT auth, RFC 7807 errors, request ids and limits; [`app`] gives an endpoint that a binary serves and a test mounts on a real socket.
//!
//! Order of checks in every owner-scoped operation: 401 (credentials), then
//! 404 (the path id is not the caller's), then 428/412 (`If-Match`), then
//! 400/422 (the body). Bodies are read by [`body::JsonBody`], which holds
//! a parse failure until the handler asks for it.

// Problems are built on the error path only, once per failed request; boxing
// them would add an allocation and noise to every `?` for no measurable gain.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod body;
pub mod dto;
pub mod fnproject;
pub mod lenient;
pub mod limiter;
pub mod links;
pub mod problem;
pub mod state;
pub mod transport;

mod active;
mod api;
mod hashing;
mod headers;
mod idem;
mod middleware;
mod routes;

use std::sync::Arc;

use poem::endpoint::BoxEndpoint;
use poem::middleware::{CatchPanic, Cors};
use poem::{EndpointExt, Route};
use poem_openapi::OpenApiService;

pub use auth::{TokenConfig, Tokens};
pub use middleware::REQUEST_ID_HEADER;
pub use problem::{ApiError, PROBLEM_JSON, Problem, ProblemType};
pub use state::{AccountMailer, ApiConfig, AppState, HealthCheck};

type Apis = (
    api::accounts::AccountsApi,
    api::alarms::AlarmsApi,
    api::ringing::RingingApi,
    api::webhooks::WebhooksApi,
    api::api_keys::ApiKeysApi,
    api::calendar::ExceptionPeriodsApi,
    api::calendar::HolidayPreferencesApi,
    api::calendar::HolidaysApi,
    api::routines::RoutinesApi,
    api::routines::AlarmRoutinesApi,
    api::uploads::UploadsApi,
    api::sounds::SoundsApi,
    api::sounds::SoundLinksApi,
    api::health::HealthApi,
    api::keys::KeysApi,
);

fn service(server: Option<&str>) -> OpenApiService<Apis, ()> {
    let service = OpenApiService::new(
        (
            api::accounts::AccountsApi,
            api::alarms::AlarmsApi,
            api::ringing::RingingApi,
            api::webhooks::WebhooksApi,
            api::api_keys::ApiKeysApi,
            api::calendar::ExceptionPeriodsApi,
            api::calendar::HolidayPreferencesApi,
            api::calendar::HolidaysApi,
            api::routines::RoutinesApi,
            api::routines::AlarmRoutinesApi,
            api::uploads::UploadsApi,
            api::sounds::SoundsApi,
            api::sounds::SoundLinksApi,
            api::health::HealthApi,
            api::keys::KeysApi,
        ),
        "Smart Alarm API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Alarms that ring at the right wall time in any IANA time zone.\n\n\
         Errors are RFC 7807 `application/problem+json` documents whose `type` is one of: \
         malformed-json, validation, unauthorized, forbidden, not-found, method-not-allowed, \
         precondition-required, precondition-failed, request-timeout, payload-too-large, \
         unsupported-media-type, conflict, gone, range-not-satisfiable, locked, checksum-mismatch, \
         rate-limited, quota-exceeded, unavailable, internal. Every response carries `X-Request-Id`.",
    );
    match server {
        Some(url) => service.server(url.to_owned()),
        None => service,
    }
}

/// The OpenAPI document (JSON), as served at `/openapi.json` and written
/// to docs/openapi.json by `cargo xtask codegen`.
pub fn openapi_json() -> String {
    service(None).spec()
}

/// The whole HTTP surface: `/api/v1/...`, `/health...`, `/openapi.json`
/// and the docs UI at `/docs`.
pub fn app(state: Arc<AppState>) -> BoxEndpoint<'static> {
    let service = service(state.config.base_url.as_deref());
    let docs_policy: Arc<str> = headers::docs_csp(&service.swagger_ui_html()).into();
    let templates = Arc::new(routes::RouteTemplates::from_spec(&service.spec()));
    let spec = service.spec_endpoint();
    let docs = service.swagger_ui();
    let cors = (!state.config.cors_origins.is_empty()).then(|| {
        state
            .config
            .cors_origins
            .iter()
            .fold(Cors::new(), |c, o| c.allow_origin(o.as_str()))
            .allow_credentials(false)
            .expose_headers([
                "etag",
                "location",
                "x-request-id",
                "content-range",
                "accept-ranges",
                "retry-after",
                "tus-resumable",
                "tus-version",
                "tus-extension",
                "tus-max-size",
                "tus-checksum-algorithm",
                "upload-offset",
                "upload-length",
                "upload-expires",
            ])
    });
    let outer = state.clone();
    let route = Route::new()
        .nest("/", service)
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .data(state)
        .with_if(cors.is_some(), cors.unwrap_or_default())
        .with(
            CatchPanic::new().with_handler(|_payload: Box<dyn std::any::Any + Send>| {
                // The apps' panic hook has logged the message (scrubbed of
                // secrets) and its place; this line, inside the request's
                // span, ties it to the request id.
                tracing::error!("a request handler panicked");
                Problem::new(
                    ProblemType::Internal,
                    "an unexpected error occurred; quote the request id when reporting it",
                )
                .into_http()
            }),
        )
        .around(move |next, req| {
            middleware::around(
                next,
                req,
                outer.clone(),
                docs_policy.clone(),
                templates.clone(),
            )
        });
    route.boxed()
}

/// The API served on a real socket, for tests and for embedding in another
/// binary; stopped gracefully by [`Running::stop`].
pub struct Running {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// The bound address (useful after binding port 0).
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s), waits.
    ///
    /// # Errors
    /// The server's I/O error, if it failed.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// Binds `addr` and serves [`app`] in a background task, behind the
/// connection cap, deadlines and TLS of `state`'s [`transport::Transport`].
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(state: Arc<AppState>, addr: std::net::SocketAddr) -> std::io::Result<Running> {
    use poem::listener::{Acceptor, Listener, TcpListener};
    let acceptor = transport::GuardedAcceptor::new(
        TcpListener::bind(addr).into_acceptor().await?,
        state.config.transport.clone(),
    );
    let addr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .unwrap_or(addr);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        poem::Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                app(state),
                async {
                    let _ = stopped.await;
                },
                Some(std::time::Duration::from_secs(5)),
            )
            .await
    });
    Ok(Running {
        addr,
        stop: Some(stop),
        task,
    })
}
