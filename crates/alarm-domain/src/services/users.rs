//! Account use cases: registration (with the admin bootstrap list), profile changes (re-planning the user's alarms when their holidays change) and look-ups.

use secrecy::SecretString;

use super::{Actor, Basics, CalendarService, Ports, ServiceError};
use crate::ids::UserId;
use crate::model::{Country, DisplayName, Email, Locale, Role, User};
use crate::ports::{ChangeSet, UserOp};
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
    /// A service; accounts registered with one of `admin_emails` become
    /// administrators (how the first admin comes to exist).
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
        let role = if self.admin_emails.contains(&new.email) {
            Role::Admin
        } else {
            Role::User
        };
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
        );
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
