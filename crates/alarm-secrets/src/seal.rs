//! Sealing of the secrets the database holds: AES-256-GCM (ring) under data keys that come from the secret provider, the key's id stored beside each ciphertext.

use alarm_domain::ports::{SealError, SecretSealer};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};

/// What every sealed value starts with; a stored value without it is a
/// plain one from before sealing.
const PREFIX: &str = "sealed:v1:";

/// At most this many data keys (the current one and those a rotation is
/// moving away from).
pub const MAX_DATA_KEYS: usize = 16;

/// One data key and its id (the first 8 bytes of its SHA-256, in hex:
/// names the key in each sealed value without revealing it).
struct DataKey {
    id: String,
    key: LessSafeKey,
}

/// The data keys: the first seals, every one opens what it sealed.
/// `Debug` shows the key ids only.
pub struct AeadSealer {
    keys: Vec<DataKey>,
    random: SystemRandom,
}

impl std::fmt::Debug for AeadSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AeadSealer")
            .field(
                "key_ids",
                &self.keys.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Why a data key setting was refused. Never carries a key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DataKeyError {
    /// No key in the text.
    #[error("no data key given")]
    Empty,
    /// More keys than [`MAX_DATA_KEYS`].
    #[error("more than {MAX_DATA_KEYS} data keys")]
    TooMany,
    /// Line `n` (1-based) is not the standard base64 of 32 bytes.
    #[error("data key {0} is not the base64 of 32 bytes (make one with `openssl rand -base64 32`)")]
    Malformed(usize),
    /// The same key twice.
    #[error("data key {0} repeats an earlier one")]
    Repeated(usize),
}

impl AeadSealer {
    /// The keys in `text`, one per line (blank lines skipped), each the
    /// standard base64 of 32 random bytes; the first is current.
    ///
    /// # Errors
    /// [`DataKeyError`].
    pub fn from_text(text: &SecretString) -> Result<Self, DataKeyError> {
        let mut keys: Vec<DataKey> = Vec::new();
        for (n, line) in text
            .expose_secret()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            if keys.len() == MAX_DATA_KEYS {
                return Err(DataKeyError::TooMany);
            }
            let bytes = secrecy::SecretBox::new(Box::new(
                STANDARD
                    .decode(line)
                    .ok()
                    .filter(|b| b.len() == 32)
                    .ok_or(DataKeyError::Malformed(n + 1))?,
            ));
            let id = key_id(bytes.expose_secret());
            if keys.iter().any(|k| k.id == id) {
                return Err(DataKeyError::Repeated(n + 1));
            }
            let key = UnboundKey::new(&AES_256_GCM, bytes.expose_secret())
                .map_err(|_| DataKeyError::Malformed(n + 1))?;
            keys.push(DataKey {
                id,
                key: LessSafeKey::new(key),
            });
        }
        if keys.is_empty() {
            return Err(DataKeyError::Empty);
        }
        Ok(Self {
            keys,
            random: SystemRandom::new(),
        })
    }

    /// A new data key's text (the base64 of 32 random bytes), for an
    /// embedded installation that has none yet.
    ///
    /// # Errors
    /// The random source failed.
    pub fn generate_key() -> Result<SecretString, String> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| "the random source failed".to_owned())?;
        let text = SecretString::from(STANDARD.encode(bytes));
        bytes.fill(0);
        Ok(text)
    }

    /// The current key's id.
    pub fn current_key_id(&self) -> &str {
        &self.keys[0].id
    }

    fn split<'a>(&self, stored: &'a str) -> Option<(&'a str, &'a str)> {
        stored.strip_prefix(PREFIX)?.split_once(':')
    }
}

fn key_id(key: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, key);
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The additional data each ciphertext is bound to: the format, the key's
/// id and the row's identity.
fn aad(id: &str, context: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX.len() + id.len() + 1 + context.len());
    out.extend_from_slice(PREFIX.as_bytes());
    out.extend_from_slice(id.as_bytes());
    out.push(b':');
    out.extend_from_slice(context);
    out
}

