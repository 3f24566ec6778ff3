//! Store ports: users, alarms, exception periods, holidays and preferences, routines, webhooks, events, audit, refresh tokens.

use async_trait::async_trait;
use jiff::Timestamp;
use secrecy::SecretString;

use super::{ChangeSet, Page, PageRequest, StoreError, TriggerPlan};
use crate::ids::{
    AlarmId, AuditId, EventId, ExceptionPeriodId, HolidayId, RoutineId, UserId, WebhookId,
};
use crate::model::{
    Alarm, AlarmEvent, AlarmVersion, AuditRecord, Country, Email, ExceptionPeriod, Holiday,
    HolidayPreference, Routine, User, WebhookRegistration,
};

/// What an e-mailed account token is for; an account holds at most one
/// of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TokenPurpose {
    /// Choosing a new password (`/auth/password-reset`).
    PasswordReset,
    /// Proving the account receives mail at its address (`/auth/verify`).
    EmailVerification,
}

impl TokenPurpose {
    /// The stable name stores keep.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::EmailVerification => "email_verification",
        }
    }
}

/// A user-store operation.
#[derive(Debug, Clone)]
pub enum UserOp {
    /// A new account with its password hash (a PHC string; secret because it
    /// enables offline guessing).
    Register {
        /// The account.
        user: User,
        /// The password hash.
        password_hash: SecretString,
    },
    /// Profile fields changed (display name, zone, locale). The role and
    /// the verification are not profile fields: the store keeps its own.
    Update(User),
    /// The account's role, set alone (an operator's grant or revoke), so
    /// that no concurrent profile change can write an older role back.
    SetRole {
        /// The account.
        user: UserId,
        /// The role from now on.
        role: crate::model::Role,
    },
    /// A new password hash for the account.
    SetPassword {
        /// The account.
        user: UserId,
        /// The new hash.
        password_hash: SecretString,
    },
    /// An e-mailed token for the account, stored as `token_hash` (the
    /// SHA-256 of the e-mailed text) until `expires_at`; it replaces the
    /// account's earlier token of the same purpose, so only the newest link
    /// works.
    IssueToken {
        /// The account.
        user: UserId,
        /// What the token is for.
        purpose: TokenPurpose,
        /// SHA-256 of the token's text.
        token_hash: [u8; 32],
        /// When the token stops working.
        expires_at: Timestamp,
    },
    /// Spends the account's password-reset token `token_hash` (it must be the
    /// newest and not expired at `now`; it is deleted), sets the new
    /// password hash and revokes every session of the account, in one
    /// transaction.
    ResetPassword {
        /// The account.
        user: UserId,
        /// SHA-256 of the presented token's text.
        token_hash: [u8; 32],
        /// The instant the token is judged at.
        now: Timestamp,
        /// The new hash.
        password_hash: SecretString,
    },
    /// Marks the account's address verified at `now`, unless it already
    /// was (the first instant stays). With `grant_admin`, the account
    /// becomes an administrator, but only if this commit is the one that
    /// verifies it: a second verification never undoes an operator's
    /// revoke. With `token_hash`, the account's verification token is spent
    /// in the same transaction (it must be the newest and not expired at
    /// `now`); without (an operator's verification), any pending one is
    /// dropped.
    Verify {
        /// The account.
        user: UserId,
        /// SHA-256 of the presented token's text; `None` for an operator.
        token_hash: Option<[u8; 32]>,
        /// The instant of the verification.
        now: Timestamp,
        /// Whether a first verification makes the account an administrator
        /// (its address is on the bootstrap list).
        grant_admin: bool,
    },
    /// The account and everything it owns ([`crate::model::Owned::ALL`]),
    /// in one transaction: owned rows are deleted, and the audit records
    /// that name the account get `pseudonym` in its place, with their
    /// summaries cleared.
    Erase {
        /// The account.
        user: UserId,
        /// What the audit trail calls the account from now on (random,
        /// never derived from the id).
        pseudonym: uuid::Uuid,
    },
}

