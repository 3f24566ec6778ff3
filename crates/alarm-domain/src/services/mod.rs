//! Use-case services: validate, check ownership, compute triggers, and submit one change set per use case.

mod alarms;
mod api_keys;
mod auth;
mod calendar;
mod routines;
mod sounds;
mod uploads;
mod users;
mod webhooks;

use std::sync::Arc;

use jiff::Timestamp;

pub use alarms::{AlarmPorts, AlarmService};
pub use api_keys::{ApiKeyPorts, ApiKeyService, KeyRefused, MAX_ROTATION_OVERLAP, NewApiKey};
pub use auth::{
    AuthError, AuthPorts, AuthService, PasswordHasher, RECENT_LOGIN, RESET_TOKEN_TTL, Session,
    login_is_recent,
};
pub use calendar::{
    BUILTIN_YEARS_AHEAD, CalendarPorts, CalendarService, ListedHoliday,
    MAX_CUSTOM_HOLIDAYS_PER_COUNTRY, MAX_EXCEPTION_PERIODS_PER_USER, MAX_HOLIDAY_OVERRIDES,
    ReplanStep,
};
// The fire-time re-check lives with the rest of the fire policy in
// `crate::firing`; this path is kept for callers written against it.
pub use crate::firing::{FireDecision, SkipReason, decide_fire, next_fire_plan};
pub use routines::{MAX_ROUTINES_PER_ALARM, MAX_ROUTINES_PER_USER, RoutinePorts, RoutineService};
pub use sounds::{SoundError, SoundPorts, SoundService};
pub use uploads::{
    Checksum, Patch, Patched, UPLOAD_TTL, UploadError, UploadPorts, UploadService, UploadStatus,
};
pub use users::{NewUser, ProfileChange, UserPorts, UserService, VERIFY_TOKEN_TTL};
pub use webhooks::{MAX_WEBHOOKS_PER_USER, NewWebhook, WebhookPorts, WebhookService};

use crate::error::ValidationError;
use crate::ids::{AuditId, EventId, UserId};
use crate::model::{AlarmEvent, AlarmEventKind, AuditRecord, Role};
use crate::ports::{
    AlarmEventStore, AlarmStore, AuditLog, Clock, ExceptionPeriodStore, HolidayStore, IdSource,
    IdempotencyStore, Outbox, RefreshTokenStore, RoutineStore, StoreError, TargetGuard,
    TriggerPlan, TriggerQueue, TriggerWake, UserStore, WebhookStore,
};

/// Everything the services need, as shared trait objects. Adapters that
/// share one database hand out ports backed by it; the testkit hands out
/// its in-memory fakes.
#[derive(Clone)]
pub struct Ports {
    /// Accounts.
    pub users: Arc<dyn UserStore>,
    /// Alarms.
    pub alarms: Arc<dyn AlarmStore>,
    /// Exception periods.
    pub exceptions: Arc<dyn ExceptionPeriodStore>,
    /// Holidays and preferences.
    pub holidays: Arc<dyn HolidayStore>,
    /// Routines.
    pub routines: Arc<dyn RoutineStore>,
    /// Webhook registrations.
    pub webhooks: Arc<dyn WebhookStore>,
    /// API keys.
    pub api_keys: Arc<dyn crate::ports::ApiKeyStore>,
    /// Alarm history.
    pub events: Arc<dyn AlarmEventStore>,
    /// Audit log.
    pub audit: Arc<dyn AuditLog>,
    /// Triggers, leases, ringing occurrences.
    pub queue: Arc<dyn TriggerQueue>,
    /// Refresh-token families (used by the API's auth).
    pub refresh_tokens: Arc<dyn RefreshTokenStore>,
    /// Idempotency records (used by the API for `Idempotency-Key`).
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Resumable uploads' state.
    pub uploads: Arc<dyn crate::ports::UploadStore>,
    /// Sounds (the rows; their bytes are in `blobs`).
    pub sounds: Arc<dyn crate::ports::SoundStore>,
    /// Object storage: completed uploads, sounds. A database adapter's
    /// ports carry [`crate::ports::NoStorage`] until an app installs one
    /// with [`Ports::with_storage`].
    pub blobs: Arc<dyn crate::ports::BlobStore>,
    /// Where uploads' parts wait (the same object storage).
    pub parts: Arc<dyn crate::ports::PartStore>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The id source.
    pub ids: Arc<dyn IdSource>,
    /// Told after a commit that created or moved a trigger.
    pub wake: Arc<dyn TriggerWake>,
    /// Notifications waiting to be sent (webhooks, email).
    pub outbox: Arc<dyn Outbox>,
    /// The operator's quotas and bounds.
    pub limits: crate::limits::Limits,
    /// Which webhook targets may be registered (the SSRF guard);
    /// [`crate::ports::AnyTarget`] unless an app installs a real guard with
    /// [`Ports::with_targets`].
    pub targets: Arc<dyn TargetGuard>,
}

