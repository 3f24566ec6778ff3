//! `/api/v1/uploads`: resumable uploads by tus 1.0 (core, creation, termination, expiration, checksum with sha256), so tus-js-client, Uppy and tuspy work unchanged; a completed upload becomes the caller's sound with the same id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use alarm_domain::ids::{UploadId, UserId};
use alarm_domain::jiff::Timestamp;
use alarm_domain::model::{MAX_UPLOAD_BYTES, UploadFile, UploadRefused};
use alarm_domain::ports::{BlobError, ByteStream, StoreError};
use alarm_domain::services::{Checksum, Patch, Patched, UploadError, UploadStatus};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt as _;
use poem::web::Data;
use poem::{Request, RequestBody};
use poem_openapi::param::{Header, Path};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, OpenApi};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ApiTags;
use crate::auth::BearerAuth;
use crate::problem::{ApiError, Problem, ProblemType};
use crate::state::AppState;

/// The protocol version served.
pub(crate) const TUS_VERSION: &str = "1.0.0";
/// The tus extensions served.
const TUS_EXTENSIONS: &str = "creation,termination,expiration,checksum";
/// The media type of a PATCH body.
const PATCH_TYPE: &str = "application/offset+octet-stream";
/// The most `Upload-Metadata` may hold.
const MAX_METADATA_BYTES: usize = 4096;
/// What one PATCH may buffer: a 5 MiB part and the chunk arriving.
pub(crate) const PATCH_RESERVE_MIB: u32 = 6;

/// The memory all PATCHes in progress may buffer together, and how many
/// one account may have in progress, so one account cannot take it all.
pub(crate) struct UploadGate {
    memory: Arc<Semaphore>,
    per_user: Mutex<HashMap<UserId, u32>>,
    max_per_user: u32,
}

/// A PATCH's place under the gate, given back when it ends.
pub(crate) struct Pass<'a> {
    _memory: OwnedSemaphorePermit,
    gate: &'a UploadGate,
    user: UserId,
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let mut held = self
            .gate
            .per_user
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.user);
            }
        }
        metrics::gauge!("upload_patches_in_progress").decrement(1.0);
    }
}

impl UploadGate {
    /// `megabytes` for all PATCHes together; `per_user` PATCHes at once
    /// for one account.
    pub(crate) fn new(megabytes: u32, per_user: u32) -> Self {
        Self {
            memory: Arc::new(Semaphore::new(megabytes.max(PATCH_RESERVE_MIB) as usize)),
            per_user: Mutex::new(HashMap::new()),
            max_per_user: per_user.max(1),
        }
    }

    fn enter(&self, user: UserId) -> Result<Pass<'_>, ApiError> {
        let mut held = self.per_user.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = held.get(&user).copied().unwrap_or(0);
        if mine >= self.max_per_user {
            metrics::counter!("upload_patches_refused_total", "reason" => "per_user").increment(1);
            return Err(ApiError::rate_limited(
                5,
                format!(
                    "{} uploads of this account are already receiving bytes; retry when one ends",
                    self.max_per_user
                ),
            ));
        }
        let Ok(memory) = self
            .memory
            .clone()
            .try_acquire_many_owned(PATCH_RESERVE_MIB)
        else {
            metrics::counter!("upload_patches_refused_total", "reason" => "memory").increment(1);
            return Err(ApiError::Unavailable(
                poem_openapi::payload::Json(Problem::new(
                    ProblemType::Unavailable,
                    "the server is receiving as many uploads as its memory allows; retry shortly",
                )),
                Some(5),
            ));
        };
        held.insert(user, mine + 1);
        metrics::gauge!("upload_patches_in_progress").increment(1.0);
        Ok(Pass {
            _memory: memory,
            gate: self,
            user,
        })
    }
}

/// A PATCH body, taken as a stream: never read whole, never failing the
/// request before the handler has checked who asks and for what.
pub(crate) struct UploadBody {
    body: Option<poem::Body>,
    content_type: Option<String>,
}

