//! RFC 7807 problem details: the fixed list of problem types, the error every operation returns, and the request id they carry.

use alarm_domain::error::ValidationError;
use alarm_domain::services::ServiceError;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

tokio::task_local! {
    /// The id of the request being answered, set by the request-id middleware.
    pub(crate) static REQUEST_ID: String;
}

/// The current request's id (empty outside a request).
pub(crate) fn request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The stable problem types. Clients switch on `type`; titles and details
/// may change wording, types never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    /// The body is not JSON (syntax error, empty, truncated).
    MalformedJson,
    /// The input is JSON but not acceptable: unknown field, wrong type,
    /// missing field, out-of-range value, bad zone or rule, bad parameter.
    Validation,
    /// No valid credentials.
    Unauthorized,
    /// Authenticated but not allowed.
    Forbidden,
    /// No such resource for this caller (or no such route).
    NotFound,
    /// The route exists with other methods.
    MethodNotAllowed,
    /// A conditional request needs `If-Match`.
    PreconditionRequired,
    /// `If-Match` names a version that is no longer current.
    PreconditionFailed,
    /// The body did not arrive in time.
    RequestTimeout,
    /// The body exceeds the limit.
    PayloadTooLarge,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// The request conflicts with the current state.
    Conflict,
    /// The resource existed and is gone for good (an abandoned upload).
    Gone,
    /// The range asked does not overlap the content.
    RangeNotSatisfiable,
    /// Another request is changing the resource; retry after it.
    Locked,
    /// The body does not match the checksum sent with it (tus 460).
    ChecksumMismatch,
    /// Too many requests.
    RateLimited,
    /// The account holds as many as one of its quotas allows (`quota`
    /// names it, `limit` gives its size).
    QuotaExceeded,
    /// A dependency is temporarily unavailable; retry later.
    Unavailable,
    /// An unexpected failure (logged with the request id).
    Internal,
}

impl ProblemType {
    /// Every type, for documentation and tests.
    pub const ALL: [ProblemType; 20] = [
        ProblemType::MalformedJson,
        ProblemType::Validation,
        ProblemType::Unauthorized,
        ProblemType::Forbidden,
        ProblemType::NotFound,
        ProblemType::MethodNotAllowed,
        ProblemType::PreconditionRequired,
        ProblemType::PreconditionFailed,
        ProblemType::RequestTimeout,
        ProblemType::PayloadTooLarge,
        ProblemType::UnsupportedMediaType,
        ProblemType::Conflict,
        ProblemType::Gone,
        ProblemType::RangeNotSatisfiable,
        ProblemType::Locked,
        ProblemType::ChecksumMismatch,
        ProblemType::RateLimited,
        ProblemType::QuotaExceeded,
        ProblemType::Unavailable,
        ProblemType::Internal,
    ];

    /// The `type` member: a slug (a relative URI reference, as RFC 7807 allows).
    pub fn slug(self) -> &'static str {
        match self {
            ProblemType::MalformedJson => "malformed-json",
            ProblemType::Validation => "validation",
            ProblemType::Unauthorized => "unauthorized",
            ProblemType::Forbidden => "forbidden",
            ProblemType::NotFound => "not-found",
            ProblemType::MethodNotAllowed => "method-not-allowed",
            ProblemType::PreconditionRequired => "precondition-required",
            ProblemType::PreconditionFailed => "precondition-failed",
            ProblemType::RequestTimeout => "request-timeout",
            ProblemType::PayloadTooLarge => "payload-too-large",
            ProblemType::UnsupportedMediaType => "unsupported-media-type",
            ProblemType::Conflict => "conflict",
            ProblemType::Gone => "gone",
            ProblemType::RangeNotSatisfiable => "range-not-satisfiable",
            ProblemType::Locked => "locked",
            ProblemType::ChecksumMismatch => "checksum-mismatch",
            ProblemType::RateLimited => "rate-limited",
            ProblemType::QuotaExceeded => "quota-exceeded",
            ProblemType::Unavailable => "unavailable",
            ProblemType::Internal => "internal",
        }
    }

    /// The usual status (validation answers 400 for parameters, 422 for bodies).
    pub fn status(self) -> u16 {
        match self {
            ProblemType::MalformedJson => 400,
            ProblemType::Validation => 422,
            ProblemType::Unauthorized => 401,
            ProblemType::Forbidden => 403,
            ProblemType::NotFound => 404,
            ProblemType::MethodNotAllowed => 405,
            ProblemType::PreconditionRequired => 428,
            ProblemType::PreconditionFailed => 412,
            ProblemType::RequestTimeout => 408,
            ProblemType::PayloadTooLarge => 413,
            ProblemType::UnsupportedMediaType => 415,
            ProblemType::Conflict => 409,
            ProblemType::Gone => 410,
            ProblemType::RangeNotSatisfiable => 416,
            ProblemType::Locked => 423,
            ProblemType::ChecksumMismatch => 460,
            ProblemType::RateLimited => 429,
            ProblemType::QuotaExceeded => 409,
            ProblemType::Unavailable => 503,
            ProblemType::Internal => 500,
        }
    }

    fn title(self) -> &'static str {
        match self {
            ProblemType::MalformedJson => "The request body is not valid JSON",
            ProblemType::Validation => "The request is not valid",
            ProblemType::Unauthorized => "Authentication is required",
            ProblemType::Forbidden => "Not allowed",
            ProblemType::NotFound => "Not found",
            ProblemType::MethodNotAllowed => "Method not allowed",
            ProblemType::PreconditionRequired => "If-Match is required",
            ProblemType::PreconditionFailed => "The resource has changed",
            ProblemType::RequestTimeout => "The request body did not arrive in time",
            ProblemType::PayloadTooLarge => "The request body is too large",
            ProblemType::UnsupportedMediaType => "Unsupported media type",
            ProblemType::Conflict => "Conflict",
            ProblemType::Gone => "Gone",
            ProblemType::RangeNotSatisfiable => "Range not satisfiable",
            ProblemType::Locked => "Locked",
            ProblemType::ChecksumMismatch => "Checksum mismatch",
            ProblemType::RateLimited => "Too many requests",
            ProblemType::QuotaExceeded => "Quota exceeded",
            ProblemType::Unavailable => "Temporarily unavailable",
            ProblemType::Internal => "Internal error",
        }
    }
}

