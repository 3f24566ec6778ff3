//! Credentials: argon2id password hashes, HS256 access tokens (JWT) and opaque refresh tokens stored as SHA-256 hashes, and the bearer security scheme that checks them.

use std::sync::Arc;

use alarm_domain::ids::UserId;
use alarm_domain::model::Role;
use alarm_domain::ports::RefreshTokenStore;
use alarm_domain::services::Actor;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::problem::{Problem, ProblemType};
use crate::state::AppState;

pub use crate::hashing::{ARGON2_ITERATIONS, ARGON2_LANES, ARGON2_MEMORY_KIB};
/// Accepted password lengths, in characters.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 12..=256;

/// Password checks that may wait for a hashing permit, beyond those
/// running: past it, login, registration and password changes answer 503
/// with `Retry-After` at once instead of queueing without end (each waiting
/// request holds a connection and its body).
pub const HASH_QUEUE: usize = 32;

fn hash_admission() -> &'static tokio::sync::Semaphore {
    static ADMITTED: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    ADMITTED
        .get_or_init(|| tokio::sync::Semaphore::new(crate::hashing::running_at_most() + HASH_QUEUE))
}

/// A place among the password checks running or waiting, held for the
/// whole operation that hashes or verifies.
///
/// # Errors
/// 503 `unavailable` with `Retry-After: 1` when every place is taken.
pub(crate) fn hash_ticket()
-> Result<tokio::sync::SemaphorePermit<'static>, crate::problem::ApiError> {
    hash_admission().try_acquire().map_err(|_| {
        tracing::warn!("password-check queue full; refusing");
        crate::problem::ApiError::Unavailable(
            poem_openapi::payload::Json(Problem::new(
                ProblemType::Unavailable,
                "the server is busy checking passwords; retry in a second",
            )),
            Some(1),
        )
    })
}

/// The hash verified against when the email is unknown, so that an unknown
/// account costs the same argon2 work (same parameters) as a wrong password.
/// Its password was random and thrown away when it was made.
pub(crate) const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$Oau0uqtpiCib9k7c3FDZpA$p8NN7WnHByOzFQMAFv4iSPYpXgQr8jpmMVEpUktP6NE";

/// Checks a password's length; problems name `field`.
///
/// # Errors
/// A validation problem on `field`.
pub fn check_password_policy(field: &str, password: &str) -> Result<(), Problem> {
    check_password_size(field, password)?;
    let n = password.chars().count();
    if PASSWORD_CHARS.contains(&n) {
        Ok(())
    } else {
        Err(Problem::invalid(
            field,
            format!(
                "must be {} to {} characters long (got {n})",
                PASSWORD_CHARS.start(),
                PASSWORD_CHARS.end()
            ),
        ))
    }
}

/// The most bytes a password may have, judged before anything else reads
/// it (256 characters of four bytes each).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Refuses a password over [`MAX_PASSWORD_BYTES`].
///
/// # Errors
/// A validation problem on `field`.
pub fn check_password_size(field: &str, password: &str) -> Result<(), Problem> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Problem::invalid(
            field,
            format!(
                "must have at most {MAX_PASSWORD_BYTES} bytes (got {})",
                password.len()
            ),
        ));
    }
    Ok(())
}

/// Hashes a password on a hashing thread (argon2 is deliberately slow).
///
/// # Errors
/// When hashing fails (it does not with valid parameters) or no hashing
/// thread runs.
pub async fn hash_password(password: SecretString) -> Result<SecretString, String> {
    crate::hashing::hash(password).await
}

/// Whether `password` matches `hash`. A hash that does not parse does not
/// match. Runs on a hashing thread.
pub async fn verify_password(password: SecretString, hash: SecretString) -> bool {
    crate::hashing::verify(password, hash).await
}

/// Token settings.
#[derive(Clone)]
pub struct TokenConfig {
    /// HS256 key (at least 32 bytes). It signs unless `rsa_keys` holds a
    /// key, and it always verifies.
    pub secret: SecretString,
    /// Earlier HS256 keys (each at least 32 bytes) that still verify, for
    /// a rotation's overlap window: tokens they signed stay valid until
    /// they expire. None of them signs.
    pub previous_secrets: Vec<SecretString>,
    /// RSA private keys, PEM (PKCS#8), 2048 to 8192 bits: the first signs
    /// RS256 tokens; every one verifies and is published at
    /// `/.well-known/jwks.json`, so an edge gateway can check tokens.
    pub rsa_keys: Vec<SecretString>,
    /// `iss`, set and checked.
    pub issuer: String,
    /// `aud`, set and checked.
    pub audience: String,
    /// Access-token lifetime (15 minutes by default).
    pub access_ttl: SignedDuration,
    /// Refresh-token family lifetime (30 days by default).
    pub refresh_ttl: SignedDuration,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("secret", &"[redacted]")
            .field("previous_secrets", &self.previous_secrets.len())
            .field("rsa_keys", &self.rsa_keys.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .finish()
    }
}

