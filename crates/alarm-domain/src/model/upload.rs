//! Resumable uploads (tus 1.0): an upload's declared length and file, the parts already stored, the durable tail after them, and the one rule by which a PATCH advances it.
//!
//! Bytes reach the object store as numbered parts of exactly
//! [`UPLOAD_PART_BYTES`] (S3's smallest part but the last), so part `n`
//! always holds the bytes `(n-1)·P .. n·P` and a resent range overwrites the
//! same part. What a PATCH leaves after its last whole part (less than one
//! part) is kept durably as the upload's *tail*, so the offset a `HEAD`
//! reports survives a disconnect and a restart. The final part, shorter,
//! is stored only when the upload reaches its length.

use jiff::Timestamp;

use crate::error::{ValidationError, codes};
use crate::ids::{UploadId, UserId};

/// The largest upload accepted (100 MiB; tus `Tus-Max-Size`).
pub const MAX_UPLOAD_BYTES: u64 = 100 * 1024 * 1024;

/// The size of every stored part but the last (5 MiB).
pub const UPLOAD_PART_BYTES: u64 = 5 * 1024 * 1024;

/// The most parts an upload can have.
pub const MAX_UPLOAD_PARTS: u32 = {
    let parts = MAX_UPLOAD_BYTES.div_ceil(UPLOAD_PART_BYTES);
    assert!(parts <= 10_000, "S3 allows 10,000 parts");
    parts as u32
};

/// The longest file name kept (characters).
pub const MAX_FILENAME_CHARS: usize = 255;

/// The longest media type kept (RFC 6838 allows 127 + `/` + 127).
pub const MAX_MEDIA_TYPE_CHARS: usize = 255;

/// One stored part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPart {
    /// 1-based; part `n` holds bytes `(n-1)·P .. (n-1)·P + size`.
    pub number: u32,
    /// [`UPLOAD_PART_BYTES`], or less for the last part of a complete upload.
    pub size: u64,
    /// What the object store answered for it (its ETag), needed to
    /// complete a multipart upload.
    pub tag: String,
}

/// The file an upload carries, as its client described it (tus
/// `Upload-Metadata` `filename` and `filetype`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadFile {
    filename: String,
    content_type: String,
}

impl UploadFile {
    /// Checks the client's description: a file name of 1 to 255
    /// characters without control characters or path separators, and a
    /// `type/subtype` media type (parameters dropped).
    ///
    /// # Errors
    /// The field (`filename`, `filetype`) and why.
    pub fn new(filename: &str, content_type: &str) -> Result<Self, ValidationError> {
        let filename = filename.trim();
        if filename.is_empty() {
            return Err(ValidationError::new(
                "filename",
                codes::EMPTY,
                "the upload needs a filename in Upload-Metadata",
            ));
        }
        if filename.chars().count() > MAX_FILENAME_CHARS {
            return Err(ValidationError::new(
                "filename",
                codes::TOO_LONG,
                format!("a filename has at most {MAX_FILENAME_CHARS} characters"),
            ));
        }
        if filename
            .chars()
            .any(|c| c.is_control() || matches!(c, '/' | '\\'))
        {
            return Err(ValidationError::new(
                "filename",
                codes::INVALID_FORMAT,
                "a filename has no control characters and no path separators",
            ));
        }
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        let token = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
        };
        let valid = essence.len() <= MAX_MEDIA_TYPE_CHARS
            && essence
                .split_once('/')
                .is_some_and(|(kind, sub)| token(kind) && token(sub));
        if !valid {
            return Err(ValidationError::new(
                "filetype",
                codes::INVALID_FORMAT,
                "filetype must be a media type such as audio/mpeg",
            ));
        }
        Ok(Self {
            filename: crate::error::nfc(filename),
            content_type: essence.to_ascii_lowercase(),
        })
    }

    /// The file name.
    pub fn filename(&self) -> &str {
        &self.filename
    }

    /// The declared media type (checked against the bytes on completion).
    pub fn content_type(&self) -> &str {
        &self.content_type
    }
}