impl SecretSealer for AeadSealer {
    fn seal(&self, secret: &SecretString, context: &[u8]) -> Result<String, SealError> {
        let current = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| SealError::Failed)?;
        let mut data = secret.expose_secret().as_bytes().to_vec();
        current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(&current.id, context)),
                &mut data,
            )
            .map_err(|_| SealError::Failed)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&data);
        Ok(format!(
            "{PREFIX}{}:{}",
            current.id,
            URL_SAFE_NO_PAD.encode(sealed)
        ))
    }

    fn open(&self, sealed: &str, context: &[u8]) -> Result<SecretString, SealError> {
        let (id, body) = self.split(sealed).ok_or(SealError::Broken)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.chars().take(16).collect()))?;
        let mut data = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Broken)?;
        if data.len() < NONCE_LEN {
            return Err(SealError::Broken);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&data[..NONCE_LEN]);
        let plain = key
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(id, context)),
                &mut data[NONCE_LEN..],
            )
            .map_err(|_| SealError::Broken)?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| SealError::Broken);
        data.fill(0);
        text.map(SecretString::from)
    }

    fn is_current(&self, stored: &str) -> bool {
        self.split(stored)
            .is_some_and(|(id, _)| id == self.keys[0].id)
    }

    fn is_sealed(&self, stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(lines: &[&str]) -> AeadSealer {
        AeadSealer::from_text(&SecretString::from(lines.join("\n"))).expect("keys")
    }

    const A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const B: &str = "HxoXHRscGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

    #[test]
    fn sealed_values_open_only_for_their_row_and_key() {
        let sealer = keys(&[A]);
        let secret = SecretString::from("whsec_c2VjcmV0IHRleHQ".to_owned());
        let sealed = sealer.seal(&secret, b"webhook:1").expect("seal");
        assert!(sealed.starts_with(PREFIX), "{sealed}");
        assert!(!sealed.contains("whsec_"), "{sealed}");
        // A fresh nonce each time.
        assert_ne!(sealed, sealer.seal(&secret, b"webhook:1").expect("seal"));
        assert_eq!(
            sealer
                .open(&sealed, b"webhook:1")
                .expect("open")
                .expose_secret(),
            secret.expose_secret()
        );
        assert!(matches!(
            sealer.open(&sealed, b"webhook:2"),
            Err(SealError::Broken)
        ));
        // One flipped character of the ciphertext.
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert!(matches!(
            sealer.open(&tampered, b"webhook:1"),
            Err(SealError::Broken)
        ));
        assert!(sealer.is_current(&sealed) && sealer.is_sealed(&sealed));
        assert!(!sealer.is_sealed("whsec_plain") && !sealer.is_current("whsec_plain"));
        // Another key cannot open it, and says which key it would need.
        let other = keys(&[B]);
        match other.open(&sealed, b"webhook:1") {
            Err(SealError::UnknownKey(id)) => assert_eq!(id, sealer.current_key_id()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_rotation_opens_old_values_and_seals_with_the_new_key() {
        let old = keys(&[A]);
        let sealed = old
            .seal(&SecretString::from("s".to_owned()), b"row")
            .expect("seal");
        let rotated = keys(&[B, A]);
        assert!(!rotated.is_current(&sealed));
        assert_eq!(
            rotated.open(&sealed, b"row").expect("open").expose_secret(),
            "s"
        );
        let resealed = rotated
            .seal(&SecretString::from("s".to_owned()), b"row")
            .expect("seal");
        assert!(rotated.is_current(&resealed));
        assert!(old.open(&resealed, b"row").is_err());
    }

    #[test]
    fn key_settings_are_checked_and_never_shown() {
        let parse = |t: &str| AeadSealer::from_text(&SecretString::from(t.to_owned())).map(|_| ());
        assert_eq!(parse(" \n"), Err(DataKeyError::Empty));
        assert_eq!(parse("c2hvcnQ="), Err(DataKeyError::Malformed(1)));
        assert_eq!(parse(&format!("{A}\n{A}")), Err(DataKeyError::Repeated(2)));
        let distinct: Vec<String> = (0..=MAX_DATA_KEYS)
            .map(|i| STANDARD.encode([u8::try_from(i).expect("few"); 32]))
            .collect();
        assert!(parse(&distinct[..MAX_DATA_KEYS].join("\n")).is_ok());
        assert_eq!(parse(&distinct.join("\n")), Err(DataKeyError::TooMany));
        let debug = format!("{:?}", keys(&[A, B]));
        assert!(!debug.contains(A) && !debug.contains(B), "{debug}");
        let generated = AeadSealer::generate_key().expect("key");
        assert!(parse(generated.expose_secret()).is_ok());
    }
}