/// The access token's claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Token id.
    pub jti: String,
    /// The session (refresh family) the token belongs to; revoking the
    /// session revokes its access tokens.
    pub sid: String,
    /// `user` or `admin`.
    pub role: String,
}

/// Signs and checks access tokens: JWTs (RFC 7519) signed HS256 (on
/// `hmac`/`sha2`) or RS256 (on `ring`, the workspace's crypto provider),
/// written here instead of jsonwebtoken: its two crypto backends are
/// aws-lc-rs (banned: ring is the workspace's one provider) and RustCrypto,
/// which brings a second RSA and its random-number stack. The HS256 MAC is
/// checked against RFC 7515's own example (appendix A.1) in the tests below.
///
/// Every key has a `kid`: an HS256 key's is derived from a hash of the key,
/// an RSA key's is its RFC 7638 thumbprint. Tokens carry the signer's
/// `kid`; verification picks the key by `kid` and requires the header's
/// `alg` to be that key's (so `none` and algorithm swaps fail). A token
/// without `kid` (issued before keys had one) is checked against the HS256
/// keys. The MAC is compared in constant time; `iss`, `aud`, `sub`, `exp`,
/// `nbf` are required, with 5 s of leeway for clock skew.
pub struct Tokens {
    config: TokenConfig,
    keys: Vec<Arc<Key>>,
    /// Index in `keys` of the key that signs.
    signer: usize,
    /// Keys a re-key replaced, each verifying (and, for RSA, published)
    /// until the unix second beside it: the tokens they signed live that
    /// long at most.
    retired: Vec<(Arc<Key>, i64)>,
}

/// One key that verifies (and, for the signer, signs).
enum Key {
    Hs256 {
        kid: String,
        secret: SecretString,
    },
    Rs256 {
        kid: String,
        // Boxed: a key pair is large, and keys sit side by side in a Vec.
        pair: Box<ring::rsa::KeyPair>,
        public: ring::rsa::PublicKeyComponents<Vec<u8>>,
    },
}

impl Key {
    fn kid(&self) -> &str {
        match self {
            Self::Hs256 { kid, .. } | Self::Rs256 { kid, .. } => kid,
        }
    }

    fn alg(&self) -> &'static str {
        match self {
            Self::Hs256 { .. } => "HS256",
            Self::Rs256 { .. } => "RS256",
        }
    }

    fn hs256(secret: &SecretString) -> Result<Self, String> {
        if secret.expose_secret().len() < MIN_SECRET_BYTES {
            return Err(format!(
                "a JWT signing secret must be at least {MIN_SECRET_BYTES} bytes"
            ));
        }
        // A hash of the key, not the key: the kid is public.
        let digest = Sha256::new()
            .chain_update(b"smart-alarm jwt kid\0")
            .chain_update(secret.expose_secret().as_bytes())
            .finalize();
        Ok(Self::Hs256 {
            kid: format!("hs-{}", URL_SAFE_NO_PAD.encode(&digest[..12])),
            secret: secret.clone(),
        })
    }

    fn rs256(pem: &SecretString) -> Result<Self, String> {
        use rustls::pki_types::PrivatePkcs8KeyDer;
        use rustls::pki_types::pem::PemObject;
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.expose_secret().as_bytes())
            .map_err(|_| "an RSA key is not a PEM PKCS#8 private key".to_owned())?;
        let pair = ring::rsa::KeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map_err(|e| format!("an RSA key is refused: {e}"))?;
        let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public());
        // RFC 7638: SHA-256 of the required members in lexicographic order.
        let thumbprint = Sha256::digest(format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(&public.e),
            URL_SAFE_NO_PAD.encode(&public.n)
        ));
        Ok(Self::Rs256 {
            kid: URL_SAFE_NO_PAD.encode(thumbprint),
            pair: Box::new(pair),
            public,
        })
    }

    /// The JWS signature of `signing_input`, base64url without padding.
    fn sign(&self, signing_input: &[u8]) -> Result<String, String> {
        match self {
            Self::Hs256 { secret, .. } => {
                Ok(hs256(secret.expose_secret().as_bytes(), signing_input))
            }
            Self::Rs256 { pair, .. } => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &ring::rand::SystemRandom::new(),
                    signing_input,
                    &mut signature,
                )
                .map_err(|_| "RSA signing failed".to_owned())?;
                Ok(URL_SAFE_NO_PAD.encode(signature))
            }
        }
    }

    fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Hs256 { secret, .. } => {
                hs256_verify(secret.expose_secret().as_bytes(), signing_input, signature)
            }
            Self::Rs256 { public, .. } => public
                .verify(
                    &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                    signing_input,
                    signature,
                )
                .is_ok(),
        }
    }
}