/// A resumable upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The id (the blob it becomes has the same UUID).
    pub id: UploadId,
    /// The owner.
    pub owner: UserId,
    /// The declared length (tus `Upload-Length`).
    pub length: u64,
    /// The file.
    pub file: UploadFile,
    /// The object store's multipart upload, once begun.
    pub multipart: Option<String>,
    /// The stored parts, numbered 1, 2, … in order.
    pub parts: Vec<UploadPart>,
    /// Bytes kept after the last part (fewer than one part).
    pub tail: u64,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it is abandoned if not complete (tus `Upload-Expires`);
    /// every accepted PATCH pushes it on.
    pub expires_at: Timestamp,
}

/// What a PATCH stored, applied by [`Upload::advance`] and committed by the
/// store only if the upload is still at `from_offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadProgress {
    /// The offset the PATCH started from (tus `Upload-Offset`).
    pub from_offset: u64,
    /// The multipart upload, when this PATCH began it (or moved the
    /// upload to it, with `restart`).
    pub multipart: Option<String>,
    /// The upload starts again from byte 0 under `multipart`: the store
    /// its bytes were in failed under it and they were given up (see
    /// [`crate::ports::PartStore::relocate`]). Its parts and tail are
    /// dropped before `parts` and `tail` apply.
    pub restart: bool,
    /// Parts this PATCH stored, continuing the numbering.
    pub parts: Vec<UploadPart>,
    /// The tail it left (replacing the previous one).
    pub tail: u64,
    /// The new expiry.
    pub expires_at: Timestamp,
}

/// Why a PATCH or its progress is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadRefused {
    /// The client's offset is not the upload's (tus: 409).
    #[error("the upload is at offset {actual}, not {claimed}")]
    OffsetMismatch {
        /// What the client sent.
        claimed: u64,
        /// Where the upload is.
        actual: u64,
    },
    /// The bytes would pass the declared length.
    #[error("the upload's length is {length}; {end} bytes were offered")]
    PastLength {
        /// The declared length.
        length: u64,
        /// Where the bytes would end.
        end: u64,
    },
    /// The PATCH stored its parts under a multipart upload the state no
    /// longer names: another process moved the upload meanwhile (409).
    #[error("the upload moved to another store while this request was stored")]
    MultipartChanged {
        /// The multipart upload the state names.
        current: String,
    },
    /// The upload expired (tus: 410).
    #[error("the upload expired")]
    Expired,
    /// The progress breaks the part rule (an adapter's bug, not a
    /// client's).
    #[error("malformed progress: {0}")]
    Malformed(&'static str),
}

impl Upload {
    /// A new, empty upload of `length` bytes, expiring `ttl` after `now`.
    ///
    /// # Errors
    /// `Upload-Length` over [`MAX_UPLOAD_BYTES`].
    pub fn new(
        id: UploadId,
        owner: UserId,
        length: u64,
        file: UploadFile,
        now: Timestamp,
        ttl: jiff::SignedDuration,
    ) -> Result<Self, ValidationError> {
        if length > MAX_UPLOAD_BYTES {
            return Err(ValidationError::new(
                "Upload-Length",
                codes::OUT_OF_RANGE,
                format!("an upload has at most {MAX_UPLOAD_BYTES} bytes"),
            ));
        }
        Ok(Self {
            id,
            owner,
            length,
            file,
            multipart: None,
            parts: Vec::new(),
            tail: 0,
            created_at: now,
            expires_at: now.saturating_add(ttl).unwrap_or(now),
        })
    }

    /// The bytes received and kept: every part and the tail.
    pub fn offset(&self) -> u64 {
        self.stored() + self.tail
    }

    /// The bytes in stored parts.
    pub fn stored(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }

