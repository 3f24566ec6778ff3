//! Authentication use cases: login, refresh-token rotation with reuse detection, logout, logout everywhere and password change, each audited, with typed errors.
//!
//! What is HTTP (the throttle, the access-token format, the random refresh
//! token itself) stays in the API; what is a rule about sessions lives here.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::SignedDuration;
use secrecy::SecretString;

use super::{Actor, Basics, MailedToken, Ports, ServiceError};
use crate::ids::{AuditId, UserId};
use crate::model::{AuditRecord, Email, User};
use crate::ports::{ChangeSet, RefreshFamily, Rotation, StoreError, TokenPurpose, UserOp};

/// Hashes and checks passwords (argon2id in the API, behind a semaphore:
/// the work is deliberately expensive).
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// A PHC string for `password`.
    ///
    /// # Errors
    /// The hasher failed (never the password's fault).
    async fn hash(&self, password: SecretString) -> Result<SecretString, String>;
    /// Whether `password` matches `hash`; an unknown account is checked
    /// against a decoy (`hash` = `None`) with the same cost, so the answer
    /// takes as long whether or not the account exists.
    async fn verify(&self, password: SecretString, hash: Option<SecretString>) -> bool;
}

/// Why an authentication use case refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The e-mail or password is wrong (never says which).
    #[error("the email or password is wrong")]
    BadCredentials,
    /// The refresh token is unknown, expired, or its session was revoked.
    #[error("the session is unknown, expired or revoked")]
    SessionInvalid,
    /// A refresh token that was already spent came back: it leaked, and the
    /// whole session was revoked.
    #[error("a spent refresh token was presented again; the session is revoked")]
    TokenReused,
    /// The account no longer exists.
    #[error("the account is gone")]
    AccountGone,
    /// A step-up without the password, from a session whose login is not
    /// recent (older than [`RECENT_LOGIN`]).
    #[error("the password is needed: the session's login is not recent")]
    LoginNotRecent,
    /// A password-reset token that is unknown, spent, replaced by a newer
    /// one or expired.
    #[error("the reset token is unknown, used or expired")]
    ResetInvalid,
    /// Anything the other services report (store failures, invalid input).
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        AuthError::Service(e.into())
    }
}

/// How recent a session's password login must be to stand in for the
/// password in a step-up check (an account's deletion).
pub const RECENT_LOGIN: SignedDuration = SignedDuration::from_mins(5);

/// How long an e-mailed password-reset token works.
pub const RESET_TOKEN_TTL: SignedDuration = SignedDuration::from_mins(30);

/// A session just opened or continued: the account and its refresh family.
#[derive(Debug, Clone)]
pub struct Session {
    /// The account.
    pub user: User,
    /// The refresh family (the session id is its id).
    pub family: RefreshFamily,
}

super::service_ports! {
    /// The ports [`AuthService`] takes.
    AuthPorts {
        /// Accounts and their password hashes.
        users: dyn UserStore = users,
        /// Refresh-token families.
        refresh_tokens: dyn RefreshTokenStore = refresh_tokens,
        /// Where session events are recorded.
        audit_log: dyn AuditLog = audit,
        /// Sounds (an erasure deletes their bytes).
        sounds: dyn SoundStore = sounds,
        /// Their bytes.
        blobs: dyn BlobStore = blobs,
        /// The clock.
        clock: dyn Clock = clock,
        /// Ids and session secrets.
        ids: dyn IdSource = ids,
    }
}

use crate::ports::{
    AuditLog, BlobStore, Clock, IdSource, RefreshTokenStore, SoundStore, UserStore,
};

/// Login, refresh, logout, logout everywhere, password change.
#[derive(Clone)]
pub struct AuthService {
    ports: AuthPorts,
    hasher: Arc<dyn PasswordHasher>,
    session_ttl: SignedDuration,
}

impl AuthService {
    /// Sessions last `session_ttl` from login (the refresh-token lifetime).
    pub fn new(ports: Ports, hasher: Arc<dyn PasswordHasher>, session_ttl: SignedDuration) -> Self {
        Self {
            ports: ports.into(),
            hasher,
            session_ttl,
        }
    }

    /// A standalone audit record (no entity change goes with it).
    async fn record(
        &self,
        actor: Option<UserId>,
        action: &str,
        entity: uuid::Uuid,
        after: Option<String>,
        correlation_id: &str,
    ) -> Result<(), StoreError> {
        self.ports
            .audit_log
            .record(AuditRecord {
                id: self.ports.new_id(AuditId::from_uuid, AuditId::generate),
                actor,
                action: action.to_owned(),
                entity_type: "session".to_owned(),
                entity_id: entity,
                before: None,
                after,
                at: self.ports.clock.now(),
                correlation_id: correlation_id.to_owned(),
            })
            .await
    }

