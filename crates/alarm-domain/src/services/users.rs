//! Account use cases: registration, address verification (which grants the admin bootstrap list its role), the operator's verification and role changes, profile changes (re-planning the user's alarms when their holidays change) and look-ups.

use secrecy::SecretString;

use super::{Actor, Basics, CalendarService, MailedToken, Ports, ServiceError};
use crate::error::{ValidationError, codes};
use crate::ids::UserId;
use crate::model::{Country, DisplayName, Email, Locale, Role, User};
use crate::ports::{ChangeSet, StoreError, TokenPurpose, UserOp};
use crate::tz::TimeZoneName;

/// A registration request; the password is already hashed by the caller
/// (the API owns the hashing parameters).
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The login email.
    pub email: Email,
    /// The display name.
    pub display_name: DisplayName,
    /// The password hash (PHC string).
    pub password_hash: SecretString,
    /// The default zone for the user's alarms.
    pub time_zone: TimeZoneName,
    /// Country and state, for holidays.
    pub locale: Option<Locale>,
}

super::service_ports! {
    /// The ports [`UserService`] takes.
    UserPorts {
        /// Accounts.
        users: dyn UserStore = users,
        /// The clock.
        clock: dyn Clock = clock,
        /// Ids.
        ids: dyn IdSource = ids,
        /// Told about moved triggers.
        wake: dyn TriggerWake = wake,
    }
}

use crate::ports::{Clock, IdSource, TriggerWake, UserStore};

/// How long an e-mailed verification link works.
pub const VERIFY_TOKEN_TTL: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// What a user changes of their profile; `None` leaves a part as it is.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    /// A new display name.
    pub display_name: Option<DisplayName>,
    /// A new default zone for the user's new alarms (existing alarms keep theirs).
    pub time_zone: Option<TimeZoneName>,
    /// A new country and state (`Some(None)`: none, so no holidays).
    pub locale: Option<Option<Locale>>,
}

/// Account use cases.
#[derive(Clone)]
pub struct UserService {
    ports: UserPorts,
    calendar: CalendarService,
    admin_emails: Vec<Email>,
}

impl UserService {
    /// A service; accounts with one of `admin_emails` become administrators
    /// once their address is verified (how the first admin comes to exist).
    pub fn new(ports: Ports, admin_emails: Vec<Email>) -> Self {
        Self {
            calendar: CalendarService::new(ports.clone()),
            ports: ports.into(),
            admin_emails,
        }
    }

    /// Registers an account.
    ///
    /// # Errors
    /// [`ServiceError::Conflict`] when the email is taken (in any case).
    pub async fn register(&self, new: NewUser, correlation_id: &str) -> Result<User, ServiceError> {
        let now = self.ports.clock.now();
        if self.ports.users.find_by_email(&new.email).await?.is_some() {
            return Err(ServiceError::Conflict(
                "email already registered".to_owned(),
            ));
        }
        let id = self.ports.new_id(UserId::from_uuid, UserId::generate);
        // Even an `ADMIN_EMAILS` address starts as a user: whoever registers
        // it first must still prove they receive its mail
        // ([`UserService::verify_email`]).
        let role = Role::User;
        let user = User::new(
            id,
            new.email,
            new.display_name,
            role,
            new.time_zone,
            new.locale,
        );
        let actor = Actor {
            user: id,
            role,
            correlation_id: correlation_id.to_owned(),
        };
        let audit = self.ports.audit(
            &actor,
            "user.register",
            id.as_uuid(),
            None,
            Some(format!("role={}", role.as_str())),
            now,
        );
        let op = UserOp::Register {
            user: user.clone(),
            password_hash: new.password_hash,
        };
        self.ports
            .users
            .commit(ChangeSet::audited(op, audit))
            .await?;
        Ok(user)
    }

    /// Changes the acting user's display name, default zone or locale. A
    /// new locale brings other holidays, so the user's alarms are re-planned
    /// in the same commit and their next fires move at once.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] for a deleted account.
    pub async fn update_profile(
        &self,
        actor: &Actor,
        change: ProfileChange,
    ) -> Result<User, ServiceError> {
        let now = self.ports.clock.now();
        let current = self.ports.users.get(actor.user).await?;
        let locale = match change.locale {
            Some(locale) => locale,
            None => current.locale().cloned(),
        };
        let user = User::new(
            current.id(),
            current.email().clone(),
            change
                .display_name
                .unwrap_or_else(|| current.display_name().clone()),
            current.role(),
            change
                .time_zone
                .unwrap_or_else(|| current.time_zone().clone()),
            locale,
        )
        .with_verified(current.verified_at());
        let triggers = if user.locale() == current.locale() {
            Vec::new()
        } else {
            self.calendar.plans_for_user(&user, now).await?
        };
        let audit = self.ports.audit(
            actor,
            "user.update_profile",
            user.id().as_uuid(),
            Some(profile_summary(&current)),
            Some(profile_summary(&user)),
            now,
        );
        self.ports
            .users
            .commit(ChangeSet {
                op: UserOp::Update(user.clone()),
                audit,
                events: Vec::new(),
                triggers: triggers.clone(),
            })
            .await?;
        super::woke(self.ports.wake.as_ref(), &triggers);
        Ok(user)
    }