    /// Whether every byte has arrived.
    pub fn is_complete(&self) -> bool {
        self.offset() == self.length
    }

    /// The number the next part gets.
    pub fn next_part(&self) -> u32 {
        self.parts.last().map_or(1, |p| p.number + 1)
    }

    /// Whether a PATCH at `claimed` carrying up to `declared` bytes (its
    /// `Content-Length`, if sent) may start at `now`.
    ///
    /// # Errors
    /// [`UploadRefused::Expired`], [`UploadRefused::OffsetMismatch`],
    /// [`UploadRefused::PastLength`].
    pub fn check_patch(
        &self,
        claimed: u64,
        declared: Option<u64>,
        now: Timestamp,
    ) -> Result<(), UploadRefused> {
        if now >= self.expires_at {
            return Err(UploadRefused::Expired);
        }
        let actual = self.offset();
        if claimed != actual {
            return Err(UploadRefused::OffsetMismatch { claimed, actual });
        }
        if let Some(n) = declared {
            let end = actual.saturating_add(n);
            if end > self.length {
                return Err(UploadRefused::PastLength {
                    length: self.length,
                    end,
                });
            }
        }
        Ok(())
    }

    /// The upload after `progress`: the one rule every store applies.
    ///
    /// # Errors
    /// [`UploadRefused::OffsetMismatch`] when the upload moved since the
    /// PATCH began (a concurrent PATCH won); [`UploadRefused::Malformed`]
    /// when the parts break the numbering or size rule, or the bytes pass
    /// the length.
    pub fn advance(&self, progress: &UploadProgress) -> Result<Self, UploadRefused> {
        let actual = self.offset();
        if progress.from_offset != actual {
            return Err(UploadRefused::OffsetMismatch {
                claimed: progress.from_offset,
                actual,
            });
        }
        let mut next = self.clone();
        if progress.restart {
            if progress.multipart.is_none() {
                return Err(UploadRefused::Malformed(
                    "a restart without a multipart upload",
                ));
            }
            next.multipart = None;
            next.parts.clear();
            next.tail = 0;
        }
        if let Some(id) = &progress.multipart {
            // Parts stored under another multipart upload than the one
            // the state names (a process that moved the upload first):
            // the PATCH lost, like one from a stale offset.
            if let Some(current) = next.multipart.as_ref().filter(|m| *m != id) {
                return Err(UploadRefused::MultipartChanged {
                    current: current.clone(),
                });
            }
            next.multipart = Some(id.clone());
        }
        for part in &progress.parts {
            if part.number != next.next_part() {
                return Err(UploadRefused::Malformed("parts out of order"));
            }
            next.parts.push(part.clone());
        }
        next.tail = progress.tail;
        let end = next.offset();
        if end > next.length {
            return Err(UploadRefused::Malformed("bytes past the length"));
        }
        if next.tail >= UPLOAD_PART_BYTES {
            return Err(UploadRefused::Malformed("a tail of a whole part"));
        }
        let whole = next
            .parts
            .iter()
            .rev()
            .skip(usize::from(end == next.length));
        if whole.into_iter().any(|p| p.size != UPLOAD_PART_BYTES) {
            return Err(UploadRefused::Malformed("a short part before the end"));
        }
        if end == next.length && next.tail != 0 {
            return Err(UploadRefused::Malformed("a tail at the end"));
        }
        next.expires_at = progress.expires_at;
        Ok(next)
    }
}

/// How many leading bytes [`audio_type`] needs.
pub const SNIFF_BYTES: u64 = 12;