/// A public key as JWKS publishes it (RFC 7517).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Jwk {
    /// Always `RSA`.
    pub kty: &'static str,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: &'static str,
    /// Always `RS256`.
    pub alg: &'static str,
    /// The key id tokens carry.
    pub kid: String,
    /// The modulus, base64url.
    pub n: String,
    /// The public exponent, base64url.
    pub e: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("config", &self.config)
            .field(
                "kids",
                &self.keys.iter().map(|k| k.kid()).collect::<Vec<_>>(),
            )
            .field("retired", &self.retired.len())
            .field("signer", &self.keys[self.signer].kid())
            .finish()
    }
}

/// The smallest accepted signing key.
pub const MIN_SECRET_BYTES: usize = 32;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: i64 = 5;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

impl Tokens {
    /// Keys from `config`.
    ///
    /// # Errors
    /// A secret shorter than [`MIN_SECRET_BYTES`], an RSA key that is not
    /// PEM PKCS#8 or that ring refuses, or two keys with one `kid`.
    pub fn new(config: TokenConfig) -> Result<Self, String> {
        let mut keys = vec![Arc::new(Key::hs256(&config.secret)?)];
        for secret in &config.previous_secrets {
            keys.push(Arc::new(Key::hs256(secret)?));
        }
        // The first RSA key signs when there is one.
        let signer = if config.rsa_keys.is_empty() {
            0
        } else {
            keys.len()
        };
        for pem in &config.rsa_keys {
            keys.push(Arc::new(Key::rs256(pem)?));
        }
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|k| k.kid() == key.kid()) {
                return Err(format!("the JWT key `{}` is configured twice", key.kid()));
            }
        }
        Ok(Self {
            config,
            keys,
            signer,
            retired: Vec::new(),
        })
    }

    /// The keys `config` gives, taking over at `now` (a secret rotated in
    /// its provider): each key of these tokens that the new set lacks
    /// keeps verifying until every token it signed has expired (the
    /// access lifetime and the clock leeway from `now`), so nobody is
    /// logged out by a rotation. A rotation because a key leaked wants
    /// those tokens dead at once: restart instead.
    ///
    /// # Errors
    /// As [`Tokens::new`].
    pub fn rekeyed(&self, config: TokenConfig, now: Timestamp) -> Result<Self, String> {
        let mut next = Self::new(config)?;
        let until = now.as_second() + next.config.access_ttl.as_secs() + LEEWAY_SECS;
        let kept = |k: &Arc<Key>| !next.keys.iter().any(|n| n.kid() == k.kid());
        let mut retired: Vec<(Arc<Key>, i64)> = self
            .retired
            .iter()
            .filter(|(k, u)| *u > now.as_second() && kept(k))
            .cloned()
            .collect();
        for key in &self.keys {
            if kept(key) && !retired.iter().any(|(r, _)| r.kid() == key.kid()) {
                retired.push((key.clone(), until));
            }
        }
        next.retired = retired;
        Ok(next)
    }

    /// The keys that verify at `now`: the configured ones, then the
    /// retired ones still within their time.
    fn verifying(&self, now: i64) -> impl Iterator<Item = &Key> {
        self.keys.iter().map(|k| &**k).chain(
            self.retired
                .iter()
                .filter(move |(_, until)| *until > now)
                .map(|(k, _)| &**k),
        )
    }

    /// The settings.
    pub fn config(&self) -> &TokenConfig {
        &self.config
    }

    /// The `kid` new tokens carry.
    pub fn signing_kid(&self) -> &str {
        self.keys[self.signer].kid()
    }

    /// The public keys for `/.well-known/jwks.json` at `now`: every RSA
    /// key, the signer first, then retired ones still verifying. HS256
    /// keys are secret and never published.
    pub fn jwks(&self, now: Timestamp) -> Vec<Jwk> {
        // The RSA keys sit in `keys` in configured order, the signer
        // (the first of them) first.
        self.verifying(now.as_second())
            .filter_map(|k| match k {
                Key::Rs256 { kid, public, .. } => Some(Jwk {
                    kty: "RSA",
                    use_: "sig",
                    alg: "RS256",
                    kid: kid.clone(),
                    n: URL_SAFE_NO_PAD.encode(&public.n),
                    e: URL_SAFE_NO_PAD.encode(&public.e),
                }),
                Key::Hs256 { .. } => None,
            })
            .collect()
    }

    /// A signed access token for `user` in session `sid`, valid from `now`.
    ///
    /// # Errors
    /// When the claims cannot be serialised (they always can).
    pub fn issue(
        &self,
        user: UserId,
        role: Role,
        sid: uuid::Uuid,
        now: Timestamp,
    ) -> Result<String, String> {
        let claims = Claims {
            sub: user.to_string(),
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
            exp: now.as_second() + self.config.access_ttl.as_secs(),
            iat: now.as_second(),
            nbf: now.as_second(),
            jti: uuid::Uuid::now_v7().to_string(),
            sid: sid.to_string(),
            role: role.as_str().to_owned(),
        };
        let key = &self.keys[self.signer];
        let header = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&serde_json::json!({
                "alg": key.alg(),
                "typ": "JWT",
                "kid": key.kid(),
            }))
            .map_err(|e| e.to_string())?,
        );
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).map_err(|e| e.to_string())?);
        let signing_input = format!("{header}.{payload}");
        let signature = key.sign(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{signature}"))
    }

    /// The claims of a valid token (algorithm, signature, issuer, audience,
    /// expiry, not-before) at `now`; the session is checked by the caller.
    ///
    /// # Errors
    /// Why the token is refused (for the log, not for the client).
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims, String> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a compact JWS".to_owned());
        };
        let decode = |part: &str, what: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|e| format!("{what}: {e}"))
        };
        let jose: JoseHeader = serde_json::from_slice(&decode(header, "header")?)
            .map_err(|e| format!("header: {e}"))?;
        // The candidates: the key the token names, or without a name (a
        // token from before keys had ids) the HS256 keys; each only for
        // its own algorithm.
        let candidates: Vec<&Key> = match &jose.kid {
            Some(kid) => self
                .verifying(now.as_second())
                .filter(|k| k.kid() == kid)
                .collect(),
            None => self
                .verifying(now.as_second())
                .filter(|k| matches!(k, Key::Hs256 { .. }))
                .collect(),
        };
        if candidates.is_empty() {
            return Err("unknown key id".to_owned());
        }
        if candidates.iter().all(|k| k.alg() != jose.alg) {
            return Err(format!("algorithm `{}` is not accepted", jose.alg));
        }
        let signature = decode(signature, "signature")?;
        let signing_input = &token[..header.len() + 1 + payload.len()];
        if !candidates
            .iter()
            .any(|k| k.alg() == jose.alg && k.verify(signing_input.as_bytes(), &signature))
        {
            return Err("bad signature".to_owned());
        }
        let claims: Claims = serde_json::from_slice(&decode(payload, "payload")?)
            .map_err(|e| format!("claims: {e}"))?;
        let now = now.as_second();
        if claims.exp + LEEWAY_SECS <= now {
            return Err("expired".to_owned());
        }
        if claims.nbf - LEEWAY_SECS > now {
            return Err("not yet valid".to_owned());
        }
        if claims.iss != self.config.issuer {
            return Err("wrong issuer".to_owned());
        }
        if claims.aud != self.config.audience {
            return Err("wrong audience".to_owned());
        }
        Ok(claims)
    }
}

