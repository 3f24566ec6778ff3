//! The user store on SQL: accounts, the e-mail look-up and the password hash kept beside each user.

use alarm_domain::ids::UserId;
use alarm_domain::model::{Country, DisplayName, Email, Locale, Owned, Role, StateCode, User};
use alarm_domain::ports::{ChangeSet, StoreError, TokenPurpose, UserOp, UserStore};
use async_trait::async_trait;
use sea_orm::QueryResult;
use secrecy::{ExposeSecret, SecretString};

use super::{SqlStores, apply_common, id_of, v};
use crate::db::{Tx, col, corrupt, ts, us};
use crate::row::Row;

const USER_COLUMNS: &str =
    "id, email, display_name, role, time_zone, country, state, password_hash, verified_us";

impl SqlStores {
    fn user_from(&self, row: &QueryResult) -> Result<(User, SecretString), StoreError> {
        let country: Option<String> = col(row, "country")?;
        let state: Option<String> = col(row, "state")?;
        let locale = match country {
            Some(c) => Some(Locale::new(
                Country::parse(&c).map_err(|e| corrupt("country", e))?,
                state
                    .map(|s| StateCode::parse(&s))
                    .transpose()
                    .map_err(|e| corrupt("state", e))?,
            )),
            None => None,
        };
        let user = User::new(
            id_of(row, "id", UserId::from_uuid)?,
            Email::parse(&col::<String>(row, "email")?).map_err(|e| corrupt("email", e))?,
            DisplayName::parse(&alarm_domain::error::without_bidi(&col::<String>(
                row,
                "display_name",
            )?))
            .map_err(|e| corrupt("display name", e))?,
            Role::parse(&col::<String>(row, "role")?).map_err(|e| corrupt("role", e))?,
            self.zone(&col::<String>(row, "time_zone")?)?,
            locale,
        )
        .with_verified(
            col::<Option<i64>>(row, "verified_us")?
                .map(ts)
                .transpose()?,
        );
        Ok((
            user,
            SecretString::from(col::<String>(row, "password_hash")?),
        ))
    }
}

/// What a user may change of their account (all but the id, the role, the
/// password, the verification and the creation instant).
fn profile(user: &User) -> Row {
    let locale = user.locale();
    Row::new()
        .set("email", user.email().as_str())
        .set("email_key", user.email().key())
        .set("display_name", user.display_name().as_str())
        .set("time_zone", user.time_zone().as_str())
        .set("country", locale.map(|l| l.country().as_str().to_owned()))
        .set(
            "state",
            locale
                .and_then(|l| l.state())
                .map(|s| s.as_str().to_owned()),
        )
}

#[async_trait]
impl UserStore for SqlStores {
    async fn get(&self, id: UserId) -> Result<User, StoreError> {
        let row = self
            .db
            .query_one(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"),
                vec![v(id.as_uuid())],
            )
            .await?;
        Ok(self.user_from(&row.ok_or(StoreError::NotFound)?)?.0)
    }