/// The audio format a file's first bytes show (never its name or its
/// declared type): MP3 (ID3 tag or an MPEG audio frame), Ogg, WAV, AAC
/// (ADTS), M4A (an MP4 file of an audio brand) and FLAC; `None` for
/// anything else.
pub fn audio_type(head: &[u8]) -> Option<&'static str> {
    let at = |from: usize, sig: &[u8]| head.get(from..from + sig.len()) == Some(sig);
    if at(0, b"fLaC") {
        return Some("audio/flac");
    }
    if at(0, b"OggS") {
        return Some("audio/ogg");
    }
    if at(0, b"RIFF") && at(8, b"WAVE") {
        return Some("audio/wav");
    }
    if at(0, b"ID3") {
        return Some("audio/mpeg");
    }
    if at(4, b"ftyp") && [&b"M4A "[..], b"M4B ", b"M4P "].iter().any(|b| at(8, b)) {
        return Some("audio/mp4");
    }
    match head {
        // A frame sync of 12 bits with layer bits 00: AAC in ADTS.
        [0xFF, b, ..] if b & 0xF6 == 0xF0 => Some("audio/aac"),
        // 11 sync bits, a version, and a layer that is not "reserved".
        [0xFF, b, ..] if b & 0xE0 == 0xE0 && b & 0x06 != 0 && b & 0x18 != 0x08 => {
            Some("audio/mpeg")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = UPLOAD_PART_BYTES;

    fn upload(length: u64) -> Upload {
        Upload::new(
            UploadId::from_parts(1, [1; 10]),
            UserId::from_parts(1, [2; 10]),
            length,
            UploadFile::new("wake.mp3", "audio/mpeg").expect("file"),
            Timestamp::UNIX_EPOCH,
            jiff::SignedDuration::from_hours(24),
        )
        .expect("upload")
    }

    fn part(number: u32, size: u64) -> UploadPart {
        UploadPart {
            number,
            size,
            tag: format!("etag-{number}"),
        }
    }

    fn progress(from: u64, parts: Vec<UploadPart>, tail: u64) -> UploadProgress {
        UploadProgress {
            from_offset: from,
            multipart: Some("mp-1".into()),
            restart: false,
            parts,
            tail,
            expires_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn audio_is_told_by_its_bytes() {
        for (head, kind) in [
            (&b"fLaC\0\0\0\x22"[..], Some("audio/flac")),
            (b"OggS\0\x02", Some("audio/ogg")),
            (b"RIFF\x24\x08\0\0WAVEfmt ", Some("audio/wav")),
            (b"ID3\x04\0\0", Some("audio/mpeg")),
            (&[0xFF, 0xFB, 0x90, 0x64], Some("audio/mpeg")),
            (&[0xFF, 0xF1, 0x50, 0x80], Some("audio/aac")),
            (b"\0\0\0\x20ftypM4A \0\0", Some("audio/mp4")),
            (b"\0\0\0\x20ftypisom\0\0", None),
            (b"RIFF\x24\x08\0\0AVI LIST", None),
            (b"\x89PNG\r\n\x1a\n", None),
            (b"<html>", None),
            (&[0xFF, 0xE0], None),
            (b"", None),
        ] {
            assert_eq!(audio_type(head), kind, "{head:?}");
        }
    }

    #[test]
    fn the_length_is_bounded() {
        assert!(
            Upload::new(
                UploadId::from_parts(1, [1; 10]),
                UserId::from_parts(1, [2; 10]),
                MAX_UPLOAD_BYTES + 1,
                UploadFile::new("a.mp3", "audio/mpeg").expect("file"),
                Timestamp::UNIX_EPOCH,
                jiff::SignedDuration::from_hours(1),
            )
            .is_err()
        );
        assert_eq!(MAX_UPLOAD_PARTS, 20);
    }

    #[test]
    fn the_file_is_checked() {
        let ok = UploadFile::new(" Morning.ogg ", "Audio/OGG; codecs=vorbis").expect("ok");
        assert_eq!(
            (ok.filename(), ok.content_type()),
            ("Morning.ogg", "audio/ogg")
        );
        for (name, kind, field) in [
            ("", "audio/mpeg", "filename"),
            ("../etc/passwd", "audio/mpeg", "filename"),
            ("a\u{0}b", "audio/mpeg", "filename"),
            ("a.mp3", "audio", "filetype"),
            ("a.mp3", "audio/mp eg", "filetype"),
        ] {
            let e = UploadFile::new(name, kind).expect_err(name);
            assert_eq!(e.field(), field, "{name} {kind}");
        }
        assert!(UploadFile::new(&"x".repeat(256), "audio/mpeg").is_err());
    }

    #[test]
    fn a_patch_must_start_at_the_offset_and_stay_within_the_length() {
        let u = upload(2 * P);
        let now = Timestamp::UNIX_EPOCH;
        assert_eq!(u.check_patch(0, Some(2 * P), now), Ok(()));
        assert_eq!(
            u.check_patch(5, None, now),
            Err(UploadRefused::OffsetMismatch {
                claimed: 5,
                actual: 0
            })
        );
        assert_eq!(
            u.check_patch(0, Some(2 * P + 1), now),
            Err(UploadRefused::PastLength {
                length: 2 * P,
                end: 2 * P + 1
            })
        );
        let later = now
            .saturating_add(jiff::SignedDuration::from_hours(24))
            .expect("t");
        assert_eq!(u.check_patch(0, None, later), Err(UploadRefused::Expired));
    }

    #[test]
    fn progress_appends_parts_and_keeps_the_tail() {
        let u = upload(2 * P + 10);
        let u = u.advance(&progress(0, vec![part(1, P)], 7)).expect("first");
        assert_eq!((u.offset(), u.stored(), u.next_part()), (P + 7, P, 2));
        assert_eq!(
            u.advance(&progress(P, vec![], 0)),
            Err(UploadRefused::OffsetMismatch {
                claimed: P,
                actual: P + 7
            }),
            "a PATCH that started before another's commit loses"
        );
        let done = u
            .advance(&progress(P + 7, vec![part(2, P), part(3, 10)], 0))
            .expect("last");
        assert!(done.is_complete());
    }

    #[test]
    fn progress_breaking_the_part_rule_is_refused() {
        let u = upload(3 * P);
        for (bad, why) in [
            (progress(0, vec![part(2, P)], 0), "parts out of order"),
            (
                progress(0, vec![part(1, 10)], 0),
                "a short part before the end",
            ),
            (progress(0, vec![], P), "a tail of a whole part"),
            (
                progress(0, vec![part(1, P), part(2, P), part(3, P), part(4, 1)], 0),
                "bytes past the length",
            ),
        ] {
            assert_eq!(u.advance(&bad), Err(UploadRefused::Malformed(why)));
        }
    }

    #[test]
    fn a_restart_drops_the_bytes_so_far_and_takes_the_new_multipart_upload() {
        let u = upload(2 * P + 10)
            .advance(&progress(0, vec![part(1, P)], 7))
            .expect("first");
        let moved = UploadProgress {
            multipart: Some("spool:1".into()),
            restart: true,
            ..progress(P + 7, vec![], 0)
        };
        let r = u.advance(&moved).expect("restart");
        assert_eq!((r.offset(), r.next_part()), (0, 1));
        assert_eq!(r.multipart.as_deref(), Some("spool:1"));
        assert_eq!(
            r.advance(&progress(0, vec![part(1, P)], 0)),
            Err(UploadRefused::MultipartChanged {
                current: "spool:1".into()
            }),
            "parts stored under the multipart upload it had before lose"
        );
        let stale = UploadProgress {
            from_offset: 0,
            ..moved.clone()
        };
        assert!(
            matches!(u.advance(&stale), Err(UploadRefused::OffsetMismatch { .. })),
            "a restart judged on a stale offset loses like any PATCH"
        );
        let nowhere = UploadProgress {
            multipart: None,
            ..moved
        };
        assert_eq!(
            u.advance(&nowhere),
            Err(UploadRefused::Malformed(
                "a restart without a multipart upload"
            ))
        );
    }
}