    /// Checks `email` and `password`, and opens a session whose first
    /// refresh token hashes to `refresh_hash`. A failure is audited, naming
    /// the account only when it exists (and never the password).
    ///
    /// # Errors
    /// [`AuthError::BadCredentials`]; store failures.
    pub async fn login(
        &self,
        email: &str,
        password: SecretString,
        refresh_hash: [u8; 32],
        correlation_id: &str,
    ) -> Result<Session, AuthError> {
        let found = match Email::parse(email) {
            Ok(email) => self.ports.users.credentials(&email).await?,
            Err(_) => None,
        };
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        let checked = hash.clone();
        let matches = self.hasher.verify(password, hash).await;
        let user = match user {
            Some(user) if matches => user,
            other => {
                // Who failed, when the account exists; nothing that would let
                // the audit log enumerate addresses otherwise.
                let (actor, entity, after) = match &other {
                    Some(u) => (
                        Some(u.id()),
                        u.id().as_uuid(),
                        Some(format!("email={}", u.email().as_str())),
                    ),
                    None => (None, uuid::Uuid::nil(), None),
                };
                self.record(actor, "session.login_failed", entity, after, correlation_id)
                    .await?;
                return Err(AuthError::BadCredentials);
            }
        };
        let now = self.ports.clock.now();
        let family = RefreshFamily {
            id: self.ports.ids.next_uuid(),
            user: user.id(),
            expires_at: now + self.session_ttl,
            logged_in_at: now,
            revoked: false,
        };
        self.ports
            .refresh_tokens
            .create(family.clone(), refresh_hash)
            .await?;
        // A reset, password change or erasure that committed while the
        // password was being checked (argon2 takes a while) revoked every
        // session that existed then, but not this one, made after: read the
        // hash again now that the session exists, and end it if the
        // password it was opened with is no longer the account's.
        let current = self.ports.users.credentials(user.email()).await?;
        let still = match (&current, &checked) {
            (Some((now_user, now_hash)), Some(hash)) => {
                use secrecy::ExposeSecret as _;
                now_user.id() == user.id() && now_hash.expose_secret() == hash.expose_secret()
            }
            _ => false,
        };
        if !still {
            self.ports.refresh_tokens.revoke_family(family.id).await?;
            return Err(AuthError::BadCredentials);
        }
        self.record(
            Some(user.id()),
            "session.login",
            family.id,
            None,
            correlation_id,
        )
        .await?;
        Ok(Session { user, family })
    }

    /// Spends the refresh token `old_hash` and makes `new_hash` current.
    /// A spent token presented again revokes the session and is audited.
    ///
    /// # Errors
    /// [`AuthError::SessionInvalid`], [`AuthError::TokenReused`],
    /// [`AuthError::AccountGone`]; store failures.
    pub async fn refresh(
        &self,
        old_hash: [u8; 32],
        new_hash: [u8; 32],
        correlation_id: &str,
    ) -> Result<Session, AuthError> {
        let now = self.ports.clock.now();
        let family = match self
            .ports
            .refresh_tokens
            .rotate(old_hash, new_hash, now)
            .await
        {
            Ok(Rotation::Rotated(family)) => family,
            Ok(Rotation::Reused(family)) => {
                self.record(
                    Some(family.user),
                    "session.refresh_reused",
                    family.id,
                    None,
                    correlation_id,
                )
                .await?;
                return Err(AuthError::TokenReused);
            }
            Ok(Rotation::Refused) | Err(StoreError::NotFound) => {
                return Err(AuthError::SessionInvalid);
            }
            Err(e) => return Err(e.into()),
        };
        let user = match self.ports.users.get(family.user).await {
            Ok(user) => user,
            Err(StoreError::NotFound) => return Err(AuthError::AccountGone),
            Err(e) => return Err(e.into()),
        };
        Ok(Session { user, family })
    }

