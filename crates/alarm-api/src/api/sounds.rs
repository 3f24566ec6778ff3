//! `/api/v1/sounds`: the caller's sounds (what completed uploads became): list, read, stream the bytes with `Range` and `ETag`, delete one no alarm names.

use std::ops::Range;
use std::sync::Arc;

use alarm_domain::ids::BlobId;
use alarm_domain::model::Sound;
use alarm_domain::services::SoundError;
use futures_util::TryStreamExt as _;
use poem::http::{HeaderValue, StatusCode, header};
use poem::web::Data;
use poem::{IntoResponse, Response};
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::registry::{
    MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use crate::auth::BearerAuth;
use crate::dto::{SoundList, SoundView};
use crate::problem::{ApiError, Problem, ProblemType};
use crate::state::AppState;

/// The caller's sounds.
#[derive(ApiResponse)]
pub(crate) enum Listed {
    /// Every sound, oldest first.
    #[oai(status = 200)]
    Ok(Json<SoundList>),
}

/// One sound.
#[derive(ApiResponse)]
pub(crate) enum Got {
    /// The sound.
    #[oai(status = 200)]
    Ok(Json<SoundView>),
}

/// Deleted.
#[derive(ApiResponse)]
pub(crate) enum Deleted {
    /// The sound and its bytes are gone.
    #[oai(status = 204)]
    Done,
}

/// A sound's bytes: whole, a range of them, or "not modified"; with the
/// `Cache-Control` its route gives.
pub(crate) struct Content {
    answer: Answer,
    cache: String,
}

enum Answer {
    Bytes {
        sound: Sound,
        served: Range<u64>,
        partial: bool,
        body: poem::Body,
    },
    NotModified(Sound),
}

/// A sound's strong validator: sounds never change, so their id is one.
fn etag(sound: &Sound) -> String {
    format!("\"{}\"", sound.id)
}

fn set(resp: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

impl IntoResponse for Content {
    fn into_response(self) -> Response {
        let (mut resp, sound) = match self.answer {
            Answer::NotModified(sound) => (
                Response::builder()
                    .status(StatusCode::NOT_MODIFIED)
                    .finish(),
                sound,
            ),
            Answer::Bytes {
                sound,
                served,
                partial,
                body,
            } => {
                let mut resp = Response::builder()
                    .status(if partial {
                        StatusCode::PARTIAL_CONTENT
                    } else {
                        StatusCode::OK
                    })
                    .content_type(sound.content_type.as_str())
                    .body(body);
                set(
                    &mut resp,
                    header::CONTENT_LENGTH,
                    &(served.end - served.start).to_string(),
                );
                if partial {
                    set(
                        &mut resp,
                        header::CONTENT_RANGE,
                        &format!("bytes {}-{}/{}", served.start, served.end - 1, sound.size),
                    );
                }
                (resp, sound)
            }
        };
        set(&mut resp, header::ETAG, &etag(&sound));
        set(&mut resp, header::ACCEPT_RANGES, "bytes");
        set(&mut resp, header::CACHE_CONTROL, &self.cache);
        resp
    }
}

impl ApiResponse for Content {
    fn meta() -> MetaResponses {
        let header = |name: &str, description: &str| MetaHeader {
            name: name.to_owned(),
            description: Some(description.to_owned()),
            required: true,
            deprecated: false,
            schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new("string"))),
        };
        // The types the sniffer gives (`model::audio_type`).
        let audio = || {
            [
                "audio/mpeg",
                "audio/ogg",
                "audio/wav",
                "audio/aac",
                "audio/mp4",
                "audio/flac",
            ]
            .into_iter()
            .map(|content_type| MetaMediaType {
                content_type,
                schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format(
                    "string", "binary",
                ))),
            })
            .collect()
        };
        MetaResponses {
            responses: vec![
                MetaResponse {
                    description: "The whole sound, with its sniffed media type.",
                    status: Some(200),
                    status_range: None,
                    content: audio(),
                    headers: vec![
                        header("ETag", "The sound's validator."),
                        header("Accept-Ranges", "`bytes`."),
                    ],
                },
                MetaResponse {
                    description: "The range asked for (one range: `bytes=a-b`, `bytes=a-` or `bytes=-n`).",
                    status: Some(206),
                    status_range: None,
                    content: audio(),
                    headers: vec![
                        header("Content-Range", "`bytes a-b/size`."),
                        header("ETag", "The sound's validator."),
                    ],
                },
                MetaResponse {
                    description: "`If-None-Match` names the sound's ETag.",
                    status: Some(304),
                    status_range: None,
                    content: vec![],
                    headers: vec![header("ETag", "The sound's validator.")],
                },
            ],
        }
    }

    fn register(_registry: &mut Registry) {}
}

fn sound_id(raw: &str) -> Result<BlobId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