/// Accounts and their credentials.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait UserStore: Send + Sync {
    /// The user with `id`.
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when no such user exists.
    async fn get(&self, id: UserId) -> Result<User, StoreError>;

    /// The users among `ids` that exist, in any order (the trigger engine
    /// loads a batch's owners at once).
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn get_many(&self, ids: Vec<UserId>) -> Result<Vec<User>, StoreError>;

    /// The user whose email equals `email` case-insensitively, if any.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;

    /// The user and password hash for a login, if the email is registered.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn credentials(&self, email: &Email) -> Result<Option<(User, SecretString)>, StoreError>;

    /// The account a `purpose` token with this hash was issued to, if one
    /// is stored (valid or not: the op that spends it judges it).
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn token_owner(
        &self,
        purpose: TokenPurpose,
        token_hash: [u8; 32],
    ) -> Result<Option<UserId>, StoreError>;

    /// Commits a registration, profile change, new password, e-mailed
    /// token, reset, verification or erasure with its audit record.
    ///
    /// # Errors
    /// MUST return [`StoreError::Conflict`] when registering an id or an
    /// email (case-insensitively) that exists, and [`StoreError::NotFound`]
    /// when updating, verifying or erasing a missing user, or resetting or
    /// verifying with a token that is not the account's newest of its
    /// purpose or has expired; nothing is stored then.
    async fn commit(&self, change: ChangeSet<UserOp>) -> Result<(), StoreError>;
}

/// An alarm-store operation.
#[derive(Debug, Clone)]
pub enum AlarmOp {
    /// A new alarm (version 1), if the owner's alarms are under the quota.
    Create(Alarm, crate::limits::Quota),
    /// A new version of an existing alarm, based on `expected`.
    Update {
        /// The new state (its version is `expected + 1`).
        alarm: Alarm,
        /// The version the change was computed from.
        expected: AlarmVersion,
    },
    /// Removal, based on `expected`.
    Delete {
        /// The owner.
        owner: UserId,
        /// The alarm.
        id: AlarmId,
        /// The version the deletion was decided on.
        expected: AlarmVersion,
    },
}

impl AlarmOp {
    /// The optimistic-version rule, written once for every adapter: an
    /// update or a deletion applies only to the version it was computed
    /// from (`stored`, read under the adapter's lock), and an update must
    /// carry the next version. A creation has nothing to check here.
    ///
    /// # Errors
    /// [`StoreError::StaleVersion`] when `stored` is not the expected
    /// version; [`StoreError::Conflict`] when an update does not carry
    /// `expected + 1`.
    pub fn check_version(&self, stored: AlarmVersion) -> Result<(), StoreError> {
        let expected = match self {
            AlarmOp::Create(..) => return Ok(()),
            AlarmOp::Update { expected, .. } | AlarmOp::Delete { expected, .. } => *expected,
        };
        if stored != expected {
            return Err(StoreError::StaleVersion {
                expected: expected.get(),
                actual: stored.get(),
            });
        }
        match self {
            AlarmOp::Update { alarm, expected } if alarm.version() != expected.next() => Err(
                StoreError::Conflict("an update must carry version expected + 1".to_owned()),
            ),
            _ => Ok(()),
        }
    }
}

/// Alarms, scoped to their owner.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait AlarmStore: Send + Sync {
    /// The owner's alarm `id`.
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when it does not exist or belongs
    /// to another owner.
    async fn get(&self, owner: UserId, id: AlarmId) -> Result<Alarm, StoreError>;

    /// The alarm `id` whoever owns it (for the trigger runner).
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when it does not exist.
    async fn get_any(&self, id: AlarmId) -> Result<Alarm, StoreError>;

    /// The alarms among `ids` that exist, whoever owns them, in any order
    /// (the trigger runner loads a batch at once).
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn get_many(&self, ids: Vec<AlarmId>) -> Result<Vec<Alarm>, StoreError>;

    /// The owner's alarms in id order, optionally only enabled or disabled ones.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn list(
        &self,
        owner: UserId,
        enabled: Option<bool>,
        page: PageRequest<AlarmId>,
    ) -> Result<Page<Alarm, AlarmId>, StoreError>;

    /// Commits an alarm change with its audit record, events and trigger plans.
    ///
    /// # Errors
    /// MUST return [`StoreError::OverQuota`] (from [`crate::limits::Quota::admit`]
    /// on the owner's count, taken under a lock on the owner so that
    /// concurrent creations cannot pass it) when a create is over its quota.
    /// MUST return [`StoreError::Conflict`] when creating an existing id or
    /// when an update's new version is not `expected + 1`,
    /// [`StoreError::NotFound`] when updating or deleting a missing (or
    /// another owner's) alarm, and [`StoreError::StaleVersion`] when the
    /// stored version is not `expected`. Nothing is stored on error.
    async fn commit(&self, change: ChangeSet<AlarmOp>) -> Result<(), StoreError>;
}