    async fn get_many(&self, ids: Vec<UserId>) -> Result<Vec<User>, StoreError> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id IN ({{ids}})");
        self.db
            .query_in(&sql, &ids)
            .await?
            .iter()
            .map(|row| Ok(self.user_from(row)?.0))
            .collect()
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        Ok(self.credentials(email).await?.map(|(u, _)| u))
    }

    async fn credentials(&self, email: &Email) -> Result<Option<(User, SecretString)>, StoreError> {
        let row = self
            .db
            .query_one(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE email_key = ?"),
                vec![v(email.key())],
            )
            .await?;
        row.map(|r| self.user_from(&r)).transpose()
    }

    async fn token_owner(
        &self,
        purpose: TokenPurpose,
        token_hash: [u8; 32],
    ) -> Result<Option<UserId>, StoreError> {
        self.db
            .query_one(
                "SELECT user_id FROM account_tokens WHERE hash = ? AND purpose = ?",
                vec![v(token_hash.to_vec()), v(purpose.as_str())],
            )
            .await?
            .map(|row| id_of(&row, "user_id", UserId::from_uuid))
            .transpose()
    }

    async fn commit(&self, change: ChangeSet<UserOp>) -> Result<(), StoreError> {
        self.db.write(async |tx| {
        match &change.op {
            UserOp::Register {
                user,
                password_hash,
            } => {
                let row = Row::new()
                    .set("id", user.id().as_uuid())
                    .extend(profile(user))
                    .set("role", user.role().as_str())
                    .set("password_hash", password_hash.expose_secret())
                    .set("verified_us", user.verified_at().map(us))
                    .set("created_us", us(change.audit.at));
                tx.insert("users", vec![row], "").await?;
            }
            UserOp::Update(user) => {
                let n = tx
                    .update(
                        "users",
                        profile(user),
                        "id = ?",
                        vec![v(user.id().as_uuid())],
                    )
                    .await?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
            }
            UserOp::SetRole { user, role } => {
                let n = tx
                    .exec(
                        "UPDATE users SET role = ? WHERE id = ?",
                        vec![v(role.as_str()), v(user.as_uuid())],
                    )
                    .await?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
            }
            UserOp::SetPassword {
                user,
                password_hash,
            } => {
                let n = tx
                    .exec(
                        "UPDATE users SET password_hash = ? WHERE id = ?",
                        vec![v(password_hash.expose_secret()), v(user.as_uuid())],
                    )
                    .await?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
            }
            UserOp::Erase { user, pseudonym } => {
                erase_account(tx, *user, *pseudonym).await?;
            }
            UserOp::IssueToken {
                user,
                purpose,
                token_hash,
                expires_at,
            } => {
                // The account's earlier token of the purpose is replaced in
                // place (one statement, so two concurrent requests cannot
                // collide on the key): only the newest link works.
                let row = Row::new()
                    .set("user_id", user.as_uuid())
                    .set("purpose", purpose.as_str())
                    .set("hash", token_hash.to_vec())
                    .set("expires_us", us(*expires_at))
                    .set("created_us", us(change.audit.at));
                tx.insert(
                    "account_tokens",
                    vec![row],
                    "ON CONFLICT (user_id, purpose) DO UPDATE SET hash = excluded.hash, \
                     expires_us = excluded.expires_us, created_us = excluded.created_us",
                )
                .await?;
            }
            UserOp::Verify {
                user,
                token_hash,
                now,
                grant_admin,
            } => {
                lock_account(tx, *user).await?;
                let purpose = TokenPurpose::EmailVerification;
                match token_hash {
                    Some(hash) => spend_token(tx, *user, purpose, hash, *now).await?,
                    None => {
                        tx.exec(
                            "DELETE FROM account_tokens WHERE user_id = ? AND purpose = ?",
                            vec![v(user.as_uuid()), v(purpose.as_str())],
                        )
                        .await?;
                    }
                }
                // Only the first verification sets the instant and grants
                // the bootstrap role: a later one changes nothing.
                let grant = if *grant_admin {
                    format!(", role = '{}'", Role::Admin.as_str())
                } else {
                    String::new()
                };
                tx.exec(
                    &format!(
                        "UPDATE users SET verified_us = ?{grant} WHERE id = ? AND verified_us IS NULL"
                    ),
                    vec![v(us(*now)), v(user.as_uuid())],
                )
                .await?;
            }
            UserOp::ResetPassword {
                user,
                token_hash,
                now,
                password_hash,
            } => {
                lock_account(tx, *user).await?;
                spend_token(tx, *user, TokenPurpose::PasswordReset, token_hash, *now).await?;
                tx.exec(
                    "UPDATE users SET password_hash = ? WHERE id = ?",
                    vec![v(password_hash.expose_secret()), v(user.as_uuid())],
                )
                .await?;
                // Every session ends in the same commit: a reset that
                // landed cannot leave an intruder's session alive.
                tx.exec(
                    "UPDATE refresh_families SET revoked = ? WHERE user_id = ?",
                    vec![v(true), v(user.as_uuid())],
                )
                .await?;
            }
        }
        apply_common(tx, &change).await?;
        Ok(())
        }).await
    }
}

/// Locks `user`'s row inside `tx` (PostgreSQL; SQLite holds one write lock
/// anyway), or [`StoreError::NotFound`]. A change that touches the account
/// and its other rows takes it first, as an erasure does, so the two wait
/// for each other instead of deadlocking.
async fn lock_account(tx: &Tx, user: UserId) -> Result<(), StoreError> {
    let lock = if tx.backend == sea_orm::DbBackend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    tx.query_one(
        &format!("SELECT id FROM users WHERE id = ?{lock}"),
        vec![v(user.as_uuid())],
    )
    .await?
    .ok_or(StoreError::NotFound)?;
    Ok(())
}