    /// Issues a verification link for the acting account's address (at
    /// registration and when the user asks again); it replaces the earlier
    /// link. Returned for the caller to e-mail.
    ///
    /// # Errors
    /// [`ServiceError::Conflict`] when the address is verified already;
    /// [`ServiceError::NotFound`] for a deleted account.
    pub async fn request_verification(&self, actor: &Actor) -> Result<MailedToken, ServiceError> {
        let user = self.ports.users.get(actor.user).await?;
        if user.verified_at().is_some() {
            return Err(ServiceError::Conflict(
                "the address is verified already".to_owned(),
            ));
        }
        let now = self.ports.clock.now();
        let (mailed, token_hash) = self.ports.mint_token(user, VERIFY_TOKEN_TTL, now)?;
        let audit = self.ports.audit(
            actor,
            "user.verification_requested",
            actor.user.as_uuid(),
            None,
            None,
            now,
        );
        self.ports
            .users
            .commit(ChangeSet::audited(
                UserOp::IssueToken {
                    user: actor.user,
                    purpose: TokenPurpose::EmailVerification,
                    token_hash,
                    expires_at: mailed.expires_at,
                },
                audit,
            ))
            .await?;
        Ok(mailed)
    }

    /// Verifies an address with the token from its e-mailed link, which is
    /// spent. An address on the `ADMIN_EMAILS` list gets its role now.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] on `token` for a token that is unknown,
    /// spent, replaced or expired (nothing changes).
    pub async fn verify_email(
        &self,
        token: &SecretString,
        correlation_id: &str,
    ) -> Result<User, ServiceError> {
        let hash = super::token_hash(token);
        let owner = self
            .ports
            .users
            .token_owner(TokenPurpose::EmailVerification, hash)
            .await?;
        let user = match owner {
            Some(id) => match self.ports.users.get(id).await {
                Ok(user) => user,
                Err(StoreError::NotFound) => return Err(bad_token()),
                Err(e) => return Err(e.into()),
            },
            None => return Err(bad_token()),
        };
        let actor = Some(user.id());
        match self.verify(user, Some(hash), actor, correlation_id).await {
            Err(ServiceError::NotFound) => Err(bad_token()),
            other => other,
        }
    }

    /// The operator's verification of `email`'s address, without a link
    /// (`alarm-admin verify`): for a deployment without e-mail, or a user
    /// who cannot receive it. Audited with no actor.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] when no account has the address.
    pub async fn verify_by_operator(
        &self,
        email: &Email,
        correlation_id: &str,
    ) -> Result<User, ServiceError> {
        let user = self.find_by_email(email).await?;
        self.verify(user, None, None, correlation_id).await
    }

    /// The operator gives `email`'s account `role` (`alarm-admin grant` /
    /// `revoke`), whether or not the address is on `ADMIN_EMAILS` (the list
    /// acts only at an address's first verification, so a revoke lasts).
    /// Audited with no actor.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] when no account has the address.
    pub async fn set_role_by_operator(
        &self,
        email: &Email,
        role: Role,
        correlation_id: &str,
    ) -> Result<User, ServiceError> {
        let current = self.find_by_email(email).await?;
        let audit = self.ports.account_audit(
            &current,
            None,
            "user.set_role",
            Some(format!("role={}", current.role().as_str())),
            Some(format!("role={}", role.as_str())),
            self.ports.clock.now(),
            correlation_id,
        );
        self.ports
            .users
            .commit(ChangeSet::audited(
                UserOp::SetRole {
                    user: current.id(),
                    role,
                },
                audit,
            ))
            .await?;
        Ok(self.ports.users.get(current.id()).await?)
    }

    /// Commits `user`'s verification (spending `token_hash` when given),
    /// audited as `actor`; the store grants the bootstrap role if the
    /// address is on the list and this is the first verification. Answers
    /// the account as stored afterwards.
    async fn verify(
        &self,
        user: User,
        token_hash: Option<[u8; 32]>,
        actor: Option<UserId>,
        correlation_id: &str,
    ) -> Result<User, ServiceError> {
        let now = self.ports.clock.now();
        let grant_admin = self.admin_emails.contains(user.email());
        let audit = self.ports.account_audit(
            &user,
            actor,
            "user.verify_email",
            None,
            Some(format!("admin_list={grant_admin}")),
            now,
            correlation_id,
        );
        self.ports
            .users
            .commit(ChangeSet::audited(
                UserOp::Verify {
                    user: user.id(),
                    token_hash,
                    now,
                    grant_admin,
                },
                audit,
            ))
            .await?;
        Ok(self.ports.users.get(user.id()).await?)
    }

    /// The acting user's account.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`].
    pub async fn me(&self, actor: &Actor) -> Result<User, ServiceError> {
        Ok(self.ports.users.get(actor.user).await?)
    }

    /// Looks an account up by email (case-insensitively).
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] when no account has it.
    pub async fn find_by_email(&self, email: &Email) -> Result<User, ServiceError> {
        self.ports
            .users
            .find_by_email(email)
            .await?
            .ok_or(ServiceError::NotFound)
    }
}

/// What the audit log keeps of a profile (no e-mail: it does not change here).
fn profile_summary(u: &User) -> String {
    let country = u.locale().map(Locale::country);
    format!(
        "display_name={:?} zone={} country={} state={}",
        u.display_name().as_str(),
        u.time_zone(),
        country.as_ref().map_or("-", Country::as_str),
        u.locale()
            .and_then(Locale::state)
            .map_or("-", |s| s.as_str()),
    )
}

/// The refusal of a verification token that does not work.
fn bad_token() -> ServiceError {
    ServiceError::Invalid(ValidationError::new(
        "token",
        codes::UNKNOWN_VALUE,
        "is unknown, already used, replaced by a newer link or expired; ask for a new link",
    ))
}