/// An exception-period operation.
#[derive(Debug, Clone)]
pub enum ExceptionOp {
    /// A new period, if the owner's periods are under the quota.
    Create(ExceptionPeriod, crate::limits::Quota),
    /// Replace a period (same id and owner).
    Update(ExceptionPeriod),
    /// Remove a period.
    Delete {
        /// The owner.
        owner: UserId,
        /// The period.
        id: ExceptionPeriodId,
    },
}

/// Exception periods, scoped to their owner.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ExceptionPeriodStore: Send + Sync {
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when missing or another owner's.
    async fn get(
        &self,
        owner: UserId,
        id: ExceptionPeriodId,
    ) -> Result<ExceptionPeriod, StoreError>;

    /// All of the owner's periods, ordered by start date then id.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn list(&self, owner: UserId) -> Result<Vec<ExceptionPeriod>, StoreError>;

    /// Every period of every owner in `owners`, each owner's ordered by
    /// start date then id (the trigger engine loads a batch's at once).
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn list_many(&self, owners: Vec<UserId>) -> Result<Vec<ExceptionPeriod>, StoreError>;

    /// Commits the change with its audit record and the recomputed triggers
    /// of the owner's alarms.
    ///
    /// # Errors
    /// MUST return [`StoreError::OverQuota`] (from [`crate::limits::Quota::admit`]
    /// on the owner's count, under a lock on the owner) when a create is over its quota.
    /// MUST return [`StoreError::Conflict`] for an existing id on create and
    /// [`StoreError::NotFound`] for a missing or another owner's period on
    /// update or delete. Nothing is stored on error.
    async fn commit(&self, change: ChangeSet<ExceptionOp>) -> Result<(), StoreError>;
}

/// A holiday operation (administrators only; enforced by the service).
#[derive(Debug, Clone)]
pub enum HolidayOp {
    /// A new holiday.
    Create(Holiday),
    /// New values for a stored holiday (same id).
    Update(Holiday),
    /// Remove a holiday.
    Delete(HolidayId),
}

/// A pending re-plan of every alarm of one country's users, left by an
/// administrator's holiday write and worked through by the engine's
/// process in bounded batches (`CalendarService::replan_step`).
///
/// One job per country: a new holiday write while one is pending starts
/// it over (a new `generation`, no cursor), so the last write's holidays
/// are what every user ends up planned by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplanJob {
    /// The country whose users' alarms are re-planned.
    pub country: Country,
    /// Bumped by every write that (re)starts the job; a finished job is
    /// kept (step -1, never handed out), so a generation is never reused
    /// and a batch read from an older job can never advance a newer one.
    pub generation: i64,
    /// Bumped by every batch: a batch commits only if the job is still at
    /// the generation and step it was read at, so two engines never move
    /// the cursor past each other's work.
    pub step: i64,
    /// The last user already re-planned (users are walked in id order).
    pub after: Option<UserId>,
    /// When the newest write asked for it.
    pub requested_at: Timestamp,
}

/// A user's holiday preferences: a default and per-holiday overrides.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HolidayPreferences {
    /// What happens on holidays without an override.
    pub default: HolidayPreference,
    /// Overrides, one per holiday.
    pub overrides: Vec<(HolidayId, HolidayPreference)>,
}

impl HolidayPreferences {
    /// The effective preference for `holiday`.
    pub fn for_holiday(&self, holiday: HolidayId) -> HolidayPreference {
        self.overrides
            .iter()
            .find(|(id, _)| *id == holiday)
            .map_or(self.default, |(_, p)| *p)
    }
}

/// A preference operation.
#[derive(Debug, Clone)]
pub enum PreferenceOp {
    /// Replace the owner's preferences.
    Set {
        /// The owner.
        owner: UserId,
        /// The new preferences.
        preferences: HolidayPreferences,
    },
}