/// The domain's password hasher: argon2id on the hashing threads; an
/// unknown account is checked against [`DECOY_HASH`] at the same cost.
pub(crate) struct Argon2Hasher;

#[async_trait::async_trait]
impl alarm_domain::services::PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: SecretString) -> Result<SecretString, String> {
        hash_password(password).await
    }

    async fn verify(&self, password: SecretString, hash: Option<SecretString>) -> bool {
        match hash {
            Some(hash) => verify_password(password, hash).await,
            None => {
                let decoy = SecretString::from(DECOY_HASH.to_owned());
                let _ = verify_password(password, decoy).await;
                false
            }
        }
    }
}

/// HMAC takes keys of any length (the minimum is enforced in `Tokens::new`).
fn mac_for(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as hmac::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
}

/// The HS256 signature (RFC 7515 §3.1) of a JWS signing input, base64url
/// without padding.
pub(crate) fn hs256(key: &[u8], signing_input: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = mac_for(key);
    mac.update(signing_input);
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Whether `signature` is the HS256 MAC of `signing_input`, compared in
/// constant time.
pub(crate) fn hs256_verify(key: &[u8], signing_input: &[u8], signature: &[u8]) -> bool {
    use hmac::Mac;
    let mut mac = mac_for(key);
    mac.update(signing_input);
    mac.verify_slice(signature).is_ok()
}

/// A new refresh token and its stored hash.
///
/// # Errors
/// When the operating system's random generator fails (a zero token would
/// be guessable, so there is no fallback).
pub(crate) fn new_refresh_token() -> Result<(SecretString, [u8; 32]), String> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| format!("random generator: {e}"))?;
    let token = format!("rt_{}", URL_SAFE_NO_PAD.encode(raw));
    let hash = refresh_hash(&token);
    Ok((SecretString::from(token), hash))
}