fn refusal(e: SoundError) -> ApiError {
    match e {
        SoundError::NotFound => ApiError::not_found(),
        SoundError::InUse(why) => ApiError::of(ProblemType::Conflict, why),
        SoundError::RangeNotSatisfiable { size } => ApiError::RangeNotSatisfiable(
            Json(Problem::new(
                ProblemType::RangeNotSatisfiable,
                format!("the sound has {size} bytes"),
            )),
            Some(format!("bytes */{size}")),
        ),
        SoundError::Blob(alarm_domain::ports::BlobError::Unexpected(e)) => {
            tracing::warn!(error = %crate::problem::error_chain(e.as_ref()), "object storage failed");
            ApiError::of(
                ProblemType::Unavailable,
                "storage is unavailable; retry shortly",
            )
        }
        other => ApiError::internal(&other),
    }
}

/// One `Range: bytes=…` of a sound of `size` bytes, as asked (whether it
/// can be answered is the domain's `clamp_range`, judged when the bytes are
/// read): `None` for the whole sound (no header, several ranges, or one
/// this does not parse, which RFC 9110 says to ignore).
fn range(raw: Option<&str>, size: u64) -> Option<Range<u64>> {
    let spec = raw.and_then(|r| r.trim().strip_prefix("bytes="))?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    match (first.parse::<u64>(), last.parse::<u64>()) {
        (Ok(a), Ok(b)) if a <= b => Some(a..b.saturating_add(1)),
        (Ok(a), Err(_)) if last.is_empty() => Some(a..u64::MAX),
        // The last `n` bytes.
        (Err(_), Ok(n)) if first.is_empty() && n > 0 => Some(size.saturating_sub(n)..u64::MAX),
        (Err(_), Ok(0)) if first.is_empty() => Some(0..0),
        _ => None,
    }
}

pub(crate) struct SoundsApi;

#[OpenApi(prefix_path = "/api/v1/sounds", tag = "ApiTags::Sounds")]
impl SoundsApi {
    /// List the caller's sounds.
    ///
    /// Upload one at `/api/v1/uploads` (tus 1.0); name it in an alarm's
    /// `sound_id`. At most `QUOTA_SOUNDS_PER_USER` (default 50) sounds and
    /// `QUOTA_SOUND_MEGABYTES_PER_USER` (default 500) MiB per account.
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
    ) -> Result<Listed, ApiError> {
        let sounds = state
            .sounds
            .list(auth.0.actor().user)
            .await
            .map_err(refusal)?;
        Ok(Listed::Ok(Json(SoundList {
            items: sounds.iter().map(|s| view(&state, s)).collect(),
        })))
    }

    /// Read a sound.
    #[oai(path = "/:id", method = "get")]
    async fn get(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Sound id.
        id: Path<String>,
    ) -> Result<Got, ApiError> {
        let sound = state
            .sounds
            .get(auth.0.actor().user, sound_id(&id.0)?)
            .await
            .map_err(refusal)?;
        Ok(Got::Ok(Json(view(&state, &sound))))
    }

    /// A sound's bytes, streamed.
    ///
    /// `Range: bytes=a-b` (one range) answers 206 with `Content-Range`; a
    /// range past the end is 416. `If-None-Match` with the `ETag` answers
    /// 304. Served with the media type its bytes showed.
    #[oai(path = "/:id/content", method = "get")]
    async fn content(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Sound id.
        id: Path<String>,
        /// `bytes=first-last`, `bytes=first-` or `bytes=-suffix`.
        #[oai(name = "Range")]
        range_header: Header<Option<String>>,
        /// The `ETag` a cached copy has.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
        /// Serve the range only if the sound is still this `ETag`.
        #[oai(name = "If-Range")]
        if_range: Header<Option<String>>,
    ) -> Result<Content, ApiError> {
        let conditions = Conditions {
            range: range_header.0,
            if_none_match: if_none_match.0,
            if_range: if_range.0,
        };
        // Only its owner may read it; it never changes under its id.
        serve(
            &state,
            auth.0.actor().user,
            sound_id(&id.0)?,
            conditions,
            "private, max-age=86400, immutable".to_owned(),
        )
        .await
    }

    /// Delete a sound (409 while an alarm names it).
    #[oai(path = "/:id", method = "delete")]
    async fn delete(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Sound id.
        id: Path<String>,
    ) -> Result<Deleted, ApiError> {
        state
            .sounds
            .delete(auth.0.actor().user, sound_id(&id.0)?)
            .await
            .map_err(refusal)?;
        Ok(Deleted::Done)
    }
}

fn view(state: &AppState, sound: &Sound) -> SoundView {
    let link = state
        .config
        .sound_links
        .as_ref()
        .map(|links| links.sign(sound.owner, sound.id, state.ports.clock.now()));
    SoundView::new(
        sound,
        state.location(&format!("sounds/{}/content", sound.id)),
        link,
    )
}

/// The conditional and range headers of a read.
struct Conditions {
    range: Option<String>,
    if_none_match: Option<String>,
    if_range: Option<String>,
}