/// Shared holidays and per-user holiday preferences.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait HolidayStore: Send + Sync {
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when missing.
    async fn get(&self, id: HolidayId) -> Result<Holiday, StoreError>;

    /// Holidays of `country` (all states), ordered by id.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn list(&self, country: Country) -> Result<Vec<Holiday>, StoreError>;

    /// Commits a holiday change with its audit record and recomputed
    /// triggers, and (re)starts the [`ReplanJob`] of each country in
    /// `replan` in the same transaction (a pending job of that country
    /// gets a new generation and loses its cursor).
    ///
    /// # Errors
    /// MUST return [`StoreError::Conflict`] for an existing id, or for the
    /// same name on the same date in the same country and state;
    /// [`StoreError::NotFound`] when deleting a missing holiday. Deleting a
    /// holiday also removes every preference override that names it.
    async fn commit(
        &self,
        change: ChangeSet<HolidayOp>,
        replan: Vec<Country>,
    ) -> Result<(), StoreError>;

    /// The pending re-plan job requested first, if any.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn replan_job(&self) -> Result<Option<ReplanJob>, StoreError>;

    /// Up to `limit` ids of the users living in `job`'s country after its
    /// cursor, in id order.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn replan_users(&self, job: &ReplanJob, limit: usize) -> Result<Vec<UserId>, StoreError>;

    /// If `job` is still stored at the generation and step it was read at:
    /// applies `plans` and moves its cursor to `next` with the next step
    /// (`None`: the job is finished; it is no longer handed out, its
    /// generation kept), in one transaction, and
    /// answers `true`. Otherwise writes nothing and answers `false` (a new
    /// holiday write restarted it, or another engine took this batch).
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn replan_advance(
        &self,
        job: &ReplanJob,
        next: Option<UserId>,
        plans: Vec<TriggerPlan>,
    ) -> Result<bool, StoreError>;

    /// The owner's preferences (the default `fire` with no overrides when
    /// never set).
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn preferences(&self, owner: UserId) -> Result<HolidayPreferences, StoreError>;

    /// The preferences of every owner in `owners` (the default for those
    /// who never set any), in any order.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn preferences_many(
        &self,
        owners: Vec<UserId>,
    ) -> Result<Vec<(UserId, HolidayPreferences)>, StoreError>;

    /// Commits new preferences with their audit record and recomputed triggers.
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when an override names a missing holiday.
    async fn commit_preferences(&self, change: ChangeSet<PreferenceOp>) -> Result<(), StoreError>;
}

/// A routine operation.
#[derive(Debug, Clone)]
pub enum RoutineOp {
    /// A new routine, if the owner's routines are under the quota.
    Create(Routine, crate::limits::Quota),
    /// Replace a routine (same id and owner).
    Update(Routine),
    /// Replace the routines attached to one of the owner's alarms (in the
    /// order they start); an empty list detaches them all.
    Attach {
        /// The owner of both the alarm and the routines.
        owner: UserId,
        /// The alarm.
        alarm: AlarmId,
        /// The routines, in order, no id twice.
        routines: Vec<RoutineId>,
    },
    /// Remove a routine (it is detached from every alarm).
    Delete {
        /// The owner.
        owner: UserId,
        /// The routine.
        id: RoutineId,
    },
}

/// Routines, scoped to their owner.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait RoutineStore: Send + Sync {
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when missing or another owner's.
    async fn get(&self, owner: UserId, id: RoutineId) -> Result<Routine, StoreError>;

    /// The owner's routines in id order.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn list(
        &self,
        owner: UserId,
        page: PageRequest<RoutineId>,
    ) -> Result<Page<Routine, RoutineId>, StoreError>;

    /// # Errors
    /// MUST return [`StoreError::OverQuota`] (from [`crate::limits::Quota::admit`]
    /// on the owner's count, under a lock on the owner) when a create is over its quota.
    /// MUST return [`StoreError::Conflict`] for an existing id on create and
    /// [`StoreError::NotFound`] for a missing or another owner's routine,
    /// or (for `Attach`) alarm; [`StoreError::Conflict`] when an `Attach`
    /// names a routine that is not (or no longer) the owner's.
    async fn commit(&self, change: ChangeSet<RoutineOp>) -> Result<(), StoreError>;

    /// The routines attached to the owner's `alarm`, in order.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for a missing or another owner's alarm.
    async fn attached(&self, owner: UserId, alarm: AlarmId) -> Result<Vec<Routine>, StoreError>;

    /// The routines attached to each of `alarms` (any owner: the trigger
    /// engine's batch), as (alarm, routine) pairs in each alarm's order.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn attached_many(
        &self,
        alarms: Vec<AlarmId>,
    ) -> Result<Vec<(AlarmId, Routine)>, StoreError>;
}

