//! Fakes of the ports to outside services: blob storage, secrets, and a notifier that records what it was asked to send.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use alarm_domain::bytes::Bytes;
use alarm_domain::ids::{BlobId, UploadId, UserId};
use alarm_domain::jiff::Timestamp;
use alarm_domain::model::Upload;
use alarm_domain::ports::{
    BlobError, BlobMeta, BlobStore, ByteStream, Notifier, NotifyError, PartStore, SealError,
    SecretError, SecretProvider, SecretSealer, clamp_range,
};
use alarm_domain::trigger::Delivery;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Blobs in memory, with a size limit like a real bucket's upload limit.
#[derive(Debug)]
pub struct InMemoryBlobs {
    limit: u64,
    blobs: Mutex<HashMap<BlobId, (BlobMeta, Bytes)>>,
}

impl InMemoryBlobs {
    /// A store refusing blobs larger than `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            blobs: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl BlobStore for InMemoryBlobs {
    async fn put(&self, mut meta: BlobMeta, body: ByteStream) -> Result<BlobMeta, BlobError> {
        meta.admit(self.limit)?;
        let bytes = body.collect(self.limit).await?;
        // The stored size is the real one, whatever the caller claimed.
        meta.size = bytes.len() as u64;
        lock(&self.blobs).insert(meta.id, (meta.clone(), Bytes::from(bytes)));
        Ok(meta)
    }

    async fn head(&self, owner: UserId, id: BlobId) -> Result<BlobMeta, BlobError> {
        self.owned(owner, id).map(|(meta, _)| meta)
    }

    async fn get(
        &self,
        owner: UserId,
        id: BlobId,
        range: Option<Range<u64>>,
    ) -> Result<(BlobMeta, ByteStream), BlobError> {
        let (meta, bytes) = self.owned(owner, id)?;
        let part = match range {
            None => bytes,
            Some(range) => {
                let range = clamp_range(range, meta.size)?;
                bytes.slice(usize_of(range.start)..usize_of(range.end))
            }
        };
        Ok((meta, ByteStream::from_bytes(part)))
    }

    async fn delete(&self, owner: UserId, id: BlobId) -> Result<(), BlobError> {
        let mut blobs = lock(&self.blobs);
        if blobs.get(&id).is_none_or(|(m, _)| m.owner != owner) {
            return Err(BlobError::NotFound);
        }
        blobs.remove(&id);
        Ok(())
    }
}

impl InMemoryBlobs {
    fn owned(&self, owner: UserId, id: BlobId) -> Result<(BlobMeta, Bytes), BlobError> {
        lock(&self.blobs)
            .get(&id)
            .filter(|(m, _)| m.owner == owner)
            .cloned()
            .ok_or(BlobError::NotFound)
    }
}