impl<'a> ApiExtractor<'a> for UploadBody {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(_registry: &mut Registry) {}

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some("The bytes from `Upload-Offset` on."),
            content: vec![MetaMediaType {
                content_type: PATCH_TYPE,
                schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format(
                    "string", "binary",
                ))),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self {
            body: body.take().ok(),
            content_type: request.content_type().map(str::to_owned),
        })
    }
}

impl UploadBody {
    /// The body as chunks; a chunk that does not come within `idle`, or
    /// any after `longest` from now, ends it as cut off (what arrived
    /// before is kept, and the client resumes): a trickling client cannot
    /// hold its place under the upload memory for longer.
    fn stream(self, idle: std::time::Duration, longest: std::time::Duration) -> ByteStream {
        let Some(body) = self.body else {
            return ByteStream::from_chunks(Vec::new());
        };
        let end = tokio::time::Instant::now() + longest;
        type Chunks = std::pin::Pin<
            Box<
                dyn futures_util::Stream<Item = std::io::Result<alarm_domain::bytes::Bytes>> + Send,
            >,
        >;
        let chunks: Chunks = Box::pin(body.into_bytes_stream());
        // The state is `None` once the body ended or failed: nothing after.
        ByteStream::new(futures_util::stream::unfold(
            Some(chunks),
            move |state: Option<Chunks>| async move {
                let mut chunks = state?;
                let wait = idle.min(end.saturating_duration_since(tokio::time::Instant::now()));
                let cut = |why: String| Some((Err(BlobError::Interrupted(why.into())), None));
                match tokio::time::timeout(wait, chunks.next()).await {
                    Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(chunks))),
                    Ok(Some(Err(e))) => Some((Err(BlobError::Interrupted(Box::new(e))), None)),
                    Ok(None) => None,
                    Err(_) if tokio::time::Instant::now() >= end => cut(format!(
                        "the PATCH passed its {} s; resume from the offset",
                        longest.as_secs()
                    )),
                    Err(_) => cut(format!("no byte arrived for {} s", idle.as_secs())),
                }
            },
        ))
    }
}

/// What this server supports.
#[derive(ApiResponse)]
pub(crate) enum Capabilities {
    /// The protocol's capabilities.
    #[oai(status = 204)]
    Ok(
        /// Versions served.
        #[oai(header = "Tus-Version")]
        String,
        /// Extensions served.
        #[oai(header = "Tus-Extension")]
        String,
        /// The largest upload, in bytes.
        #[oai(header = "Tus-Max-Size")]
        u64,
        /// Checksum algorithms.
        #[oai(header = "Tus-Checksum-Algorithm")]
        String,
    ),
}

/// A new upload.
#[derive(ApiResponse)]
pub(crate) enum Created {
    /// Created; PATCH its bytes to `Location`.
    #[oai(status = 201)]
    Created(
        /// The upload's URL.
        #[oai(header = "Location")]
        String,
        /// Always 0.
        #[oai(header = "Upload-Offset")]
        u64,
        /// When it is abandoned unless a PATCH comes (24 h after the last).
        #[oai(header = "Upload-Expires")]
        String,
    ),
}