/// One invalid input.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
pub struct FieldError {
    /// The field path (`schedules[0].time`), parameter or header name.
    pub field: String,
    /// Why it was refused.
    pub reason: String,
}

/// An RFC 7807 problem.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
pub struct Problem {
    /// The stable problem type (see the API docs for the list).
    #[oai(rename = "type")]
    pub kind: String,
    /// A short summary of the type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened in this request.
    pub detail: String,
    /// The request id (also in the `X-Request-Id` header and the logs).
    pub request_id: String,
    /// For validation problems: each invalid input.
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<Vec<FieldError>>,
    /// For `quota-exceeded` and `rate-limited`: the quota or limit's name
    /// (`alarms_per_user`, `requests_per_ip`).
    #[oai(skip_serializing_if_is_none)]
    pub quota: Option<String>,
    /// For `quota-exceeded` and `rate-limited`: its size.
    #[oai(skip_serializing_if_is_none)]
    pub limit: Option<u64>,
}

impl Problem {
    /// A problem of `kind` with its usual status.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind: kind.slug().to_owned(),
            title: kind.title().to_owned(),
            status: kind.status(),
            detail: detail.into(),
            request_id: request_id(),
            errors: None,
            quota: None,
            limit: None,
        }
    }

    /// The same problem naming the quota or limit it hit.
    pub fn with_quota(mut self, name: &str, limit: u64) -> Self {
        self.quota = Some(name.to_owned());
        self.limit = Some(limit);
        self
    }

    /// The same problem answered with another status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// A validation problem about one input.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let (field, reason) = (field.into(), reason.into());
        let mut p = Problem::new(ProblemType::Validation, format!("{field}: {reason}"));
        p.errors = Some(vec![FieldError { field, reason }]);
        p
    }

    /// The response: `application/problem+json`, the status, and for 401
    /// the `WWW-Authenticate` challenge.
    pub fn into_http(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({
            "type": self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "request_id": self.request_id,
            "errors": self.errors.as_ref().map(|errors| errors
                .iter()
                .map(|e| serde_json::json!({"field": e.field, "reason": e.reason}))
                .collect::<Vec<_>>()),
        });
        let mut body = body;
        if let Some(map) = body.as_object_mut() {
            if self.errors.is_none() {
                map.remove("errors");
            }
            if let (Some(quota), Some(limit)) = (&self.quota, self.limit) {
                map.insert("quota".to_owned(), quota.as_str().into());
                map.insert("limit".to_owned(), limit.into());
            }
        }
        let mut resp = Response::builder()
            .status(status)
            .content_type(PROBLEM_JSON)
            .body(body.to_string());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Every 503 is transient here (a dependency, a full queue).
            resp.headers_mut().insert(
                poem::http::header::RETRY_AFTER,
                poem::http::HeaderValue::from_static("1"),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                poem::http::header::WWW_AUTHENTICATE,
                poem::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

impl From<ValidationError> for Problem {
    fn from(e: ValidationError) -> Self {
        Problem::invalid(e.field(), format!("{} ({})", e.message(), e.code()))
    }
}

/// The error of every operation: a problem, in the spec under each status
/// it can have.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// Malformed JSON or an invalid parameter.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// Missing, invalid, expired or revoked credentials.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// Not allowed for this caller.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource for this caller.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// Conflicts with the current state.
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// `If-Match` names a stale version.
    #[oai(status = 412, content_type = "application/problem+json")]
    PreconditionFailed(Json<Problem>),
    /// 410.
    #[oai(status = 410, content_type = "application/problem+json")]
    Gone(Json<Problem>),
    /// 416, with `Content-Range: bytes */size`.
    #[oai(status = 416, content_type = "application/problem+json")]
    RangeNotSatisfiable(
        Json<Problem>,
        #[oai(header = "Content-Range")] Option<String>,
    ),
    /// 423.
    #[oai(status = 423, content_type = "application/problem+json")]
    Locked(Json<Problem>),
    /// 460 (tus: checksum mismatch).
    #[oai(status = 460, content_type = "application/problem+json")]
    ChecksumMismatch(Json<Problem>),
    /// The body did not arrive within the server's body timeout.
    #[oai(status = 408, content_type = "application/problem+json")]
    RequestTimeout(Json<Problem>),
    /// The body exceeds 1 MiB.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body is not JSON.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// The body is JSON but invalid.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// `If-Match` is required.
    #[oai(status = 428, content_type = "application/problem+json")]
    PreconditionRequired(Json<Problem>),
    /// Too many requests; `Retry-After` says when to retry (seconds).
    #[oai(status = 429, content_type = "application/problem+json")]
    RateLimited(Json<Problem>, #[oai(header = "Retry-After")] Option<u64>),
    /// An unexpected failure.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// A dependency is unavailable (or the server is saturated); retry
    /// after `Retry-After` seconds.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] Option<u64>),
}

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        let j = Json(p);
        match j.status {
            400 => ApiError::BadRequest(j),
            401 => ApiError::Unauthorized(j),
            403 => ApiError::Forbidden(j),
            404 => ApiError::NotFound(j),
            409 => ApiError::Conflict(j),
            412 => ApiError::PreconditionFailed(j),
            410 => ApiError::Gone(j),
            416 => ApiError::RangeNotSatisfiable(j, None),
            423 => ApiError::Locked(j),
            460 => ApiError::ChecksumMismatch(j),
            408 => ApiError::RequestTimeout(j),
            413 => ApiError::PayloadTooLarge(j),
            415 => ApiError::UnsupportedMediaType(j),
            422 => ApiError::Unprocessable(j),
            428 => ApiError::PreconditionRequired(j),
            429 => ApiError::RateLimited(j, None),
            503 => ApiError::Unavailable(j, Some(1)),
            _ => ApiError::Internal(j),
        }
    }
}

