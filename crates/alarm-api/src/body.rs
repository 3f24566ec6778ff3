//! The JSON request body extractor: reads at most 1 MiB (16 KiB for credentials) from the stream and parses with serde, holding any failure for the handler to report after the ownership and precondition checks.

use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::problem::{ApiError, Problem, ProblemType};

/// The largest accepted body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The largest accepted body of the account operations (register, login,
/// refresh, password and profile changes): their fields are bounded far
/// below it (an e-mail of 254 characters, a password of 1,024 bytes), so a
/// bigger body is refused from its `Content-Length` before it is read.
/// Anonymous callers can reach login and register, and each 1 MiB body
/// read and parsed there was work anyone could demand.
pub const CREDENTIALS_BODY_BYTES: usize = 16 * 1024;

/// A JSON body parsed into `T`, or the problem that parsing found.
///
/// poem-openapi's own `Json` fails the request before the handler runs, so
/// a garbage body for another user's alarm would answer 400 and reveal
/// nothing useful while breaking the documented order of checks (401, 404,
/// 428/412, then the body). This extractor never fails: the handler calls
/// [`JsonBody::into_inner`] when it is ready to judge the body.
///
/// The size limit is applied to the stream rather than through poem's
/// `SizeLimit`, which answers 411 to any request without `Content-Length`.
#[derive(Debug)]
pub struct JsonBody<T, const MAX: usize = MAX_BODY_BYTES> {
    parsed: Result<T, Problem>,
    fingerprint: [u8; 32],
}

impl<T, const MAX: usize> JsonBody<T, MAX> {
    /// SHA-256 of the body's canonical JSON (object keys sorted, no
    /// insignificant whitespace), so a retried request matches its first
    /// try however the client formats it.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The parsed body.
    ///
    /// # Errors
    /// The problem with the body: 415, 413, 400 `malformed-json`, 422 `validation`.
    pub fn into_inner(self) -> Result<T, ApiError> {
        self.parsed.map_err(ApiError::from)
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses `bytes` as JSON, then as `T` naming the field path of a type
/// error; also returns the canonical fingerprint.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> (Result<T, Problem>, [u8; 32]) {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        let p = Problem::new(
            ProblemType::MalformedJson,
            "the request body is empty; a JSON object is expected",
        );
        return (Err(p), [0; 32]);
    }
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            let p = Problem::new(ProblemType::MalformedJson, e.to_string());
            return (Err(p), [0; 32]);
        }
    };
    let fingerprint: [u8; 32] = Sha256::digest(value.to_string().as_bytes()).into();
    (parse_value(value), fingerprint)
}

fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Problem> {
    let parsed = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // serde_json appends the position; the field path says more.
        let reason = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let mut field = if path == "." { String::new() } else { path };
                // Inside a tagged union serde loses the path's last step;
                // an unknown member is still named in the message.
                if let Some(name) = reason
                    .strip_prefix("unknown field `")
                    .and_then(|r| r.split('`').next())
                    && !field.ends_with(name)
                {
                    if !field.is_empty() {
                        field.push('.');
                    }
                    field.push_str(name);
                }
                if field.is_empty() {
                    field = "body".to_owned();
                }
                Problem::invalid(field, reason)
            }
            _ => Problem::new(ProblemType::MalformedJson, message),
        }
    })?;
    Ok(parsed)
}

async fn read(request: &Request, body: &mut RequestBody, max: usize) -> Result<Vec<u8>, Problem> {
    match request.content_type() {
        Some(ct) if is_json(ct) => {}
        Some(ct) => {
            return Err(Problem::new(
                ProblemType::UnsupportedMediaType,
                format!("content type `{ct}` is not accepted; send application/json"),
            ));
        }
        None => {
            return Err(Problem::new(
                ProblemType::UnsupportedMediaType,
                "the request has no Content-Type; send application/json",
            ));
        }
    }
    let too_large = || {
        Problem::new(
            ProblemType::PayloadTooLarge,
            format!("the body exceeds {max} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let Ok(body) = body.take() else {
        return Ok(Vec::new());
    };
    let mut bytes = Vec::with_capacity(declared.map_or(1024, |n| n as usize));
    // A client that trickles its body holds a connection and a task: it
    // gets the operator's body timeout, then 408.
    let limit = request
        .data::<std::sync::Arc<crate::state::AppState>>()
        .map_or(std::time::Duration::from_secs(30), |s| {
            s.config.body_timeout
        });
    let mut stream = body.into_async_read().take(max as u64 + 1);
    let reading = stream.read_to_end(&mut bytes);
    tokio::time::timeout(limit, reading)
        .await
        .map_err(|_| {
            Problem::new(
                ProblemType::RequestTimeout,
                format!("the body did not arrive within {} s", limit.as_secs()),
            )
        })?
        .map_err(|e| {
            Problem::new(
                ProblemType::MalformedJson,
                format!("the body could not be read: {e}"),
            )
            .with_status(400)
        })?;
    if bytes.len() > max {
        return Err(too_large());
    }
    Ok(bytes)
}

impl<'a, T, const MAX: usize> ApiExtractor<'a> for JsonBody<T, MAX>
where
    T: Type + DeserializeOwned + Send,
{
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: T::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let (parsed, fingerprint) = match read(request, body, MAX).await {
            Ok(bytes) => parse_json(&bytes),
            Err(p) => (Err(p), [0; 32]),
        };
        Ok(JsonBody {
            parsed,
            fingerprint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        items: Vec<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
    #[allow(dead_code)]
    enum Inner {
        Daily { time: String },
        Once { date: String, time: String },
    }

    fn problem(body: &str) -> Problem {
        parse_json::<Outer>(body.as_bytes())
            .0
            .expect_err("must fail")
    }

    #[test]
    fn errors_name_the_field_and_the_class() {
        assert_eq!(problem("{").kind, "malformed-json");
        assert_eq!(problem("").kind, "malformed-json");
        let p = problem(r#"{"name": 3, "items": []}"#);
        assert_eq!((p.kind.as_str(), p.status), ("validation", 422));
        assert_eq!(p.errors.expect("errors")[0].field, "name");
        let p =
            problem(r#"{"name": "a", "items": [{"kind": "daily", "time": "07:00", "extra": 1}]}"#);
        let e = &p.errors.expect("errors")[0];
        assert_eq!(e.field, "items[0].extra");
        assert!(e.reason.contains("unknown field `extra`"), "{}", e.reason);
        let p = problem(r#"{"name": "a", "items": [{"kind": "weekly"}]}"#);
        assert!(
            p.errors.expect("errors")[0]
                .reason
                .contains("unknown variant `weekly`")
        );
        let p = problem(r#"{"name": "a", "items": [], "x": 1}"#);
        assert!(
            p.errors.expect("errors")[0]
                .reason
                .contains("unknown field `x`")
        );
        let (ok, a) = parse_json::<Outer>(
            br#"{"name": "a", "items": [{"kind": "once", "date": "2026-01-01", "time": "07:00"}]}"#,
        );
        assert!(ok.is_ok());
        let (_, b) = parse_json::<Outer>(
            br#"{ "items": [{"time": "07:00", "date": "2026-01-01", "kind": "once"}],  "name": "a" }"#,
        );
        assert_eq!(a, b, "the fingerprint ignores key order and whitespace");
    }
}