/// Where an upload stands.
#[derive(ApiResponse)]
pub(crate) enum Offset {
    /// Its offset: resend from there.
    #[oai(status = 200)]
    Ok(
        /// Bytes stored.
        #[oai(header = "Upload-Offset")]
        u64,
        /// Its declared length.
        #[oai(header = "Upload-Length")]
        u64,
        /// When it is abandoned (absent once complete).
        #[oai(header = "Upload-Expires")]
        Option<String>,
        /// Never cached.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

/// A PATCH stored.
#[derive(ApiResponse)]
pub(crate) enum Appended {
    /// Stored; at `Upload-Length` the upload is now the sound
    /// `/api/v1/sounds/{id}` (same id).
    #[oai(status = 204)]
    Ok(
        /// Bytes stored now.
        #[oai(header = "Upload-Offset")]
        u64,
        /// When it is abandoned (absent once complete).
        #[oai(header = "Upload-Expires")]
        Option<String>,
    ),
}

/// An upload terminated.
#[derive(ApiResponse)]
pub(crate) enum Terminated {
    /// Its bytes and state are gone.
    #[oai(status = 204)]
    Done,
}

/// An HTTP date (RFC 9110), as `Upload-Expires` carries it.
fn http_date(t: Timestamp) -> String {
    t.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn upload_id(raw: &str) -> Result<UploadId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// A tus request must say it speaks 1.0.0 (412 otherwise; the middleware
/// adds `Tus-Version`).
fn check_version(sent: Option<&str>) -> Result<(), ApiError> {
    match sent.map(str::trim) {
        Some(TUS_VERSION) => Ok(()),
        Some(other) => Err(Problem::new(
            ProblemType::PreconditionFailed,
            format!("Tus-Resumable {other} is not served; this server speaks {TUS_VERSION}"),
        )
        .into()),
        None => Err(Problem::new(
            ProblemType::PreconditionFailed,
            format!("send `Tus-Resumable: {TUS_VERSION}`"),
        )
        .into()),
    }
}

/// `Upload-Metadata`: comma-separated `key base64(value)` pairs; the file
/// name is `filename` (or `name`), the type `filetype` (or `type`).
fn metadata(raw: Option<&str>) -> Result<UploadFile, ApiError> {
    let raw = raw.unwrap_or("");
    if raw.len() > MAX_METADATA_BYTES {
        return Err(Problem::invalid(
            "Upload-Metadata",
            format!("at most {MAX_METADATA_BYTES} bytes"),
        )
        .with_status(400)
        .into());
    }
    let mut pairs = HashMap::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let value = STANDARD
            .decode(value.trim())
            .ok()
            .and_then(|v| String::from_utf8(v).ok())
            .ok_or_else(|| {
                ApiError::from(
                    Problem::invalid(
                        "Upload-Metadata",
                        format!("the value of `{key}` is not base64 of UTF-8 text"),
                    )
                    .with_status(400),
                )
            })?;
        pairs.insert(key.to_owned(), value);
    }
    let pick = |a: &str, b: &str| pairs.get(a).or_else(|| pairs.get(b)).cloned();
    let name = pick("filename", "name").unwrap_or_default();
    let kind = pick("filetype", "type").unwrap_or_else(|| "application/octet-stream".to_owned());
    Ok(UploadFile::new(&name, &kind)?)
}

/// `Upload-Checksum: sha1 <base64>` or `sha256 <base64>`.
fn checksum(raw: Option<&str>) -> Result<Option<Checksum>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let bad = |why: &str| -> ApiError {
        Problem::invalid("Upload-Checksum", why.to_owned())
            .with_status(400)
            .into()
    };
    let (algorithm, digest) = raw
        .trim()
        .split_once(' ')
        .ok_or_else(|| bad("`sha256 <base64 digest>`"))?;
    let digest = STANDARD
        .decode(digest.trim())
        .map_err(|_| bad("the digest is not base64"))?;
    if algorithm.eq_ignore_ascii_case("sha1") {
        return <[u8; 20]>::try_from(digest.as_slice())
            .map(|d| Some(Checksum::Sha1(d)))
            .map_err(|_| bad("a sha1 digest is 20 bytes"));
    }
    if algorithm.eq_ignore_ascii_case("sha256") {
        return <[u8; 32]>::try_from(digest.as_slice())
            .map(|d| Some(Checksum::Sha256(d)))
            .map_err(|_| bad("a sha256 digest is 32 bytes"));
    }
    Err(bad("the algorithms served are sha1 and sha256"))
}

/// An upload failure as the answer tus clients expect.
fn refusal(e: UploadError) -> ApiError {
    let problem = |kind, detail: String| ApiError::from(Problem::new(kind, detail));
    match e {
        UploadError::Invalid(v) => v.into(),
        UploadError::NotFound => ApiError::not_found(),
        UploadError::Refused(r @ UploadRefused::OffsetMismatch { .. }) => {
            problem(ProblemType::Conflict, r.to_string())
        }
        UploadError::Refused(r @ UploadRefused::PastLength { .. }) => {
            problem(ProblemType::PayloadTooLarge, r.to_string())
        }
        UploadError::Refused(r @ UploadRefused::Expired) => {
            problem(ProblemType::Gone, r.to_string())
        }
        UploadError::Refused(r) => problem(ProblemType::Conflict, r.to_string()),
        UploadError::ChecksumMismatch => problem(
            ProblemType::ChecksumMismatch,
            "the body does not match Upload-Checksum; nothing of it was kept".to_owned(),
        ),
        UploadError::Busy => problem(
            ProblemType::Locked,
            "another request is writing this upload; HEAD it and resume when it ends".to_owned(),
        ),
        UploadError::Moved => problem(
            ProblemType::Conflict,
            "the upload moved while this request was stored; HEAD it and resume".to_owned(),
        ),
        UploadError::Restarted => problem(
            ProblemType::Unavailable,
            "the object store failed; the upload moved to this server's spool and starts again \
             at offset 0: HEAD it and resend from there"
                .to_owned(),
        ),
        UploadError::OverQuota { quota, limit } => ApiError::from(
            Problem::new(
                ProblemType::QuotaExceeded,
                format!("the account holds as many as `{quota}` allows ({limit})"),
            )
            .with_quota(quota, u64::from(limit)),
        ),
        // A client that went away sees no answer; one that fell silent
        // (or passed the PATCH's time limit) sees this.
        UploadError::Interrupted { offset } => problem(
            ProblemType::RequestTimeout,
            format!("the body stopped arriving; the upload is at offset {offset}: resume there"),
        ),
        UploadError::NotAudio => problem(
            ProblemType::UnsupportedMediaType,
            "the file is not MP3, Ogg, WAV, AAC, M4A or FLAC audio; the upload was deleted"
                .to_owned(),
        ),
        UploadError::Store(StoreError::Retryable(e))
        | UploadError::Blob(BlobError::Unexpected(e)) => {
            tracing::warn!(error = %crate::problem::error_chain(e.as_ref()), "upload storage failed");
            problem(
                ProblemType::Unavailable,
                "storage is unavailable; nothing after the reported offset was kept, retry shortly"
                    .to_owned(),
            )
        }
        other => ApiError::internal(&other),
    }
}

pub(crate) struct UploadsApi;

#[OpenApi(prefix_path = "/api/v1/uploads", tag = "ApiTags::Uploads")]
impl UploadsApi {
    /// Upload capabilities (tus 1.0).
    ///
    /// No credentials needed: tus clients ask before they upload.
    #[oai(path = "/", method = "options")]
    async fn options(&self) -> Result<Capabilities, ApiError> {
        Ok(Capabilities::Ok(
            TUS_VERSION.to_owned(),
            TUS_EXTENSIONS.to_owned(),
            MAX_UPLOAD_BYTES,
            "sha1,sha256".to_owned(),
        ))
    }