/// A webhook-registration operation.
#[derive(Debug, Clone)]
pub enum WebhookOp {
    /// A new registration, if the owner's registrations are under the quota.
    Create(WebhookRegistration, crate::limits::Quota),
    /// Replace a registration's settings (same id and owner). Its signing
    /// secrets stay as stored: only [`WebhookOp::RotateSecret`] changes
    /// them.
    Update(WebhookRegistration),
    /// Replace the signing secret, if it is still `expected` (the one the
    /// rotation read): of two racing rotations one is a
    /// [`StoreError::Conflict`], so no client is shown a secret that was
    /// never stored.
    RotateSecret {
        /// The owner.
        owner: UserId,
        /// The registration.
        id: WebhookId,
        /// The secret the rotation replaces.
        expected: SecretString,
        /// The new secret.
        secret: SecretString,
        /// The replaced secret's overlap, if any.
        previous: Option<crate::model::PreviousSecret>,
    },
    /// Remove a registration.
    Delete {
        /// The owner.
        owner: UserId,
        /// The registration.
        id: WebhookId,
    },
}

/// Whether a rotation that read `expected` may replace the `stored`
/// secret: the one rule of [`WebhookOp::RotateSecret`] every store applies.
///
/// # Errors
/// [`StoreError::Conflict`] when another rotation replaced it meanwhile.
pub fn rotation_applies(stored: &SecretString, expected: &SecretString) -> Result<(), StoreError> {
    use secrecy::ExposeSecret;
    if stored.expose_secret() != expected.expose_secret() {
        return Err(StoreError::Conflict(
            "the secret was rotated meanwhile".into(),
        ));
    }
    Ok(())
}

/// Webhook registrations, scoped to their owner.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when missing or another owner's.
    async fn get(&self, owner: UserId, id: WebhookId) -> Result<WebhookRegistration, StoreError>;

    /// The owner's registrations in id order.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn list(&self, owner: UserId) -> Result<Vec<WebhookRegistration>, StoreError>;

    /// # Errors
    /// MUST return [`StoreError::OverQuota`] (from [`crate::limits::Quota::admit`]
    /// on the owner's count, under a lock on the owner) when a create is over its quota.
    /// MUST return [`StoreError::Conflict`] for an existing id on create and
    /// for a rotation whose `expected` secret is no longer stored, and
    /// [`StoreError::NotFound`] for a missing or another owner's registration.
    /// An update MUST keep the stored secrets.
    async fn commit(&self, change: ChangeSet<WebhookOp>) -> Result<(), StoreError>;
}

/// Alarm history (written only through change sets and fire outcomes).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait AlarmEventStore: Send + Sync {
    /// The owner's events of `alarm`, oldest first, in id order. Events of a
    /// deleted alarm remain readable by its owner.
    ///
    /// # Errors
    /// Only infrastructure failures (another owner's alarm yields an empty page).
    async fn list(
        &self,
        owner: UserId,
        alarm: AlarmId,
        page: PageRequest<EventId>,
    ) -> Result<Page<AlarmEvent, EventId>, StoreError>;
}

/// The audit log (append-only, written through change sets).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Stores one record that goes with no entity change (a login, a
    /// logout); records that do are part of their change set.
    ///
    /// # Errors
    /// MUST return [`StoreError::Conflict`] when the record's id exists.
    async fn record(&self, record: AuditRecord) -> Result<(), StoreError>;

    /// Records in id order, optionally only those of one actor.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn list(
        &self,
        actor: Option<UserId>,
        page: PageRequest<AuditId>,
    ) -> Result<Page<AuditRecord, AuditId>, StoreError>;
}

/// A refresh-token family: the chain of rotated tokens of one login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFamily {
    /// The family id.
    pub id: uuid::Uuid,
    /// The user.
    pub user: UserId,
    /// When the family stops being usable.
    pub expires_at: Timestamp,
    /// The password login that opened the session (kept across refreshes;
    /// the Unix epoch for sessions opened before it was recorded).
    pub logged_in_at: Timestamp,
    /// Whether it was revoked (logout or reuse).
    pub revoked: bool,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// It was current: spent now, the new one is current.
    Rotated(RefreshFamily),
    /// It was spent already: it leaked, so the family is revoked now.
    Reused(RefreshFamily),
    /// The family is revoked or expired; nothing changed.
    Refused,
}

