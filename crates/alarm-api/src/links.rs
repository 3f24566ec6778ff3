//! Signed sound links for a CDN: a URL under `CDN_BASE_URL` that names one sound and an expiry, signed with HMAC-SHA256, which the API (the CDN's origin) serves without a bearer token; the bucket itself stays private.

use alarm_domain::ids::{BlobId, UserId};
use alarm_domain::jiff::{SignedDuration, Timestamp};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};

/// Expiries are rounded up to this many seconds, so a link stays the same
/// URL for a while and a CDN serves repeated reads from its cache.
const ROUND_SECONDS: i64 = 600;

/// How sound links are made and checked.
#[derive(Clone)]
pub struct SoundLinks {
    /// The CDN's base URL (no trailing `/`), e.g. `https://cdn.example.com`.
    base: String,
    /// How long a link works, at least.
    ttl: SignedDuration,
    /// The signing key, then keys whose links still verify (an earlier
    /// JWT secret's, while instances started before a rotation run).
    keys: Vec<SecretString>,
}

impl std::fmt::Debug for SoundLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoundLinks")
            .field("base", &self.base)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// A link made for a sound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) url: String,
    pub(crate) expires_at: Timestamp,
}

/// The path the API serves signed links under (the CDN forwards it).
pub(crate) fn path(owner: UserId, id: BlobId) -> String {
    format!("/api/v1/sound-links/{owner}/{id}")
}

impl SoundLinks {
    /// Links under `base` that work at least `ttl`, signed with `key`.
    pub fn new(base: &str, ttl: SignedDuration, key: SecretString) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            ttl,
            keys: vec![key],
        }
    }

    /// Links whose key is derived from `secret` (the JWT signing secret in
    /// force at start), so no other secret is needed; links signed with a
    /// key derived from one of `previous` (`JWT_PREVIOUS_SECRET_KEYS`) still
    /// verify, so instances started on both sides of a rotation accept each
    /// other's links.
    pub fn derived(
        base: &str,
        ttl: SignedDuration,
        secret: &SecretString,
        previous: &[SecretString],
    ) -> Self {
        let derive = |s: &SecretString| {
            SecretString::from(crate::auth::hs256(
                s.expose_secret().as_bytes(),
                b"smart-alarm sound links v1",
            ))
        };
        Self {
            base: base.trim_end_matches('/').to_owned(),
            ttl,
            keys: std::iter::once(secret)
                .chain(previous)
                .map(derive)
                .collect(),
        }
    }

    fn signing_input(owner: UserId, id: BlobId, expires: i64) -> String {
        format!("sound-link\n{owner}\n{id}\n{expires}")
    }

    /// A link to the owner's sound made at `now`.
    pub(crate) fn sign(&self, owner: UserId, id: BlobId, now: Timestamp) -> Link {
        let at_least = now.as_second().saturating_add(self.ttl.as_secs());
        let expires = at_least.div_euclid(ROUND_SECONDS).saturating_add(1) * ROUND_SECONDS;
        let signature = crate::auth::hs256(
            self.keys[0].expose_secret().as_bytes(),
            Self::signing_input(owner, id, expires).as_bytes(),
        );
        Link {
            url: format!(
                "{}{}?expires={expires}&signature={signature}",
                self.base,
                path(owner, id)
            ),
            expires_at: Timestamp::from_second(expires).unwrap_or(Timestamp::MAX),
        }
    }

    /// Whether `signature` is this server's for the sound and `expires`,
    /// and `expires` is still ahead of `now`; the seconds it has left.
    pub(crate) fn check(
        &self,
        owner: UserId,
        id: BlobId,
        expires: i64,
        signature: &str,
        now: Timestamp,
    ) -> Option<i64> {
        let left = expires.checked_sub(now.as_second()).filter(|s| *s > 0)?;
        let raw = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let input = Self::signing_input(owner, id, expires);
        self.keys
            .iter()
            .any(|k| {
                crate::auth::hs256_verify(k.expose_secret().as_bytes(), input.as_bytes(), &raw)
            })
            .then_some(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_work_until_they_expire_and_only_as_signed() {
        let links = SoundLinks::new(
            "https://cdn.example.com/",
            SignedDuration::from_hours(1),
            SecretString::from("a key of the test, long enough".to_owned()),
        );
        let (owner, id) = (UserId::generate(), BlobId::generate());
        let now: Timestamp = "2026-12-05T10:03:00Z".parse().expect("t");
        let link = links.sign(owner, id, now);
        assert_eq!(
            link.expires_at.to_string(),
            "2026-12-05T11:10:00Z",
            "rounded up"
        );
        assert!(link.url.starts_with(&format!(
            "https://cdn.example.com/api/v1/sound-links/{owner}/{id}?expires="
        )));
        assert_eq!(
            links.sign(owner, id, now + SignedDuration::from_mins(5)),
            link,
            "the same URL for a while, so a CDN caches it"
        );
        let (expires, signature) = link
            .url
            .split_once("?expires=")
            .and_then(|(_, q)| q.split_once("&signature="))
            .map(|(e, s)| (e.parse::<i64>().expect("expires"), s.to_owned()))
            .expect("query");
        assert_eq!(links.check(owner, id, expires, &signature, now), Some(4020));
        assert_eq!(
            links.check(owner, id, expires, &signature, link.expires_at),
            None,
            "expired"
        );
        assert_eq!(
            links.check(owner, id, expires + 600, &signature, now),
            None,
            "a longer expiry"
        );
        assert_eq!(
            links.check(owner, BlobId::generate(), expires, &signature, now),
            None
        );
        assert_eq!(
            links.check(UserId::generate(), id, expires, &signature, now),
            None
        );
        assert_eq!(links.check(owner, id, expires, "AAAA", now), None);
        let other = SoundLinks::new(
            "https://cdn.example.com",
            SignedDuration::from_hours(1),
            SecretString::from("another key, also long enough!".to_owned()),
        );
        assert_eq!(other.check(owner, id, expires, &signature, now), None);
        // Across a rotation: the old secret among the previous ones.
        let (old, new) = (
            SecretString::from("the secret before the rotation!!".to_owned()),
            SecretString::from("the secret after the rotation!!!".to_owned()),
        );
        let before = SoundLinks::derived(
            "https://cdn.example.com",
            SignedDuration::from_hours(1),
            &old,
            &[],
        );
        let after = SoundLinks::derived(
            "https://cdn.example.com",
            SignedDuration::from_hours(1),
            &new,
            std::slice::from_ref(&old),
        );
        let link = before.sign(owner, id, now);
        let signature = link.url.rsplit("signature=").next().expect("signature");
        let expires = link.expires_at.as_second();
        assert!(after.check(owner, id, expires, signature, now).is_some());
        assert!(before.check(owner, id, expires, signature, now).is_some());
        let newer = after.sign(owner, id, now);
        let signature = newer.url.rsplit("signature=").next().expect("signature");
        assert!(
            before.check(owner, id, expires, signature, now).is_none(),
            "an old instance cannot know the new key"
        );
    }
}
