//! [`UserStore`] over the in-memory state: accounts, their password hashes and the unique e-mail rule.

use alarm_domain::ids::UserId;
use alarm_domain::model::{Email, Owned, User};
use alarm_domain::ports::{ChangeSet, StoreError, TokenPurpose, UserOp, UserStore};
use async_trait::async_trait;
use secrecy::SecretString;

use super::InMemory;

#[async_trait]
impl UserStore for InMemory {
    async fn get(&self, id: UserId) -> Result<User, StoreError> {
        self.lock()
            .users
            .get(&id)
            .map(|(u, _)| u.clone())
            .ok_or(StoreError::NotFound)
    }

    async fn get_many(&self, ids: Vec<UserId>) -> Result<Vec<User>, StoreError> {
        let s = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| s.users.get(id).map(|(u, _)| u.clone()))
            .collect())
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        Ok(self
            .lock()
            .users
            .values()
            .find(|(u, _)| u.email() == email)
            .map(|(u, _)| u.clone()))
    }

    async fn credentials(&self, email: &Email) -> Result<Option<(User, SecretString)>, StoreError> {
        Ok(self
            .lock()
            .users
            .values()
            .find(|(u, _)| u.email() == email)
            .cloned())
    }

    async fn token_owner(
        &self,
        purpose: TokenPurpose,
        token_hash: [u8; 32],
    ) -> Result<Option<UserId>, StoreError> {
        Ok(self
            .lock()
            .account_tokens
            .iter()
            .find(|((_, p), (hash, _))| *p == purpose && *hash == token_hash)
            .map(|((user, _), _)| *user))
    }

    async fn commit(&self, change: ChangeSet<UserOp>) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.check_common(&change)?;
        match &change.op {
            UserOp::Register { user, .. } => {
                if s.users.contains_key(&user.id()) {
                    return Err(StoreError::Conflict(format!("user {} exists", user.id())));
                }
                if s.users.values().any(|(u, _)| u.email() == user.email()) {
                    return Err(StoreError::Conflict("email already registered".to_owned()));
                }
            }
            UserOp::Update(user) => {
                if !s.users.contains_key(&user.id()) {
                    return Err(StoreError::NotFound);
                }
                if s.users
                    .values()
                    .any(|(u, _)| u.email() == user.email() && u.id() != user.id())
                {
                    return Err(StoreError::Conflict("email already registered".to_owned()));
                }
            }
            UserOp::SetPassword { user, .. }
            | UserOp::SetRole { user, .. }
            | UserOp::Erase { user, .. }
            | UserOp::IssueToken { user, .. }
            | UserOp::Verify {
                user,
                token_hash: None,
                ..
            } => {
                if !s.users.contains_key(user) {
                    return Err(StoreError::NotFound);
                }
            }
            UserOp::ResetPassword {
                user,
                token_hash,
                now,
                ..
            } => s.check_token(*user, TokenPurpose::PasswordReset, token_hash, *now)?,
            UserOp::Verify {
                user,
                token_hash: Some(token_hash),
                now,
                ..
            } => s.check_token(*user, TokenPurpose::EmailVerification, token_hash, *now)?,
        }
        match change.op.clone() {
            UserOp::Register {
                user,
                password_hash,
            } => {
                s.users.insert(user.id(), (user, password_hash));
            }
            UserOp::Update(user) => {
                if let Some(entry) = s.users.get_mut(&user.id()) {
                    // The role and the verification are not profile
                    // fields: the stored ones stay.
                    let (role, verified) = (entry.0.role(), entry.0.verified_at());
                    entry.0 = user.with_role(role).with_verified(verified);
                }
            }
            UserOp::SetRole { user, role } => {
                if let Some(entry) = s.users.get_mut(&user) {
                    entry.0 = entry.0.clone().with_role(role);
                }
            }
            UserOp::SetPassword {
                user,
                password_hash,
            } => {
                if let Some(entry) = s.users.get_mut(&user) {
                    entry.1 = password_hash;
                }
            }
            UserOp::Erase { user, pseudonym } => {
                for kind in Owned::ALL {
                    s.erase(kind, user, pseudonym);
                }
            }
            UserOp::IssueToken {
                user,
                purpose,
                token_hash,
                expires_at,
            } => {
                s.account_tokens
                    .insert((user, purpose), (token_hash, expires_at));
            }
            UserOp::Verify {
                user,
                now,
                grant_admin,
                ..
            } => {
                s.account_tokens
                    .remove(&(user, TokenPurpose::EmailVerification));
                if let Some(entry) = s.users.get_mut(&user)
                    && entry.0.verified_at().is_none()
                {
                    let mut verified = entry.0.clone().with_verified(Some(now));
                    if grant_admin {
                        verified = verified.with_role(alarm_domain::model::Role::Admin);
                    }
                    entry.0 = verified;
                }
            }
            UserOp::ResetPassword {
                user,
                password_hash,
                ..
            } => {
                s.account_tokens
                    .remove(&(user, TokenPurpose::PasswordReset));
                if let Some(entry) = s.users.get_mut(&user) {
                    entry.1 = password_hash;
                }
                for family in s.families.values_mut().filter(|f| f.user == user) {
                    family.revoked = true;
                }
            }
        }
        s.apply_common(change);
        Ok(())
    }
}

