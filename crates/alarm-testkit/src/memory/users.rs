//! [`UserStore`] over the in-memory state: accounts, their password hashes and the unique e-mail rule.

use alarm_domain::ids::UserId;
use alarm_domain::model::{Email, User};
use alarm_domain::ports::{ChangeSet, StoreError, UserOp, UserStore};
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
            UserOp::SetPassword { user, .. } => {
                if !s.users.contains_key(user) {
                    return Err(StoreError::NotFound);
                }
            }
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
                    entry.0 = user;
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
        }
        s.apply_common(change);
        Ok(())
    }
}
