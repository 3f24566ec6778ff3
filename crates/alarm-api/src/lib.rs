//! Smart Alarm's HTTP API as a library: poem-openapi operations over the domain services, bearer-JWT auth, RFC 7807 errors, request ids and limits; [`app`] gives an endpoint that a binary serves and a test mounts on a real socket.
//!
//! Order of checks in every owner-scoped operation: 401 (credentials), then
//! 404 (the path id is not the caller's), then 428/412 (`If-Match`), then
//! 400/422 (the body). Bodies are read by [`body::JsonBody`], which holds
//! a parse failure until the handler asks for it.

pub mod auth;
pub mod body;
pub mod dto;
pub mod problem;
pub mod state;

mod api;
mod middleware;

use std::sync::Arc;

use poem::endpoint::BoxEndpoint;
use poem::middleware::{CatchPanic, Cors};
use poem::{EndpointExt, Route};
use poem_openapi::OpenApiService;

pub use auth::{TokenConfig, Tokens};
pub use middleware::REQUEST_ID_HEADER;
pub use problem::{ApiError, PROBLEM_JSON, Problem, ProblemType};
pub use state::{ApiConfig, AppState, HealthCheck};

type Apis = (
    api::accounts::AccountsApi,
    api::alarms::AlarmsApi,
    api::health::HealthApi,
);

fn service(server: Option<&str>) -> OpenApiService<Apis, ()> {
    let service = OpenApiService::new(
        (
            api::accounts::AccountsApi,
            api::alarms::AlarmsApi,
            api::health::HealthApi,
        ),
        "Smart Alarm API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Alarms that ring at the right wall time in any IANA time zone.\n\n\
         Errors are RFC 7807 `application/problem+json` documents whose `type` is one of: \
         malformed-json, validation, unauthorized, forbidden, not-found, method-not-allowed, \
         precondition-required, precondition-failed, payload-too-large, unsupported-media-type, \
         conflict, rate-limited, unavailable, internal. Every response carries `X-Request-Id`.",
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
    let spec = service.spec_endpoint();
    let docs = service.swagger_ui();
    let cors = (!state.config.cors_origins.is_empty()).then(|| {
        state
            .config
            .cors_origins
            .iter()
            .fold(Cors::new(), |c, o| c.allow_origin(o.as_str()))
            .allow_credentials(false)
            .expose_headers(["etag", "location", "x-request-id"])
    });
    let route = Route::new()
        .nest("/", service)
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .data(state)
        .with_if(cors.is_some(), cors.unwrap_or_default())
        .with(CatchPanic::new().with_handler(|_| {
            Problem::new(
                ProblemType::Internal,
                "an unexpected error occurred; quote the request id when reporting it",
            )
            .into_http()
        }))
        .around(middleware::around);
    route.boxed()
}