/// An API-key operation.
#[derive(Debug, Clone)]
pub enum ApiKeyOp {
    /// A new key with the SHA-256 of its text, if the owner's keys are
    /// under the quota.
    Create {
        /// The key.
        key: crate::model::ApiKey,
        /// The hash of the key's text.
        hash: [u8; 32],
        /// How many keys the owner may hold.
        quota: crate::limits::Quota,
    },
    /// A new key replacing the owner's `old` one, which retires at
    /// `old_retires_at`, if the owner's other keys are under the quota
    /// ([`crate::limits::Quota::admit_replacing`]).
    Rotate {
        /// The key being replaced.
        old: crate::ids::ApiKeyId,
        /// When it stops working.
        old_retires_at: jiff::Timestamp,
        /// The new key (same owner).
        key: crate::model::ApiKey,
        /// The hash of the new key's text.
        hash: [u8; 32],
        /// How many keys the owner may hold.
        quota: crate::limits::Quota,
    },
    /// Removal: the key stops working at once.
    Delete {
        /// The owner.
        owner: UserId,
        /// The key.
        id: crate::ids::ApiKeyId,
    },
}

/// API keys, stored as hashes only, scoped to their owner.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when missing or another owner's.
    async fn get(
        &self,
        owner: UserId,
        id: crate::ids::ApiKeyId,
    ) -> Result<crate::model::ApiKey, StoreError>;

    /// The owner's keys in id order.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn list(&self, owner: UserId) -> Result<Vec<crate::model::ApiKey>, StoreError>;

    /// The key with `prefix` (any owner: authentication) and its hash.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn find(
        &self,
        prefix: &str,
    ) -> Result<Option<(crate::model::ApiKey, [u8; 32])>, StoreError>;

    /// # Errors
    /// MUST return [`StoreError::OverQuota`] (from [`crate::limits::Quota::admit`],
    /// under a lock on the owner) when a create is over its quota;
    /// [`StoreError::Conflict`] for an existing id or prefix;
    /// [`StoreError::NotFound`] when a rotated or deleted key is missing or
    /// another owner's. Nothing is stored on error.
    async fn commit(&self, change: ChangeSet<ApiKeyOp>) -> Result<(), StoreError>;

    /// Records a use at `at` unless the last recorded one is at or after
    /// `unless_since` (the service's once-a-minute rule).
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn touch(
        &self,
        id: crate::ids::ApiKeyId,
        at: jiff::Timestamp,
        unless_since: jiff::Timestamp,
    ) -> Result<(), StoreError>;

    /// Deletes every key that stopped working before `before`
    /// ([`crate::model::ApiKey::ends_at`]: its expiry or the end of a
    /// rotation's overlap), whoever owns it; returns how many. Keys that
    /// never end stay.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn purge_ended(&self, before: jiff::Timestamp) -> Result<u64, StoreError>;
}

/// Refresh tokens, stored as hashes only.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait RefreshTokenStore: Send + Sync {
    /// Starts a family whose current token has `token_hash`.
    ///
    /// # Errors
    /// MUST return [`StoreError::Conflict`] when the family id or hash exists.
    async fn create(&self, family: RefreshFamily, token_hash: [u8; 32]) -> Result<(), StoreError>;

    /// Spends the current token `old_hash` and makes `new_hash` current
    /// ([`Rotation::Rotated`]). A spent token presented again revokes the
    /// whole family ([`Rotation::Reused`]: it leaked); a revoked or expired
    /// family is [`Rotation::Refused`] and nothing changes.
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] for an unknown hash and
    /// [`StoreError::Conflict`] when `new_hash` exists already.
    async fn rotate(
        &self,
        old_hash: [u8; 32],
        new_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<Rotation, StoreError>;

    /// Revokes every family of `user` except `keep` (logout everywhere;
    /// a password change keeps the session that made it), returning how
    /// many were live before.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn revoke_user(&self, user: UserId, keep: Option<uuid::Uuid>) -> Result<u64, StoreError>;

    /// Revokes the family of `token_hash` (logout).
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] for an unknown hash.
    async fn revoke(&self, token_hash: [u8; 32]) -> Result<(), StoreError>;

    /// The family `id` as stored (the API checks it on every request, so an
    /// access token dies with its session at logout or on reuse).
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] for an unknown family.
    async fn family(&self, id: uuid::Uuid) -> Result<RefreshFamily, StoreError>;

    /// Revokes the family `id` (logout with only an access token).
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] for an unknown family.
    async fn revoke_family(&self, id: uuid::Uuid) -> Result<(), StoreError>;
}