/// The stored form of a refresh token.
pub(crate) fn refresh_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user.
    pub user: UserId,
    /// Their role.
    pub role: Role,
    /// The session the token belongs to.
    pub session: uuid::Uuid,
    /// The token's expiry.
    pub expires_at: Timestamp,
}

impl Caller {
    /// The domain actor for this request.
    pub fn actor(&self) -> Actor {
        Actor {
            user: self.user,
            role: self.role,
            correlation_id: crate::problem::request_id(),
        }
    }
}

fn unauthorized(detail: &str) -> poem::Error {
    poem::Error::from_response(Problem::new(ProblemType::Unauthorized, detail).into_http())
}

/// Bearer access token (a JWT from `POST /api/v1/auth/login`).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerAuth(pub Caller);

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Caller> {
    let state = req
        .data::<Arc<AppState>>()
        .ok_or_else(|| unauthorized("the server is not configured"))?;
    let caller = authenticate(
        &state.tokens(),
        state.ports.refresh_tokens.as_ref(),
        state.ports.users.as_ref(),
        &bearer.token,
        state.ports.clock.now(),
    )
    .await?;
    state
        .active_users
        .seen(caller.user, std::time::Instant::now());
    Ok(caller)
}

/// An API key in `X-API-Key` (from `POST /api/v1/api-keys`): accepted on
/// `/api/v1/webhooks…` only, within its scopes.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "X-API-Key",
    key_in = "header",
    checker = "check_api_key"
)]
pub struct ApiKeyAuth(pub alarm_domain::model::ApiKey);

async fn check_api_key(
    req: &Request,
    presented: poem_openapi::auth::ApiKey,
) -> poem::Result<alarm_domain::model::ApiKey> {
    let state = req
        .data::<Arc<AppState>>()
        .ok_or_else(|| unauthorized("the server is not configured"))?;
    let key = state
        .api_keys
        .verify(presented.key.trim())
        .await
        .map_err(|e| match e {
            alarm_domain::services::KeyRefused::Service(e) => {
                tracing::warn!(error = %e, "api key check failed");
                poem::Error::from_response(
                    Problem::new(
                        ProblemType::Unavailable,
                        "the API key could not be checked; retry shortly",
                    )
                    .into_http(),
                )
            }
            refused => {
                tracing::debug!(reason = %refused, "api key refused");
                unauthorized("the API key is unknown, deleted or expired")
            }
        })?;
    let d = state
        .limiter
        .hit(
            state.config.rate_limits.webhooks_per_key,
            &key.id.to_string(),
        )
        .await;
    crate::limiter::note(d);
    if !d.allowed() {
        return Err(poem::Error::from_response(
            crate::limiter::refusal_response(
                &d,
                "too many requests with this API key; wait and retry",
            ),
        ));
    }
    // Recorded only once the key is within its limit: a refused request
    // costs no write.
    let what = format!("{} {}", req.method(), req.uri().path());
    state
        .api_keys
        .record_use(&key, &what, &crate::problem::request_id())
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "api key use could not be recorded");
            poem::Error::from_response(
                Problem::new(
                    ProblemType::Unavailable,
                    "the API key could not be checked; retry shortly",
                )
                .into_http(),
            )
        })?;
    Ok(key)
}

/// `/api/v1/webhooks…`: a bearer access token, or an API key with the
/// operation's scope.
#[derive(SecurityScheme)]
pub enum WebhookAuth {
    /// A logged-in user.
    Bearer(BearerAuth),
    /// An API key.
    ApiKey(ApiKeyAuth),
}

impl WebhookAuth {
    /// The caller, if it may act with `scope` (a bearer token may do
    /// everything its user may); 403 for a key without the scope.
    ///
    /// # Errors
    /// 403 `forbidden`.
    pub(crate) fn caller(
        &self,
        scope: alarm_domain::model::ApiKeyScope,
    ) -> Result<Caller, crate::problem::ApiError> {
        match self {
            WebhookAuth::Bearer(b) => Ok(b.0.clone()),
            WebhookAuth::ApiKey(k) if !k.0.scopes.allows(scope) => {
                Err(crate::problem::ApiError::of(
                    ProblemType::Forbidden,
                    format!("this API key lacks the `{}` scope", scope.as_str()),
                ))
            }
            WebhookAuth::ApiKey(k) => Ok(Caller {
                user: k.0.owner,
                // A key never carries more than an ordinary user's rights.
                role: Role::User,
                session: k.0.id.as_uuid(),
                expires_at: k.0.expires_at.unwrap_or(Timestamp::MAX),
            }),
        }
    }
}

