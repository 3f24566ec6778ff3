//! Sound shapes: a sound as listed and read, and the list.

use alarm_domain::model::Sound;
use poem_openapi::Object;

/// A sound: an audio file the caller uploaded.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SoundView {
    /// Id (the upload's id; UUID v7).
    pub id: String,
    /// The file name it was uploaded with.
    pub name: String,
    /// The media type its bytes showed: `audio/mpeg`, `audio/ogg`,
    /// `audio/wav`, `audio/aac`, `audio/mp4` or `audio/flac`.
    pub content_type: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// When it was stored (UTC).
    pub created_at: String,
    /// Its bytes (`GET`, with `Range` and `ETag`; the same credentials).
    pub content_url: String,
    /// With a CDN configured: a signed link to its bytes that needs no
    /// credentials, until `link_expires_at`.
    pub link: Option<String>,
    /// When `link` stops working (UTC).
    pub link_expires_at: Option<String>,
}

impl SoundView {
    pub(crate) fn new(s: &Sound, content_url: String, link: Option<crate::links::Link>) -> Self {
        Self {
            id: s.id.to_string(),
            name: s.name.clone(),
            content_type: s.content_type.clone(),
            size_bytes: s.size,
            created_at: s.created_at.to_string(),
            content_url,
            link_expires_at: link.as_ref().map(|l| l.expires_at.to_string()),
            link: link.map(|l| l.url),
        }
    }
}

/// The caller's sounds.
#[derive(Debug, Clone, Object)]
pub struct SoundList {
    /// Oldest first.
    pub items: Vec<SoundView>,
}