    /// Begin an upload (tus creation).
    ///
    /// `Upload-Length` (at most 104857600 bytes, else 413) and
    /// `Upload-Metadata` with `filename` (or `name`) and optionally
    /// `filetype` (or `type`; only a hint: the bytes decide). The sound
    /// quotas (`QUOTA_SOUNDS_PER_USER`, `QUOTA_SOUND_MEGABYTES_PER_USER`)
    /// are judged now, and at most `QUOTA_UPLOADS_PER_USER` uploads may be
    /// open at once. An upload untouched for 24 h is abandoned.
    /// `Upload-Defer-Length` and creation-with-upload are not served.
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// `1.0.0`.
        #[oai(name = "Tus-Resumable")]
        tus: Header<Option<String>>,
        /// The file's size in bytes.
        #[oai(name = "Upload-Length")]
        length: Header<Option<u64>>,
        /// `filename <base64>,filetype <base64>`.
        #[oai(name = "Upload-Metadata")]
        meta: Header<Option<String>>,
    ) -> Result<Created, ApiError> {
        check_version(tus.0.as_deref())?;
        let Some(length) = length.0 else {
            return Err(Problem::invalid(
                "Upload-Length",
                "the file's size in bytes is required (Upload-Defer-Length is not served)",
            )
            .with_status(400)
            .into());
        };
        if length > MAX_UPLOAD_BYTES {
            return Err(ApiError::of(
                ProblemType::PayloadTooLarge,
                format!("an upload has at most {MAX_UPLOAD_BYTES} bytes"),
            ));
        }
        let file = metadata(meta.0.as_deref())?;
        let upload = state
            .uploads
            .create(auth.0.actor().user, length, file)
            .await
            .map_err(refusal)?;
        Ok(Created::Created(
            state.location(&format!("uploads/{}", upload.id)),
            0,
            http_date(upload.expires_at),
        ))
    }