impl super::State {
    /// Whether `token_hash` is `user`'s newest `purpose` token and works at
    /// `now` (and the account exists): [`StoreError::NotFound`] if not.
    fn check_token(
        &self,
        user: UserId,
        purpose: TokenPurpose,
        token_hash: &[u8; 32],
        now: alarm_domain::jiff::Timestamp,
    ) -> Result<(), StoreError> {
        let usable = self
            .account_tokens
            .get(&(user, purpose))
            .is_some_and(|(hash, expires)| hash == token_hash && *expires > now);
        if usable && self.users.contains_key(&user) {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// Erases what `user` owns of `kind`: the fake's side of the one
    /// registry, matched without a catch-all so a new kind must be handled
    /// here before the crate compiles.
    fn erase(&mut self, kind: Owned, user: UserId, pseudonym: uuid::Uuid) {
        match kind {
            Owned::Sessions => {
                let families: Vec<uuid::Uuid> = self
                    .families
                    .values()
                    .filter(|f| f.user == user)
                    .map(|f| f.id)
                    .collect();
                self.families.retain(|_, f| f.user != user);
                self.tokens
                    .retain(|_, (family, _)| !families.contains(family));
            }
            Owned::Alarms => {
                let gone: Vec<_> = self
                    .alarms
                    .values()
                    .filter(|a| a.owner() == user)
                    .map(|a| a.id())
                    .collect();
                self.alarms.retain(|_, a| a.owner() != user);
                self.routine_links.retain(|alarm, _| !gone.contains(alarm));
            }
            Owned::Triggers => self.triggers.retain(|_, t| t.trigger.owner != user),
            Owned::Ringing => self.ringing.retain(|_, r| r.owner != user),
            Owned::Events => self.events.retain(|_, e| e.owner != user),
            Owned::Deliveries => self.deliveries.retain(|d| d.owner != user),
            Owned::Outbox => self.outbox.retain(|_, (item, _)| item.owner != user),
            Owned::Webhooks => self.webhooks.retain(|_, w| w.owner() != user),
            Owned::ApiKeys => self.api_keys.retain(|_, (k, _)| k.owner != user),
            Owned::Uploads => self.uploads.retain(|_, u| u.owner != user),
            Owned::Sounds => {
                self.sounds.retain(|_, x| x.owner != user);
                self.deleted_sounds.retain(|_, x| x.owner != user);
            }
            Owned::ExceptionPeriods => self.exceptions.retain(|_, e| e.owner() != user),
            Owned::HolidayPreferences => {
                self.preferences.remove(&user);
            }
            Owned::Routines => self.routines.retain(|_, r| r.owner() != user),
            Owned::IdempotencyRecords => self.idempotency.retain(|(owner, _, _), _| *owner != user),
            Owned::AccountTokens => self.account_tokens.retain(|(owner, _), _| *owner != user),
            Owned::AuditTrail => {
                let alias = UserId::from_uuid(pseudonym).ok();
                for record in self.audit.values_mut() {
                    let by = record.actor == Some(user);
                    let about = record.entity_id == user.as_uuid();
                    if by {
                        record.actor = alias;
                    }
                    if about {
                        record.entity_id = pseudonym;
                    }
                    if by || about {
                        record.before = None;
                        record.after = None;
                    }
                }
            }
            Owned::Account => {
                self.users.remove(&user);
            }
        }
    }
}