/// A stored blob's offset as an index (it is in memory, so it fits).
fn usize_of(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

/// An upload's bytes waiting in [`InMemoryParts`].
#[derive(Debug, Default)]
struct Waiting {
    multipart: Option<String>,
    parts: BTreeMap<u32, (String, Bytes)>,
    /// (start, length) → bytes.
    tails: BTreeMap<(u64, u64), Bytes>,
}

/// Upload parts in memory, completed into an [`InMemoryBlobs`].
#[derive(Debug)]
pub struct InMemoryParts {
    blobs: Arc<InMemoryBlobs>,
    waiting: Mutex<HashMap<UploadId, Waiting>>,
    tags: AtomicU64,
}

impl InMemoryParts {
    /// Parts whose completed uploads become blobs of `blobs`.
    pub fn new(blobs: Arc<InMemoryBlobs>) -> Self {
        Self {
            blobs,
            waiting: Mutex::new(HashMap::new()),
            tags: AtomicU64::new(0),
        }
    }

    /// How many uploads have parts or a tail waiting; for assertions.
    pub fn waiting(&self) -> usize {
        lock(&self.waiting).len()
    }
}

#[async_trait]
impl PartStore for InMemoryParts {
    async fn begin(&self, upload: &Upload) -> Result<String, BlobError> {
        let id = format!("mp-{}", self.tags.fetch_add(1, Ordering::Relaxed));
        lock(&self.waiting).entry(upload.id).or_default().multipart = Some(id.clone());
        Ok(id)
    }

    async fn put_part(
        &self,
        upload: &Upload,
        multipart: &str,
        number: u32,
        bytes: Bytes,
    ) -> Result<String, BlobError> {
        let tag = format!("etag-{}", self.tags.fetch_add(1, Ordering::Relaxed));
        let mut waiting = lock(&self.waiting);
        let entry = waiting
            .get_mut(&upload.id)
            .filter(|w| w.multipart.as_deref() == Some(multipart))
            .ok_or_else(|| BlobError::Unexpected("no such multipart upload".into()))?;
        entry.parts.insert(number, (tag.clone(), bytes));
        Ok(tag)
    }

    async fn put_tail(&self, upload: &Upload, start: u64, bytes: Bytes) -> Result<(), BlobError> {
        lock(&self.waiting)
            .entry(upload.id)
            .or_default()
            .tails
            .insert((start, bytes.len() as u64), bytes);
        Ok(())
    }

    async fn tail(&self, upload: &Upload) -> Result<Bytes, BlobError> {
        if upload.tail == 0 {
            return Ok(Bytes::new());
        }
        lock(&self.waiting)
            .get(&upload.id)
            .and_then(|w| w.tails.get(&(upload.stored(), upload.tail)).cloned())
            .ok_or_else(|| BlobError::Unexpected("the upload's tail is gone".into()))
    }

    async fn complete(&self, upload: &Upload, meta: BlobMeta) -> Result<BlobMeta, BlobError> {
        let chunks = {
            let waiting = lock(&self.waiting);
            let empty = Waiting::default();
            let entry = waiting.get(&upload.id).unwrap_or(&empty);
            upload
                .parts
                .iter()
                .map(|part| match entry.parts.get(&part.number) {
                    Some((tag, bytes)) if *tag == part.tag => Ok(bytes.clone()),
                    _ => Err(BlobError::Unexpected(
                        format!("part {} is missing or replaced", part.number).into(),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let stored = self
            .blobs
            .put(
                meta,
                ByteStream::from_chunks(chunks.into_iter().map(Ok).collect()),
            )
            .await?;
        lock(&self.waiting).remove(&upload.id);
        Ok(stored)
    }

    async fn abort(&self, upload: &Upload) -> Result<(), BlobError> {
        lock(&self.waiting).remove(&upload.id);
        Ok(())
    }
}

/// Secrets from a fixed table.
#[derive(Debug, Default)]
pub struct StaticSecrets {
    secrets: HashMap<String, SecretString>,
}

impl StaticSecrets {
    /// A provider knowing `secrets` (name, value).
    pub fn new<'a>(secrets: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            secrets: secrets
                .into_iter()
                .map(|(k, v)| (k.to_owned(), SecretString::from(v.to_owned())))
                .collect(),
        }
    }
}

#[async_trait]
impl SecretProvider for StaticSecrets {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        self.secrets
            .get(name)
            .cloned()
            .ok_or_else(|| SecretError::NotFound(name.to_owned()))
    }
}

/// A stand-in for the data keys' sealer (`alarm-secrets`' AEAD) where no
/// key material is wanted: it hides the text (hex) and keeps the sealer's
/// contract (a key id inside, bound to its context, older keys still open,
/// a plain value is not sealed), but it is not encryption.
#[derive(Debug, Clone)]
pub struct FakeSealer {
    current: String,
    older: Vec<String>,
}

impl FakeSealer {
    /// Seals with key `current`; opens that key's values and `older` ones'.
    pub fn new(current: &str, older: &[&str]) -> Self {
        Self {
            current: current.to_owned(),
            older: older.iter().map(|k| (*k).to_owned()).collect(),
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn parts(stored: &str) -> Option<(&str, &str, &str)> {
        let rest = stored.strip_prefix("fake-sealed:")?;
        let (key, rest) = rest.split_once(':')?;
        let (context, text) = rest.split_once(':')?;
        Some((key, context, text))
    }
}

impl SecretSealer for FakeSealer {
    fn seal(&self, secret: &SecretString, context: &[u8]) -> Result<String, SealError> {
        Ok(format!(
            "fake-sealed:{}:{}:{}",
            self.current,
            Self::hex(context),
            Self::hex(secret.expose_secret().as_bytes())
        ))
    }

    fn open(&self, sealed: &str, context: &[u8]) -> Result<SecretString, SealError> {
        let (key, bound, text) = Self::parts(sealed).ok_or(SealError::Broken)?;
        if key != self.current && !self.older.iter().any(|k| k == key) {
            return Err(SealError::UnknownKey(key.to_owned()));
        }
        if bound != Self::hex(context) || text.len() % 2 == 1 {
            return Err(SealError::Broken);
        }
        let bytes = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| SealError::Broken)?;
        String::from_utf8(bytes)
            .map(SecretString::from)
            .map_err(|_| SealError::Broken)
    }

    fn is_current(&self, stored: &str) -> bool {
        Self::parts(stored).is_some_and(|(key, _, _)| key == self.current)
    }

    fn is_sealed(&self, stored: &str) -> bool {
        Self::parts(stored).is_some()
    }
}

/// What a scripted delivery attempt should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scripted {
    /// Fail with a transient error.
    Transient,
    /// Fail with a permanent error.
    Permanent,
}

/// A notifier that records deliveries and fails on cue, for runner tests.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    sent: Mutex<Vec<(Delivery, Timestamp)>>,
    script: Mutex<VecDeque<Scripted>>,
}

impl RecordingNotifier {
    /// A notifier that succeeds until told otherwise.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next attempts fail in this order (then succeed again).
    pub fn fail_next(&self, outcomes: impl IntoIterator<Item = Scripted>) {
        lock(&self.script).extend(outcomes);
    }

    /// Every successful delivery with the `now` it was made at, in order.
    pub fn sent(&self) -> Vec<(Delivery, Timestamp)> {
        lock(&self.sent).clone()
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn deliver(&self, delivery: &Delivery, now: Timestamp) -> Result<(), NotifyError> {
        match lock(&self.script).pop_front() {
            Some(Scripted::Transient) => Err(NotifyError::Transient {
                retry_after: None,
                source: "scripted transient failure".into(),
            }),
            Some(Scripted::Permanent) => {
                Err(NotifyError::Permanent("scripted permanent failure".into()))
            }
            None => {
                lock(&self.sent).push((delivery.clone(), now));
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alarm_domain::ids::AlarmId;
    use alarm_domain::model::Channel;
    use alarm_domain::trigger::{OccurrenceRef, TriggerKind};

    #[tokio::test]
    async fn the_notifier_fails_on_cue_then_records() {
        let notifier = RecordingNotifier::new();
        let at = Timestamp::UNIX_EPOCH;
        let d = Delivery {
            id: uuid::Uuid::nil(),
            owner: UserId::generate(),
            alarm: AlarmId::generate(),
            occurrence: OccurrenceRef {
                at,
                local: at
                    .to_zoned(alarm_domain::jiff::tz::TimeZone::UTC)
                    .datetime(),
            },
            kind: TriggerKind::Fire,
            channel: Channel::Webhook,
            created_at: at,
        };
        notifier.fail_next([Scripted::Transient, Scripted::Permanent]);
        assert!(matches!(
            notifier.deliver(&d, at).await,
            Err(NotifyError::Transient { .. })
        ));
        assert!(matches!(
            notifier.deliver(&d, at).await,
            Err(NotifyError::Permanent(_))
        ));
        notifier.deliver(&d, at).await.unwrap();
        assert_eq!(notifier.sent(), [(d, at)]);
    }
}