/// Spends `user`'s `purpose` token `token_hash` inside `tx`, by deleting
/// it: of two concurrent uses of one token, one deletes the row and the
/// other finds none. [`StoreError::NotFound`] when it is not the account's
/// newest of its purpose or has expired at `now`.
async fn spend_token(
    tx: &Tx,
    user: UserId,
    purpose: TokenPurpose,
    token_hash: &[u8; 32],
    now: alarm_domain::jiff::Timestamp,
) -> Result<(), StoreError> {
    let spent = tx
        .exec(
            "DELETE FROM account_tokens \
             WHERE user_id = ? AND purpose = ? AND hash = ? AND expires_us > ?",
            vec![
                v(user.as_uuid()),
                v(purpose.as_str()),
                v(token_hash.to_vec()),
                v(us(now)),
            ],
        )
        .await?;
    if spent == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Erases `user` and everything it owns inside `tx`. The account row is
/// locked first and then its alarms, in id order: the engine locks alarms
/// before their triggers, so taking them in the same order cannot deadlock
/// with a worker judging one of them (which then finds its lease gone).
async fn erase_account(tx: &Tx, user: UserId, pseudonym: uuid::Uuid) -> Result<(), StoreError> {
    lock_account(tx, user).await?;
    if tx.backend == sea_orm::DbBackend::Postgres {
        tx.query_all(
            "SELECT id FROM alarms WHERE owner_id = ? ORDER BY id FOR UPDATE",
            vec![v(user.as_uuid())],
        )
        .await?;
    }
    for kind in Owned::ALL {
        for sql in erasure_sql(kind) {
            let values = if sql.starts_with("UPDATE audit_log") {
                vec![v(pseudonym), v(user.as_uuid())]
            } else {
                vec![v(user.as_uuid())]
            };
            tx.exec(sql, values).await?;
        }
    }
    Ok(())
}

/// The statements that erase one kind of owned row: the SQL side of the
/// registry in [`Owned`], matched without a catch-all. Each deletes by the
/// owner column explicitly, whether or not a foreign key would cascade, so
/// erasure does not depend on SQLite's `foreign_keys` pragma. The audit
/// statements bind the pseudonym first, then the account.
fn erasure_sql(kind: Owned) -> &'static [&'static str] {
    match kind {
        Owned::Sessions => &[
            "DELETE FROM refresh_tokens WHERE family_id IN \
             (SELECT id FROM refresh_families WHERE user_id = ?)",
            "DELETE FROM refresh_families WHERE user_id = ?",
        ],
        Owned::Triggers => &["DELETE FROM triggers WHERE owner_id = ?"],
        Owned::Ringing => &["DELETE FROM ringing WHERE owner_id = ?"],
        Owned::Events => &["DELETE FROM alarm_events WHERE owner_id = ?"],
        Owned::Deliveries => &["DELETE FROM deliveries WHERE owner_id = ?"],
        Owned::Outbox => &["DELETE FROM outbox WHERE owner_id = ?"],
        Owned::Alarms => &[
            "DELETE FROM alarm_routines WHERE alarm_id IN \
             (SELECT id FROM alarms WHERE owner_id = ?)",
            "DELETE FROM alarms WHERE owner_id = ?",
        ],
        Owned::Webhooks => &["DELETE FROM webhooks WHERE owner_id = ?"],
        Owned::ApiKeys => &["DELETE FROM api_keys WHERE owner_id = ?"],
        Owned::Uploads => &["DELETE FROM uploads WHERE owner_id = ?"],
        Owned::Sounds => &["DELETE FROM sounds WHERE owner_id = ?"],
        Owned::ExceptionPeriods => &["DELETE FROM exception_periods WHERE owner_id = ?"],
        Owned::HolidayPreferences => &[
            "DELETE FROM holiday_preference_overrides WHERE owner_id = ?",
            "DELETE FROM holiday_preferences WHERE owner_id = ?",
        ],
        Owned::Routines => &["DELETE FROM routines WHERE owner_id = ?"],
        Owned::IdempotencyRecords => &["DELETE FROM idempotency_keys WHERE owner_id = ?"],
        Owned::AccountTokens => &[
            "DELETE FROM account_tokens WHERE user_id = ?",
            // Retired by m0010 and kept for the previous release during a
            // deploy; a link it holds names the account too.
            "DELETE FROM password_resets WHERE user_id = ?",
        ],
        Owned::AuditTrail => &[
            "UPDATE audit_log SET actor_id = ?, before_summary = NULL, after_summary = NULL \
             WHERE actor_id = ?",
            "UPDATE audit_log SET entity_id = ?, before_summary = NULL, after_summary = NULL \
             WHERE entity_id = ?",
        ],
        Owned::Account => &["DELETE FROM users WHERE id = ?"],
    }
}