/// Checks a token and its session, and reads the caller's role as stored
/// now: a demotion takes effect on the next request, not when the token
/// expires.
pub(crate) async fn authenticate(
    tokens: &Tokens,
    sessions: &dyn RefreshTokenStore,
    users: &dyn alarm_domain::ports::UserStore,
    token: &str,
    now: Timestamp,
) -> poem::Result<Caller> {
    let claims = tokens.verify(token, now).map_err(|e| {
        tracing::debug!(reason = %e, "access token refused");
        unauthorized("the access token is invalid or expired")
    })?;
    let invalid = || unauthorized("the access token is invalid or expired");
    let user: UserId = claims.sub.parse().map_err(|_| invalid())?;
    Role::parse(&claims.role).map_err(|_| invalid())?;
    let session: uuid::Uuid = claims.sid.parse().map_err(|_| invalid())?;
    let family = match sessions.family(session).await {
        Ok(f) => f,
        Err(alarm_domain::ports::StoreError::NotFound) => return Err(invalid()),
        Err(e) => {
            tracing::warn!(error = %e, "session check failed");
            return Err(poem::Error::from_response(
                Problem::new(
                    ProblemType::Unavailable,
                    "the session could not be checked; retry shortly",
                )
                .into_http(),
            ));
        }
    };
    if family.revoked || family.user != user || family.expires_at <= now {
        return Err(unauthorized("the session has ended; log in again"));
    }
    let role = match users.get(user).await {
        Ok(stored) => stored.role(),
        Err(alarm_domain::ports::StoreError::NotFound) => {
            return Err(unauthorized("the account is gone"));
        }
        Err(e) => {
            tracing::warn!(error = %e, "role check failed");
            return Err(poem::Error::from_response(
                Problem::new(
                    ProblemType::Unavailable,
                    "the account could not be checked; retry shortly",
                )
                .into_http(),
            ));
        }
    };
    Ok(Caller {
        user,
        role,
        session,
        expires_at: Timestamp::from_second(claims.exp).unwrap_or(now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7515, appendix A.1: the HS256 example's key, signing input and
    /// signature (the header decodes to `{"typ":"JWT",\r\n "alg":"HS256"}`).
    const RFC_KEY: &str =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    const RFC_INPUT: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
    const RFC_SIGNATURE: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    #[test]
    fn hs256_matches_rfc_7515_appendix_a1() {
        let key = URL_SAFE_NO_PAD.decode(RFC_KEY).expect("key");
        assert_eq!(hs256(&key, RFC_INPUT.as_bytes()), RFC_SIGNATURE);
        let signature = URL_SAFE_NO_PAD.decode(RFC_SIGNATURE).expect("signature");
        assert!(hs256_verify(&key, RFC_INPUT.as_bytes(), &signature));
        let mut flipped = signature.clone();
        flipped[31] ^= 1;
        assert!(!hs256_verify(&key, RFC_INPUT.as_bytes(), &flipped));
        assert!(
            !hs256_verify(&key[1..], RFC_INPUT.as_bytes(), &signature),
            "another key"
        );
        assert!(
            !hs256_verify(&key, &RFC_INPUT.as_bytes()[1..], &signature),
            "another input"
        );
    }

    #[test]
    fn the_decoy_costs_what_a_real_hash_costs() {
        use argon2::password_hash::PasswordHasher as _;
        use argon2::password_hash::phc::PasswordHash;
        use argon2::{Algorithm, Argon2, Version};

        // Same algorithm and parameters as new hashes, so verifying against
        // it takes the time a wrong password takes.
        let parsed = PasswordHash::new(DECOY_HASH).expect("a PHC string");
        let real = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            crate::hashing::params(),
        )
        .hash_password(b"a real password")
        .expect("hash");
        assert_eq!(parsed.algorithm, real.algorithm);
        let params = |h: &PasswordHash| {
            h.params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(params(&parsed), params(&real));
        assert_eq!(params(&parsed), ["m=19456", "t=2", "p=1"]);
    }

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() {
        let hash = hash_password(SecretString::from("correct horse battery".to_owned()))
            .await
            .expect("hash");
        assert!(
            verify_password(
                SecretString::from("correct horse battery".to_owned()),
                hash.clone()
            )
            .await
        );
        assert!(!verify_password(SecretString::from("wrong".to_owned()), hash).await);
        assert!(
            !verify_password(
                SecretString::from("anything".to_owned()),
                SecretString::from(DECOY_HASH.to_owned())
            )
            .await
        );
    }

    fn tokens() -> Tokens {
        Tokens::new(config("k")).expect("tokens")
    }

    /// HS256 with the key `key` repeated to 32 bytes, nothing else.
    fn config(key: &str) -> TokenConfig {
        TokenConfig {
            secret: SecretString::from(key.repeat(32)),
            previous_secrets: Vec::new(),
            rsa_keys: Vec::new(),
            issuer: "iss".to_owned(),
            audience: "aud".to_owned(),
            access_ttl: SignedDuration::from_mins(15),
            refresh_ttl: SignedDuration::from_hours(1),
        }
    }

    /// Test-only RSA keys (generated for these tests, never used elsewhere).
    fn rsa(n: usize) -> SecretString {
        SecretString::from(
            [
                include_str!("../testdata/jwt-test-rsa-1.pem"),
                include_str!("../testdata/jwt-test-rsa-2.pem"),
            ][n]
                .to_owned(),
        )
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).expect("ts")
    }

    fn header(token: &str) -> serde_json::Value {
        let part = token.split('.').next().expect("header");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("b64")).expect("json")
    }

    /// `token` with its header replaced by `header` (signature kept).
    fn reheaded(token: &str, header: &serde_json::Value) -> String {
        let rest = token.split_once('.').expect("parts").1;
        format!(
            "{}.{rest}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).expect("json"))
        )
    }

    #[test]
    fn a_rotation_keeps_earlier_tokens_valid_until_they_expire() {
        let old = Tokens::new(config("a")).expect("old");
        let user = UserId::generate();
        let issued = old
            .issue(user, Role::User, uuid::Uuid::now_v7(), now())
            .expect("sign");
        assert_eq!(header(&issued)["kid"], old.signing_kid());
        assert!(
            !old.signing_kid()
                .contains('a'.to_string().repeat(8).as_str()),
            "the kid is no part of the key"
        );
        let rotated = Tokens::new(TokenConfig {
            previous_secrets: vec![SecretString::from("a".repeat(32))],
            ..config("b")
        })
        .expect("rotated");
        assert_ne!(rotated.signing_kid(), old.signing_kid());
        assert!(
            rotated.verify(&issued, now()).is_ok(),
            "the previous key verifies"
        );
        let new = rotated
            .issue(user, Role::User, uuid::Uuid::now_v7(), now())
            .expect("sign");
        assert_eq!(header(&new)["kid"], rotated.signing_kid());
        assert_eq!(old.verify(&new, now()).unwrap_err(), "unknown key id");
        // The overlap ends when the previous key is dropped.
        let after = Tokens::new(config("b")).expect("after");
        assert!(after.verify(&issued, now()).is_err());
        assert!(after.verify(&new, now()).is_ok());
        // A token from before keys had ids verifies against the HS256 keys.
        let mut legacy = header(&issued);
        legacy.as_object_mut().expect("object").remove("kid");
        let body = issued.split('.').nth(1).expect("payload");
        let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&legacy).expect("json"));
        let input = format!("{h}.{body}");
        let legacy = format!(
            "{input}.{}",
            hs256("a".repeat(32).as_bytes(), input.as_bytes())
        );
        assert!(rotated.verify(&legacy, now()).is_ok());
        assert!(after.verify(&legacy, now()).is_err());
        // One key twice is refused.
        assert!(
            Tokens::new(TokenConfig {
                previous_secrets: vec![SecretString::from("b".repeat(32))],
                ..config("b")
            })
            .is_err()
        );
    }

    #[test]
    fn a_rekey_keeps_replaced_keys_verifying_until_their_tokens_expire() {
        let old = Tokens::new(TokenConfig {
            rsa_keys: vec![rsa(0)],
            ..config("old-key")
        })
        .expect("old");
        let by_old = old
            .issue(UserId::generate(), Role::User, uuid::Uuid::now_v7(), now())
            .expect("sign");
        let hs_old = Tokens::new(config("old-key")).expect("hs");
        let hs_by_old = hs_old
            .issue(UserId::generate(), Role::User, uuid::Uuid::now_v7(), now())
            .expect("sign");
        // The HS256 key and the RSA key both change.
        let new = old
            .rekeyed(
                TokenConfig {
                    rsa_keys: vec![rsa(1)],
                    ..config("new-key")
                },
                now(),
            )
            .expect("rekeyed");
        assert_ne!(new.signing_kid(), old.signing_kid());
        let by_new = new
            .issue(UserId::generate(), Role::User, uuid::Uuid::now_v7(), now())
            .expect("sign");
        assert_eq!(header(&by_new)["kid"], new.signing_kid());
        // Within the access lifetime both old tokens verify, and the old
        // RSA key is still published (after the new signer).
        let later = now() + SignedDuration::from_mins(14);
        assert!(new.verify(&by_old, later).is_ok());
        assert!(new.verify(&hs_by_old, later).is_ok());
        let kids: Vec<String> = new.jwks(later).into_iter().map(|k| k.kid).collect();
        assert_eq!(
            kids,
            [new.signing_kid().to_owned(), old.signing_kid().to_owned()]
        );
        // Past the lifetime and the leeway, the old keys are gone.
        let gone = now() + SignedDuration::from_mins(15) + SignedDuration::from_secs(LEEWAY_SECS);
        assert_eq!(new.verify(&by_old, gone).unwrap_err(), "unknown key id");
        assert_eq!(new.verify(&hs_by_old, gone).unwrap_err(), "unknown key id");
        assert_eq!(new.jwks(gone).len(), 1);
        // A second rekey keeps the first one's retired keys to their end,
        // and retires the second set's.
        let third = new.rekeyed(config("third-key"), later).expect("third");
        assert!(third.verify(&by_old, later).is_ok());
        assert!(third.verify(&by_new, later).is_ok());
        assert_eq!(third.verify(&by_old, gone).unwrap_err(), "unknown key id");
    }

    #[test]
    fn rs256_tokens_verify_with_the_published_key_only() {
        let t = Tokens::new(TokenConfig {
            rsa_keys: vec![rsa(0), rsa(1)],
            ..config("k")
        })
        .expect("rsa");
        let token = t
            .issue(UserId::generate(), Role::Admin, uuid::Uuid::now_v7(), now())
            .expect("sign");
        assert_eq!(header(&token)["alg"], "RS256");
        assert_eq!(header(&token)["kid"], t.signing_kid());
        assert_eq!(t.verify(&token, now()).expect("valid").role, "admin");
        // The JWKS: both RSA keys, the signer first, nothing of the HS256 key.
        let jwks = t.jwks(now());
        assert_eq!(jwks.len(), 2);
        assert_eq!(jwks[0].kid, t.signing_kid());
        assert!(
            jwks.iter()
                .all(|k| k.kty == "RSA" && k.alg == "RS256" && k.e == "AQAB")
        );
        // An outsider checks the token with the published modulus and exponent.
        let (input, sig) = token.rsplit_once('.').expect("parts");
        let published = ring::rsa::PublicKeyComponents {
            n: URL_SAFE_NO_PAD.decode(&jwks[0].n).expect("n"),
            e: URL_SAFE_NO_PAD.decode(&jwks[0].e).expect("e"),
        };
        published
            .verify(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                input.as_bytes(),
                &URL_SAFE_NO_PAD.decode(sig).expect("sig"),
            )
            .expect("the published key verifies the token");
        // The second key, once it signs, is the first's successor: tokens
        // of each verify while both are configured.
        let next = Tokens::new(TokenConfig {
            rsa_keys: vec![rsa(1), rsa(0)],
            ..config("k")
        })
        .expect("rsa");
        assert_eq!(next.signing_kid(), jwks[1].kid);
        assert!(next.verify(&token, now()).is_ok());
        // Algorithm swaps fail: the RSA kid with HS256 (the classic attack
        // signs with the public key as an HMAC secret), or `none`.
        for alg in ["HS256", "none"] {
            let mut h = header(&token);
            h["alg"] = serde_json::Value::from(alg);
            let swapped = reheaded(&token, &h);
            let input = swapped.rsplit_once('.').expect("parts").0;
            let forged = format!("{input}.{}", hs256(jwks[0].n.as_bytes(), input.as_bytes()));
            assert!(t.verify(&forged, now()).is_err(), "{alg}");
        }
        // An RSA-signed token claiming the HS256 key's id is refused too.
        let mut h = header(&token);
        h["kid"] = serde_json::Value::from(Tokens::new(config("k")).expect("hs").signing_kid());
        assert!(t.verify(&reheaded(&token, &h), now()).is_err());
        // Not a PEM PKCS#8 key: refused, without echoing it.
        let err = Tokens::new(TokenConfig {
            rsa_keys: vec![SecretString::from(
                "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n".to_owned(),
            )],
            ..config("k")
        })
        .unwrap_err();
        assert!(!err.contains("c2VjcmV0"), "{err}");
    }

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let t = tokens();
        let now = now();
        let user = UserId::generate();
        let token = t
            .issue(user, Role::User, uuid::Uuid::now_v7(), now)
            .expect("sign");
        let claims = t.verify(&token, now).expect("valid");
        assert_eq!(claims.sub, user.to_string());
        let expiry = now + SignedDuration::from_secs(15 * 60 + LEEWAY_SECS);
        assert!(
            t.verify(&token, expiry - SignedDuration::from_secs(1))
                .is_ok(),
            "within the leeway"
        );
        assert!(t.verify(&token, expiry).is_err(), "expired");
        assert!(
            t.verify(&token, now - SignedDuration::from_mins(1))
                .is_err(),
            "not yet valid"
        );
        let mut bytes = token.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("ascii");
        assert!(t.verify(&tampered, now).is_err(), "signature");
        assert!(
            Tokens::new(TokenConfig {
                secret: SecretString::from("short".to_owned()),
                ..t.config().clone()
            })
            .is_err()
        );
    }
}