impl ApiError {
    /// The problem inside.
    pub fn problem(&self) -> &Problem {
        match self {
            ApiError::BadRequest(j)
            | ApiError::Unauthorized(j)
            | ApiError::Forbidden(j)
            | ApiError::NotFound(j)
            | ApiError::Conflict(j)
            | ApiError::PreconditionFailed(j)
            | ApiError::Gone(j)
            | ApiError::RangeNotSatisfiable(j, _)
            | ApiError::Locked(j)
            | ApiError::ChecksumMismatch(j)
            | ApiError::RequestTimeout(j)
            | ApiError::PayloadTooLarge(j)
            | ApiError::UnsupportedMediaType(j)
            | ApiError::Unprocessable(j)
            | ApiError::PreconditionRequired(j)
            | ApiError::RateLimited(j, _)
            | ApiError::Internal(j)
            | ApiError::Unavailable(j, _) => &j.0,
        }
    }

    /// Shorthand for a problem of `kind`.
    pub fn of(kind: ProblemType, detail: impl Into<String>) -> Self {
        Problem::new(kind, detail).into()
    }

    /// A 429 asking the client to wait `seconds`.
    pub fn rate_limited(seconds: u64, detail: impl Into<String>) -> Self {
        ApiError::RateLimited(
            Json(Problem::new(ProblemType::RateLimited, detail)),
            Some(seconds),
        )
    }

    /// The 404 every owner-scoped miss answers.
    pub fn not_found() -> Self {
        ApiError::of(ProblemType::NotFound, "no such resource")
    }

    /// An opaque 500; the cause goes to the log with the request id.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %error_chain(cause), "internal error");
        ApiError::of(
            ProblemType::Internal,
            "an unexpected error occurred; quote the request id when reporting it",
        )
    }
}

/// `e: cause: cause…` for logs.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    alarm_domain::error::chain(e)
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        Problem::from(e).into()
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(v) => v.into(),
            ServiceError::NotFound => ApiError::not_found(),
            ServiceError::Forbidden => {
                ApiError::of(ProblemType::Forbidden, "this action needs another role")
            }
            ServiceError::Conflict(what) => ApiError::of(ProblemType::Conflict, what),
            ServiceError::StaleVersion { actual, .. } => ApiError::of(
                ProblemType::PreconditionFailed,
                format!("the current version is \"{actual}\""),
            ),
            ServiceError::NotRinging => {
                ApiError::of(ProblemType::Conflict, "the alarm is not ringing")
            }
            ServiceError::SnoozeLimit { max } => ApiError::of(
                ProblemType::Conflict,
                format!("the occurrence was already snoozed {max} times"),
            ),
            ServiceError::OverQuota { quota, limit } => Problem::new(
                ProblemType::QuotaExceeded,
                format!("the account already holds {limit}, the most `{quota}` allows"),
            )
            .with_quota(quota, u64::from(limit))
            .into(),
            ServiceError::Unavailable(cause) => {
                tracing::warn!(error = %error_chain(&cause), "store unavailable");
                ApiError::of(
                    ProblemType::Unavailable,
                    "the database is temporarily unavailable; retry shortly",
                )
            }
            ServiceError::Unexpected(cause) => ApiError::internal(&cause),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.into_http()
    }
}