/// The owner's sound's bytes as `conditions` ask, with `cache` as its
/// `Cache-Control`.
async fn serve(
    state: &AppState,
    owner: alarm_domain::ids::UserId,
    id: BlobId,
    conditions: Conditions,
    cache: String,
) -> Result<Content, ApiError> {
    let sound = state.sounds.get(owner, id).await.map_err(refusal)?;
    let tag = etag(&sound);
    let same = |t: &str| {
        let t = t.trim().trim_start_matches("W/");
        t == "*" || t == tag
    };
    if conditions
        .if_none_match
        .as_deref()
        .is_some_and(|v| v.split(',').any(same))
    {
        return Ok(Content {
            answer: Answer::NotModified(sound),
            cache,
        });
    }
    let ranged = if conditions
        .if_range
        .as_deref()
        .is_none_or(|v| v.trim() == tag)
    {
        range(conditions.range.as_deref(), sound.size)
    } else {
        None
    };
    let (sound, served, stream) = state
        .sounds
        .content(owner, id, ranged.clone())
        .await
        .map_err(refusal)?;
    Ok(Content {
        answer: Answer::Bytes {
            sound,
            served,
            partial: ranged.is_some(),
            body: poem::Body::from_bytes_stream(stream.map_err(std::io::Error::other)),
        },
        cache,
    })
}

pub(crate) struct SoundLinksApi;

#[OpenApi(prefix_path = "/api/v1/sound-links", tag = "ApiTags::Sounds")]
impl SoundLinksApi {
    /// A sound's bytes by a signed link.
    ///
    /// With `CDN_BASE_URL` set, each sound carries a `link` under that base
    /// that works without credentials until `link_expires_at` (at least
    /// `SOUND_LINK_TTL_SECONDS`), for a CDN to fetch from this API and
    /// cache (`Cache-Control: public` until the expiry). A link altered or
    /// expired is 403. `Range`, `If-None-Match` and `If-Range` as on
    /// `/api/v1/sounds/{id}/content`. Without `CDN_BASE_URL`, 404.
    #[oai(path = "/:owner/:id", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn content(
        &self,
        state: Data<&Arc<AppState>>,
        /// The sound's owner.
        owner: Path<String>,
        /// Sound id.
        id: Path<String>,
        /// Unix seconds after which the link stops working.
        expires: Query<i64>,
        /// The link's signature.
        signature: Query<String>,
        /// `bytes=first-last`, `bytes=first-` or `bytes=-suffix`.
        #[oai(name = "Range")]
        range_header: Header<Option<String>>,
        /// The `ETag` a cached copy has.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
        /// Serve the range only if the sound is still this `ETag`.
        #[oai(name = "If-Range")]
        if_range: Header<Option<String>>,
    ) -> Result<Content, ApiError> {
        let Some(links) = state.config.sound_links.as_ref() else {
            return Err(ApiError::not_found());
        };
        let owner = owner
            .0
            .parse::<alarm_domain::ids::UserId>()
            .map_err(|_| ApiError::not_found())?;
        let id = sound_id(&id.0)?;
        let now = state.ports.clock.now();
        let Some(left) = links.check(owner, id, expires.0, &signature.0, now) else {
            return Err(ApiError::of(
                ProblemType::Forbidden,
                "the link is altered or expired; ask the API for a new one",
            ));
        };
        let conditions = Conditions {
            range: range_header.0,
            if_none_match: if_none_match.0,
            if_range: if_range.0,
        };
        let cache = format!("public, max-age={}", left.min(86_400));
        serve(&state, owner, id, conditions, cache).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_as_rfc_9110_says() {
        // Parsed here, judged by the domain's one rule, as `serve` does.
        let r = |s: &str| match range(Some(s), 1000) {
            Some(asked) => alarm_domain::ports::clamp_range(asked.clone(), 1000)
                .map(|_| Some(asked))
                .map_err(|e| refusal(e.into()).problem().status),
            None => Ok(None),
        };
        assert_eq!(r("bytes=0-99"), Ok(Some(0..100)));
        assert_eq!(r("bytes=900-"), Ok(Some(900..u64::MAX)));
        assert_eq!(r("bytes=-100"), Ok(Some(900..u64::MAX)));
        assert_eq!(r("bytes=-5000"), Ok(Some(0..u64::MAX)));
        assert_eq!(r("bytes=990-2000"), Ok(Some(990..2001)));
        assert_eq!(r("bytes=1000-"), Err(416));
        assert_eq!(r("bytes=-0"), Err(416));
        assert_eq!(r("bytes=0-1,5-6"), Ok(None), "several ranges: the whole");
        assert_eq!(r("bytes=9-3"), Ok(None), "unparseable: ignored");
        assert_eq!(r("items=0-1"), Ok(None));
        assert_eq!(range(None, 10), None);
    }
}