/// Who is acting, and under which request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The authenticated user.
    pub user: UserId,
    /// Their role.
    pub role: Role,
    /// The request id, copied into audit records.
    pub correlation_id: String,
}

impl Actor {
    /// `user` acting under `correlation_id`.
    pub fn for_user(user: &crate::model::User, correlation_id: &str) -> Self {
        Self {
            user: user.id(),
            role: user.role(),
            correlation_id: correlation_id.to_owned(),
        }
    }
}

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input is invalid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Missing, or another owner's.
    #[error("not found")]
    NotFound,
    /// The actor may not do this (e.g. holiday writes by a non-admin).
    #[error("forbidden")]
    Forbidden,
    /// A uniqueness rule or a concurrent change got in the way.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The entity changed since the client read it.
    #[error("stale version: expected {expected}, found {actual}")]
    StaleVersion {
        /// The client's version.
        expected: u64,
        /// The stored version.
        actual: u64,
    },
    /// The account holds as many as the named quota allows.
    #[error("over quota {quota} ({limit})")]
    OverQuota {
        /// The quota's name (`alarms_per_user`).
        quota: &'static str,
        /// Its limit.
        limit: u32,
    },
    /// Snooze or dismiss with nothing ringing.
    #[error("the alarm is not ringing")]
    NotRinging,
    /// The occurrence was snoozed as often as the alarm allows.
    #[error("snooze limit reached ({max})")]
    SnoozeLimit {
        /// The alarm's limit.
        max: u8,
    },
    /// A transient store failure; retrying may succeed.
    #[error("temporarily unavailable")]
    Unavailable(#[source] StoreError),
    /// Anything else.
    #[error("unexpected failure")]
    Unexpected(#[source] StoreError),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ServiceError::NotFound,
            StoreError::Conflict(what) => ServiceError::Conflict(what),
            StoreError::StaleVersion { expected, actual } => {
                ServiceError::StaleVersion { expected, actual }
            }
            StoreError::OverQuota { quota, limit } => ServiceError::OverQuota { quota, limit },
            StoreError::LeaseLost => ServiceError::Conflict("a concurrent change won".to_owned()),
            e @ StoreError::Retryable(_) => ServiceError::Unavailable(e),
            e @ StoreError::Unexpected(_) => ServiceError::Unexpected(e),
        }
    }
}

impl Ports {
    /// The same ports, telling `wake` about new triggers.
    #[must_use]
    pub fn with_wake(mut self, wake: Arc<dyn TriggerWake>) -> Self {
        self.wake = wake;
        self
    }

    /// Tells the in-process engine about the triggers `plans` committed.
    /// The same ports under the operator's `limits`.
    #[must_use]
    pub fn with_limits(mut self, limits: crate::limits::Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The same ports over the object storage `blobs` and `parts`.
    #[must_use]
    pub fn with_storage(
        mut self,
        blobs: Arc<dyn crate::ports::BlobStore>,
        parts: Arc<dyn crate::ports::PartStore>,
    ) -> Self {
        self.blobs = blobs;
        self.parts = parts;
        self
    }

    /// The same ports with `targets` as the webhook target guard.
    #[must_use]
    pub fn with_targets(mut self, targets: Arc<dyn TargetGuard>) -> Self {
        self.targets = targets;
        self
    }
}

/// A one-time token just issued for an account: whom to e-mail what. The
/// token is the only copy of its text; the store keeps its SHA-256.
/// (`Debug` shows the token redacted.)
#[derive(Debug)]
pub struct MailedToken {
    /// The account (its e-mail is where the token goes).
    pub user: crate::model::User,
    /// The token's text (43 characters of URL-safe base64).
    pub token: secrecy::SecretString,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// The SHA-256 of an e-mailed token's text, as stored.
pub(crate) fn token_hash(token: &secrecy::SecretString) -> [u8; 32] {
    use secrecy::ExposeSecret as _;
    use sha2::{Digest, Sha256};
    Sha256::digest(token.expose_secret().as_bytes()).into()
}

/// Tells the in-process engine about the triggers `plans` committed.
pub(crate) fn woke(wake: &dyn TriggerWake, plans: &[TriggerPlan]) {
    for plan in plans {
        if let TriggerPlan::Reschedule {
            next: Some(next), ..
        } = plan
        {
            wake.due(next.due_at);
        }
    }
}

/// What every service makes from its id source: ids, audit records and
/// alarm events.
pub(crate) trait Basics {
    /// The id source.
    fn id_source(&self) -> &dyn IdSource;

