//! Account use cases: registration (with the admin bootstrap list) and look-ups.

use secrecy::SecretString;

use super::{Actor, Basics, Ports, ServiceError};
use crate::ids::UserId;
use crate::model::{DisplayName, Email, Locale, Role, User};
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
    }
}

use crate::ports::{Clock, IdSource, UserStore};

/// Account use cases.
#[derive(Clone)]
pub struct UserService {
    ports: UserPorts,
    admin_emails: Vec<Email>,
}

impl UserService {
    /// A service; accounts registered with one of `admin_emails` become
    /// administrators (how the first admin comes to exist).
    pub fn new(ports: Ports, admin_emails: Vec<Email>) -> Self {
        Self {
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
            .commit(ChangeSet {
                op,
                audit,
                events: Vec::new(),
                triggers: Vec::new(),
            })
            .await?;
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