    /// The upload's offset (tus HEAD).
    ///
    /// An upload that is complete answers `Upload-Offset` = `Upload-Length`
    /// (it is the sound `/api/v1/sounds/{id}`).
    #[oai(path = "/:id", method = "head")]
    async fn head(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Upload id.
        id: Path<String>,
        /// `1.0.0`.
        #[oai(name = "Tus-Resumable")]
        tus: Header<Option<String>>,
    ) -> Result<Offset, ApiError> {
        let id = upload_id(&id.0)?;
        let status = state
            .uploads
            .status(auth.0.actor().user, id)
            .await
            .map_err(refusal)?;
        check_version(tus.0.as_deref())?;
        let no_store = "no-store".to_owned();
        Ok(match status {
            UploadStatus::Open(u) => Offset::Ok(
                u.offset(),
                u.length,
                Some(http_date(u.expires_at)),
                no_store,
            ),
            UploadStatus::Done(sound) => Offset::Ok(sound.size, sound.size, None, no_store),
        })
    }

    /// Send bytes (tus PATCH).
    ///
    /// `Content-Type: application/offset+octet-stream`, `Upload-Offset` =
    /// the offset HEAD reports (else 409). Bytes are kept as 5 MiB parts
    /// and a durable tail, so a PATCH cut off keeps what arrived; with
    /// `Upload-Checksum: sha256 <base64>`, a mismatch is 460 and nothing of
    /// the PATCH is kept. The last byte completes the upload: the file is
    /// checked by its bytes (MP3, Ogg, WAV, AAC, M4A, FLAC; else 415 and
    /// it is deleted) and becomes a sound. 423 while another request writes
    /// the same upload; 503 with `Retry-After` while the server receives
    /// as many uploads as its memory allows (`UPLOAD_MEMORY_MEGABYTES`),
    /// 429 past `UPLOAD_PATCHES_PER_USER` PATCHes of one account at once.
    /// A chunk must arrive within `HTTP_BODY_TIMEOUT_SECONDS` of the last,
    /// and a PATCH may last `UPLOAD_PATCH_MAX_SECONDS`: then it ends as cut
    /// off (408), what arrived is kept, and the client resumes.
    #[oai(path = "/:id", method = "patch")]
    #[allow(clippy::too_many_arguments)]
    async fn patch(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Upload id.
        id: Path<String>,
        /// `1.0.0`.
        #[oai(name = "Tus-Resumable")]
        tus: Header<Option<String>>,
        /// Where these bytes start.
        #[oai(name = "Upload-Offset")]
        offset: Header<Option<u64>>,
        /// `sha256 <base64 digest of this PATCH's body>`.
        #[oai(name = "Upload-Checksum")]
        sum: Header<Option<String>>,
        /// The body's length, when known.
        #[oai(name = "Content-Length")]
        length: Header<Option<u64>>,
        body: UploadBody,
    ) -> Result<Appended, ApiError> {
        let id = upload_id(&id.0)?;
        let owner = auth.0.actor().user;
        // 404 before anything about the request is judged.
        state.uploads.get(owner, id).await.map_err(refusal)?;
        check_version(tus.0.as_deref())?;
        let content_type = body.content_type.as_deref().unwrap_or("");
        if !content_type
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(PATCH_TYPE))
        {
            return Err(ApiError::of(
                ProblemType::UnsupportedMediaType,
                format!("a PATCH body is {PATCH_TYPE}"),
            ));
        }
        let Some(offset) = offset.0 else {
            return Err(Problem::invalid("Upload-Offset", "required")
                .with_status(400)
                .into());
        };
        let patch = Patch {
            offset,
            length: length.0,
            checksum: checksum(sum.0.as_deref())?,
        };
        let _pass = state.upload_gate.enter(owner)?;
        let body = body.stream(state.config.body_timeout, state.config.upload_patch_longest);
        match state.uploads.patch(owner, id, patch, body).await {
            Ok(Patched::Partial(u)) => Ok(Appended::Ok(u.offset(), Some(http_date(u.expires_at)))),
            Ok(Patched::Complete(sound)) => {
                tracing::info!(sound = %sound.id, size = sound.size, kind = %sound.content_type, "upload complete");
                metrics::counter!("sounds_uploaded_total").increment(1);
                Ok(Appended::Ok(sound.size, None))
            }
            Err(e) => Err(refusal(e)),
        }
    }

    /// Cancel an upload (tus termination): its bytes and state go.
    #[oai(path = "/:id", method = "delete")]
    async fn delete(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Upload id.
        id: Path<String>,
        /// `1.0.0`.
        #[oai(name = "Tus-Resumable")]
        tus: Header<Option<String>>,
    ) -> Result<Terminated, ApiError> {
        let id = upload_id(&id.0)?;
        let owner = auth.0.actor().user;
        state.uploads.get(owner, id).await.map_err(refusal)?;
        check_version(tus.0.as_deref())?;
        state.uploads.delete(owner, id).await.map_err(refusal)?;
        Ok(Terminated::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_checksums_parse_as_tus_writes_them() {
        let b = |s: &str| STANDARD.encode(s);
        let file = metadata(Some(&format!(
            "filename {},filetype {},is_confidential",
            b("wake up.mp3"),
            b("audio/mpeg")
        )))
        .expect("metadata");
        assert_eq!(
            (file.filename(), file.content_type()),
            ("wake up.mp3", "audio/mpeg")
        );
        let uppy = metadata(Some(&format!(
            "name {},type {}",
            b("a.ogg"),
            b("audio/ogg")
        )))
        .expect("uppy's keys");
        assert_eq!(uppy.filename(), "a.ogg");
        assert!(metadata(None).is_err(), "a file name is required");
        assert!(metadata(Some("filename ***")).is_err());
        assert!(metadata(Some(&"x".repeat(5000))).is_err());
        let digest = [7u8; 32];
        assert_eq!(
            checksum(Some(&format!("sha256 {}", STANDARD.encode(digest)))).expect("sum"),
            Some(Checksum::Sha256(digest))
        );
        assert_eq!(
            checksum(Some(&format!("sha1 {}", STANDARD.encode([3u8; 20])))).expect("sum"),
            Some(Checksum::Sha1([3u8; 20]))
        );
        assert!(checksum(Some("md5 AAAA")).is_err());
        assert!(checksum(Some("sha256 AAAA")).is_err());
        assert_eq!(checksum(None).expect("none"), None);
        assert_eq!(
            http_date("2026-12-05T07:05:09Z".parse().expect("t")),
            "Sat, 05 Dec 2026 07:05:09 GMT"
        );
    }

    #[test]
    fn the_gate_caps_memory_and_each_account() {
        let gate = UploadGate::new(PATCH_RESERVE_MIB * 2, 1);
        let (ana, bob, cy) = (UserId::generate(), UserId::generate(), UserId::generate());
        let a = gate.enter(ana).expect("ana");
        assert!(
            matches!(gate.enter(ana), Err(ApiError::RateLimited(..))),
            "one per account"
        );
        let b = gate.enter(bob).expect("bob");
        assert!(
            matches!(gate.enter(cy), Err(ApiError::Unavailable(_, Some(5)))),
            "memory full"
        );
        drop(a);
        let _c = gate.enter(cy).expect("room again");
        drop(b);
        let _a = gate.enter(ana).expect("ana's place came back");
    }
}
