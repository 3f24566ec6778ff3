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
    /// HS256 key (at least 32 bytes).
    pub secret: SecretString,
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

/// Signs and checks access tokens: HS256 JWTs (RFC 7519) written here on
/// `hmac`/`sha2`, which the tree already has, instead of jsonwebtoken: its
/// two crypto backends are aws-lc-rs (banned: ring is the workspace's one
/// provider) and RustCrypto, which brings RSA, P-256/P-384, Ed25519 and
/// their random-number stack for algorithms this API refuses anyway. The
/// MAC is checked against RFC 7515's own example (appendix A.1) in the
/// tests below.
///
/// Verification accepts exactly `{"alg":"HS256"}` headers (so `none` and
/// algorithm swaps fail), compares the MAC in constant time, and requires
/// `iss`, `aud`, `sub`, `exp`, `nbf` with 5 s of leeway for clock skew.
pub struct Tokens {
    config: TokenConfig,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("config", &self.config)
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
}

impl Tokens {
    /// Keys from `config`.
    ///
    /// # Errors
    /// When the secret is shorter than [`MIN_SECRET_BYTES`].
    pub fn new(config: TokenConfig) -> Result<Self, String> {
        if config.secret.expose_secret().len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the JWT signing secret must be at least {MIN_SECRET_BYTES} bytes"
            ));
        }
        Ok(Self { config })
    }

    /// The settings.
    pub fn config(&self) -> &TokenConfig {
        &self.config
    }

    fn key(&self) -> &[u8] {
        self.config.secret.expose_secret().as_bytes()
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
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).map_err(|e| e.to_string())?);
        let signing_input = format!("{header}.{payload}");
        let signature = hs256(self.key(), signing_input.as_bytes());
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
        if jose.alg != "HS256" {
            return Err(format!("algorithm `{}` is not accepted", jose.alg));
        }
        let signature = decode(signature, "signature")?;
        let signing_input = &token[..header.len() + 1 + payload.len()];
        if !hs256_verify(self.key(), signing_input.as_bytes(), &signature) {
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
fn hs256(key: &[u8], signing_input: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = mac_for(key);
    mac.update(signing_input);
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Whether `signature` is the HS256 MAC of `signing_input`, compared in
/// constant time.
fn hs256_verify(key: &[u8], signing_input: &[u8], signature: &[u8]) -> bool {
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
        &state.tokens,
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
        Tokens::new(TokenConfig {
            secret: SecretString::from("k".repeat(32)),
            issuer: "iss".to_owned(),
            audience: "aud".to_owned(),
            access_ttl: SignedDuration::from_mins(15),
            refresh_ttl: SignedDuration::from_hours(1),
        })
        .expect("tokens")
    }

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let t = tokens();
        let now = Timestamp::from_second(1_800_000_000).expect("ts");
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