    /// Ends the session `session` (idempotent).
    ///
    /// # Errors
    /// Store failures.
    pub async fn logout(&self, actor: &Actor, session: uuid::Uuid) -> Result<(), AuthError> {
        match self.ports.refresh_tokens.revoke_family(session).await {
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        self.record(
            Some(actor.user),
            "session.logout",
            session,
            None,
            &actor.correlation_id,
        )
        .await?;
        Ok(())
    }

    /// Ends every session of the actor, this one included.
    ///
    /// # Errors
    /// Store failures.
    pub async fn logout_everywhere(&self, actor: &Actor) -> Result<u64, AuthError> {
        let ended = self
            .ports
            .refresh_tokens
            .revoke_user(actor.user, None)
            .await?;
        self.record(
            Some(actor.user),
            "session.logout_everywhere",
            actor.user.as_uuid(),
            Some(format!("sessions={ended}")),
            &actor.correlation_id,
        )
        .await?;
        Ok(ended)
    }

    /// Checks that `password` is the actor's; a wrong one is audited as
    /// `failed` (a step-up check before a sensitive change).
    async fn check_password(
        &self,
        actor: &Actor,
        password: SecretString,
        failed: &str,
    ) -> Result<(), AuthError> {
        let user = match self.ports.users.get(actor.user).await {
            Ok(user) => user,
            Err(StoreError::NotFound) => return Err(AuthError::AccountGone),
            Err(e) => return Err(e.into()),
        };
        let hash = self
            .ports
            .users
            .credentials(user.email())
            .await?
            .map(|(_, hash)| hash);
        if !self.hasher.verify(password, hash).await {
            self.record(
                Some(actor.user),
                failed,
                actor.user.as_uuid(),
                None,
                &actor.correlation_id,
            )
            .await?;
            return Err(AuthError::BadCredentials);
        }
        Ok(())
    }

    /// Replaces the actor's password after checking the current one, and
    /// ends every other session (the one making the change stays).
    ///
    /// # Errors
    /// [`AuthError::BadCredentials`] when `current` is wrong; store failures.
    pub async fn change_password(
        &self,
        actor: &Actor,
        session: uuid::Uuid,
        current: SecretString,
        new: SecretString,
    ) -> Result<u64, AuthError> {
        self.check_password(actor, current, "session.password_change_failed")
            .await?;
        let password_hash = self.hasher.hash(new).await.map_err(|e| {
            AuthError::Service(ServiceError::Unexpected(StoreError::Unexpected(e.into())))
        })?;
        let now = self.ports.clock.now();
        self.ports
            .users
            .commit(ChangeSet {
                op: UserOp::SetPassword {
                    user: actor.user,
                    password_hash,
                },
                audit: self.ports.audit(
                    actor,
                    "user.password_change",
                    actor.user.as_uuid(),
                    None,
                    None,
                    now,
                ),
                events: Vec::new(),
                triggers: Vec::new(),
            })
            .await?;
        Ok(self
            .ports
            .refresh_tokens
            .revoke_user(actor.user, Some(session))
            .await?)
    }

    /// Starts a password reset for `email`: a fresh random token replaces
    /// the account's earlier one and is returned for the caller to e-mail.
    /// `None` when no account has the address, with no write and no audit
    /// record (the caller answers the same either way).
    ///
    /// # Errors
    /// Store failures; a failing random source.
    pub async fn request_password_reset(
        &self,
        email: &Email,
        correlation_id: &str,
    ) -> Result<Option<MailedToken>, AuthError> {
        let Some(user) = self.ports.users.find_by_email(email).await? else {
            return Ok(None);
        };
        let now = self.ports.clock.now();
        let (mailed, token_hash) = self.ports.mint_token(user, RESET_TOKEN_TTL, now)?;
        let user = &mailed.user;
        // Anyone may ask for an address's reset: the record names the
        // account as its subject, not as the one who acted.
        let audit = self.ports.account_audit(
            user,
            None,
            "user.password_reset_requested",
            None,
            None,
            now,
            correlation_id,
        );
        self.ports
            .users
            .commit(ChangeSet::audited(
                UserOp::IssueToken {
                    user: user.id(),
                    purpose: TokenPurpose::PasswordReset,
                    token_hash,
                    expires_at: mailed.expires_at,
                },
                audit,
            ))
            .await?;
        Ok(Some(mailed))
    }

    /// Sets a new password with an e-mailed reset token, which is spent,
    /// and ends every session of the account, in one commit. The account's
    /// API keys stay: they are credentials its owner manages on their own
    /// (listed and deleted at `/api-keys`).
    ///
    /// # Errors
    /// [`AuthError::ResetInvalid`] for a token that is unknown, spent,
    /// replaced or expired (nothing changes); store failures.
    pub async fn reset_password(
        &self,
        token: &SecretString,
        new: SecretString,
        correlation_id: &str,
    ) -> Result<(), AuthError> {
        let token_hash = super::token_hash(token);
        let Some(user) = self
            .ports
            .users
            .token_owner(TokenPurpose::PasswordReset, token_hash)
            .await?
        else {
            return Err(AuthError::ResetInvalid);
        };
        let role = match self.ports.users.get(user).await {
            Ok(u) => u.role(),
            Err(StoreError::NotFound) => return Err(AuthError::ResetInvalid),
            Err(e) => return Err(e.into()),
        };
        let password_hash = self.hasher.hash(new).await.map_err(|e| {
            AuthError::Service(ServiceError::Unexpected(StoreError::Unexpected(e.into())))
        })?;
        let now = self.ports.clock.now();
        let actor = Actor {
            user,
            role,
            correlation_id: correlation_id.to_owned(),
        };
        let audit = self.ports.audit(
            &actor,
            "user.password_reset",
            user.as_uuid(),
            None,
            None,
            now,
        );
        match self
            .ports
            .users
            .commit(ChangeSet::audited(
                UserOp::ResetPassword {
                    user,
                    token_hash,
                    now,
                    password_hash,
                },
                audit,
            ))
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => Err(AuthError::ResetInvalid),
            Err(e) => Err(e.into()),
        }
    }