    /// An audit record about `user`'s account, made by `by`: the account
    /// itself, or `None` for the operator or an anonymous caller (anyone
    /// may ask for an address's reset link).
    #[allow(clippy::too_many_arguments)]
    fn account_audit(
        &self,
        user: &crate::model::User,
        by: Option<UserId>,
        action: &str,
        before: Option<String>,
        after: Option<String>,
        now: Timestamp,
        correlation_id: &str,
    ) -> AuditRecord {
        let mut record = self.audit(
            &Actor::for_user(user, correlation_id),
            action,
            user.id().as_uuid(),
            before,
            after,
            now,
        );
        record.actor = by;
        record
    }

    /// An audit record for `actor` at `now`; the entity type is the
    /// action's prefix (`alarm.update` → `alarm`).
    fn audit(
        &self,
        actor: &Actor,
        action: &str,
        entity_id: uuid::Uuid,
        before: Option<String>,
        after: Option<String>,
        now: Timestamp,
    ) -> AuditRecord {
        AuditRecord {
            id: self.new_id(AuditId::from_uuid, AuditId::generate),
            actor: Some(actor.user),
            action: action.to_owned(),
            entity_type: action.split('.').next().unwrap_or(action).to_owned(),
            entity_id,
            before,
            after,
            at: now,
            correlation_id: actor.correlation_id.clone(),
        }
    }

    /// An event of `alarm` (as it is after the change) at `now`, with its
    /// webhook data.
    fn event(
        &self,
        alarm: &crate::model::Alarm,
        kind: AlarmEventKind,
        now: Timestamp,
        occurrence: Option<Timestamp>,
        detail: Option<String>,
        change: crate::sending::EventChange<'_>,
    ) -> AlarmEvent {
        let data = crate::sending::event_data(alarm, occurrence, detail.as_deref(), change);
        AlarmEvent {
            id: self.new_id(EventId::from_uuid, EventId::generate),
            alarm: alarm.id(),
            owner: alarm.owner(),
            kind,
            at: now,
            occurrence,
            detail,
            data: Some(data),
        }
    }

    /// A fresh e-mailed token for `user`, working for `ttl` from `now`: 32
    /// random bytes as URL-safe base64 (43 characters), with the SHA-256
    /// the store keeps instead of the text.
    fn mint_token(
        &self,
        user: crate::model::User,
        ttl: jiff::SignedDuration,
        now: Timestamp,
    ) -> Result<(MailedToken, [u8; 32]), ServiceError> {
        let mut bytes = [0u8; 32];
        self.id_source()
            .secret_bytes(&mut bytes)
            .map_err(|e| ServiceError::Unexpected(StoreError::Unexpected(e.into())))?;
        let token = secrecy::SecretString::from({
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        });
        let hash = token_hash(&token);
        Ok((
            MailedToken {
                user,
                token,
                expires_at: now + ttl,
            },
            hash,
        ))
    }

    /// A typed id from the id source (which must produce v7 UUIDs; a
    /// misbehaving source falls back to a generated one rather than fail).
    fn new_id<T>(
        &self,
        from: fn(uuid::Uuid) -> Result<T, ValidationError>,
        fallback: fn() -> T,
    ) -> T {
        from(self.id_source().next_uuid()).unwrap_or_else(|_| fallback())
    }
}

/// Declares the ports one service takes, picked out of the [`Ports`] the
/// apps compose (`field: Port = field of Ports`): a service holds these
/// and nothing else, so what it may touch is written in its type.
macro_rules! service_ports {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident: $port:ty = $from:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: std::sync::Arc<$port>,)*
        }

        impl From<$crate::services::Ports> for $name {
            fn from(ports: $crate::services::Ports) -> Self {
                Self { $($field: ports.$from,)* }
            }
        }

        impl $crate::services::Basics for $name {
            fn id_source(&self) -> &dyn $crate::ports::IdSource {
                self.ids.as_ref()
            }
        }
    };
}
pub(crate) use service_ports;
