//! Account shapes: registration, login and refresh input, issued tokens and the user view, none of which shows a credential in `Debug`.

use alarm_domain::model::User;
use poem_openapi::Object;
use poem_openapi::types::MaybeUndefined;
use serde::Deserialize;

/// Registration.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    /// Login email.
    pub email: String,
    /// 12..=256 characters.
    pub password: String,
    /// 1..=100 characters.
    pub display_name: String,
    /// IANA zone for new alarms (default `UTC`).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// ISO 3166-1 alpha-2 country, for holidays.
    #[serde(default)]
    pub country: Option<String>,
    /// State or province code (needs `country`).
    #[serde(default)]
    pub state: Option<String>,
}

/// Changes to the caller's profile: a member left out stays as it is.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    /// 1..=100 characters.
    #[serde(default)]
    pub display_name: MaybeUndefined<String>,
    /// IANA zone for the caller's new alarms (existing alarms keep theirs).
    #[serde(default)]
    pub time_zone: MaybeUndefined<String>,
    /// ISO 3166-1 alpha-2 country, for holidays; `null` for none (and no state).
    #[serde(default)]
    pub country: MaybeUndefined<String>,
    /// State or province code within the country; `null` for none.
    #[serde(default)]
    pub state: MaybeUndefined<String>,
}

/// Login.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    /// Login email (at most 254 characters).
    pub email: String,
    /// Password (at most 1,024 bytes).
    pub password: String,
}

/// A password change: the current password, and the new one (12 to 256
/// characters, like at registration).
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeInput {
    /// The password in use now.
    pub current_password: String,
    /// The new password.
    pub new_password: String,
}

/// Account deletion: the account's password, so that a stolen access
/// token alone cannot erase it; `{}` (no password) only from a session
/// whose password login was in the last 5 minutes.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountDeletionInput {
    /// The password in use now; may be left out within 5 minutes of the
    /// session's login.
    pub password: Option<String>,
}

/// An address verification: the token from the e-mailed link.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyInput {
    /// The token the e-mail carried.
    pub token: String,
}

/// A password-reset request: the account's e-mail address.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequestInput {
    /// The address the account was registered with.
    pub email: String,
}

/// A password reset: the token from the e-mail and the new password (12 to
/// 256 characters, like at registration).
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirmInput {
    /// The token the e-mail carried.
    pub token: String,
    /// The new password.
    pub new_password: String,
}

/// Refresh.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshInput {
    /// The current refresh token.
    pub refresh_token: String,
}

/// Issued tokens.
#[derive(Clone, Object)]
pub struct TokenView {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Single-use token for `POST /auth/refresh`.
    pub refresh_token: String,
}

/// An account.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UserView {
    /// Id.
    pub id: String,
    /// Email as registered.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// `user` or `admin`.
    pub role: String,
    /// Default zone.
    pub time_zone: String,
    /// Country, if set.
    pub country: Option<String>,
    /// State, if set.
    pub state: Option<String>,
    /// Whether the address is verified (only a verified address receives
    /// alarm e-mail, and an `ADMIN_EMAILS` address is admin only then).
    pub email_verified: bool,
}

impl UserView {
    pub(crate) fn new(u: &User) -> Self {
        Self {
            id: u.id().to_string(),
            email: u.email().as_str().to_owned(),
            display_name: u.display_name().as_str().to_owned(),
            role: u.role().as_str().to_owned(),
            time_zone: u.time_zone().as_str().to_owned(),
            country: u.locale().map(|l| l.country().as_str().to_owned()),
            state: u
                .locale()
                .and_then(|l| l.state().map(|s| s.as_str().to_owned())),
            email_verified: u.verified_at().is_some(),
        }
    }
}

// Credentials pass through these shapes as plain strings (poem-openapi needs
// them for the schema); their `Debug` never shows them, so a stray `{:?}`
// in a log line cannot leak a password or a token.
impl std::fmt::Debug for RegisterInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterInput")
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .field("display_name", &self.display_name)
            .field("time_zone", &self.time_zone)
            .field("country", &self.country)
            .field("state", &self.state)
            .finish()
    }
}

impl std::fmt::Debug for LoginInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginInput")
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .finish()
    }
}

impl std::fmt::Debug for PasswordChangeInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordChangeInput")
            .field("current_password", &"[redacted]")
            .field("new_password", &"[redacted]")
            .finish()
    }
}

impl std::fmt::Debug for RefreshInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshInput")
            .field("refresh_token", &"[redacted]")
            .finish()
    }
}

impl std::fmt::Debug for TokenView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenView")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show_in_debug() {
        let login = LoginInput {
            email: "a@example.com".to_owned(),
            password: "hunter2-hunter2".to_owned(),
        };
        let tokens = TokenView {
            access_token: "eyJ-secret".to_owned(),
            token_type: "Bearer".to_owned(),
            expires_in: 900,
            refresh_token: "rt_secret".to_owned(),
        };
        let shown = format!(
            "{login:?} {tokens:?} {:?}",
            RefreshInput {
                refresh_token: "rt_secret".to_owned()
            }
        );
        assert!(
            !shown.contains("hunter2") && !shown.contains("secret"),
            "{shown}"
        );
        assert!(shown.contains("a@example.com"));
    }
}