    /// Erases the actor's account and everything it owns
    /// ([`crate::model::Owned::ALL`]) in one commit, after checking the
    /// password, or without it when `session` logged in within
    /// [`RECENT_LOGIN`]. The audit trail keeps its records under a fresh random
    /// pseudonym, which also acts in the erasure's own record. No event is
    /// sent: the account's webhooks go in the same commit, and no one else
    /// subscribes to its events.
    ///
    /// # Errors
    /// [`AuthError::BadCredentials`] when `password` is wrong (audited,
    /// nothing erased); [`AuthError::LoginNotRecent`] without a password
    /// when `session`'s login is older than [`RECENT_LOGIN`];
    /// [`AuthError::AccountGone`] when it is already gone;
    /// store failures (nothing erased).
    pub async fn delete_account(
        &self,
        actor: &Actor,
        session: uuid::Uuid,
        password: Option<SecretString>,
    ) -> Result<(), AuthError> {
        match password {
            Some(password) => {
                self.check_password(actor, password, "session.delete_account_failed")
                    .await?;
            }
            None => {
                // A credential without a session of the account's own (an
                // API key) has no login to stand in for the password.
                let recent = match self.ports.refresh_tokens.family(session).await {
                    Ok(family) => {
                        family.user == actor.user
                            && login_is_recent(family.logged_in_at, self.ports.clock.now())
                    }
                    Err(StoreError::NotFound) => false,
                    Err(e) => return Err(e.into()),
                };
                if !recent {
                    return Err(AuthError::LoginNotRecent);
                }
            }
        }
        self.erase_sound_bytes(actor.user).await?;
        let pseudonym = self.ports.new_id(UserId::from_uuid, UserId::generate);
        let as_pseudonym = Actor {
            user: pseudonym,
            role: actor.role,
            correlation_id: actor.correlation_id.clone(),
        };
        let audit = self.ports.audit(
            &as_pseudonym,
            "user.erase",
            pseudonym.as_uuid(),
            None,
            None,
            self.ports.clock.now(),
        );
        match self
            .ports
            .users
            .commit(ChangeSet::audited(
                UserOp::Erase {
                    user: actor.user,
                    pseudonym: pseudonym.as_uuid(),
                },
                audit,
            ))
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => Err(AuthError::AccountGone),
            Err(e) => Err(e.into()),
        }
    }
}

impl AuthService {
    /// Deletes the bytes of every sound of `user`, before the commit that
    /// erases their rows: a failure here erases nothing and the erasure can
    /// be retried, while bytes whose row was gone could no longer be found.
    async fn erase_sound_bytes(&self, user: UserId) -> Result<(), AuthError> {
        let live = self.ports.sounds.list(user, u32::MAX).await?;
        let deleted = self.ports.sounds.tombstones(Some(user), u32::MAX).await?;
        for sound in live.into_iter().chain(deleted) {
            match self.ports.blobs.delete(user, sound.id).await {
                Ok(()) | Err(crate::ports::BlobError::NotFound) => {}
                Err(e) => {
                    return Err(
                        ServiceError::Unavailable(StoreError::Retryable(Box::new(e))).into(),
                    );
                }
            }
        }
        Ok(())
    }
}

/// Whether a login at `at` is recent enough at `now` to stand in for the
/// password ([`RECENT_LOGIN`]); a login stamped in the future (a clock
/// step) is not.
pub fn login_is_recent(at: jiff::Timestamp, now: jiff::Timestamp) -> bool {
    at <= now && now.duration_since(at) <= RECENT_LOGIN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_is_recent_for_five_minutes_and_never_from_the_future() {
        let now: jiff::Timestamp = "2026-12-04T10:00:00Z".parse().unwrap();
        let ago = |secs: i64| now - SignedDuration::from_secs(secs);
        assert!(login_is_recent(now, now));
        assert!(login_is_recent(ago(300), now), "exactly 5 minutes");
        assert!(!login_is_recent(ago(301), now));
        assert!(
            !login_is_recent(now + SignedDuration::from_secs(1), now),
            "a login stamped ahead of the clock"
        );
        assert!(
            !login_is_recent(jiff::Timestamp::UNIX_EPOCH, now),
            "sessions from before the login instant was kept"
        );
    }
}
