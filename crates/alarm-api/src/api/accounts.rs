//! `/api/v1/auth/*`: registration, login, refresh-token rotation with reuse detection, logout and the caller's account.

use std::sync::Arc;

use alarm_domain::model::{Country, DisplayName, Email, Locale, StateCode};
use alarm_domain::ports::TokenPurpose;
use alarm_domain::services::{AuthError, MailedToken, NewUser, ProfileChange};
use alarm_domain::tz::TimeZoneName;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, OpenApi};
use secrecy::{ExposeSecret, SecretString};

use super::ApiTags;
use crate::auth::{self, BearerAuth};
use crate::body::{CREDENTIALS_BODY_BYTES, JsonBody};
use crate::dto::{
    AccountDeletionInput, LoginInput, PasswordChangeInput, ProfileInput, RefreshInput,
    RegisterInput, ResetConfirmInput, ResetRequestInput, TokenView, UserView, VerifyInput,
};
use crate::limiter;
use crate::middleware::ClientAddress;
use crate::problem::{ApiError, Problem, ProblemType};
use crate::state::{AccountMailer, AppState};

/// Registered.
#[derive(ApiResponse)]
pub(crate) enum Registered {
    /// The new account.
    #[oai(status = 201)]
    Created(Json<UserView>),
}

/// Tokens.
#[derive(ApiResponse)]
pub(crate) enum Issued {
    /// A new access token and refresh token.
    #[oai(status = 200)]
    Ok(Json<TokenView>),
}

/// Logged out.
#[derive(ApiResponse)]
pub(crate) enum LoggedOut {
    /// The session and its tokens are revoked.
    #[oai(status = 204)]
    Done,
}

/// A reset asked for.
#[derive(ApiResponse)]
pub(crate) enum ResetAccepted {
    /// Taken: if the address has an account, a reset link is on its way.
    /// The same answer when it has none: the look-up happens after it.
    #[oai(status = 202)]
    Accepted,
}

/// A verification link asked for again.
#[derive(ApiResponse)]
pub(crate) enum VerificationSent {
    /// A new link is on its way; the earlier one stopped working.
    #[oai(status = 202)]
    Accepted,
}

/// The longest token text accepted (ours are 43 characters); longer input
/// is refused before it is hashed.
const MAX_TOKEN_CHARS: usize = 128;

/// Refuses an e-mailed token's text that cannot be one of ours, before it
/// is hashed.
fn check_token_text(token: &str) -> Result<(), ApiError> {
    if token.is_empty() || token.chars().count() > MAX_TOKEN_CHARS {
        return Err(Problem::invalid(
            "token",
            format!("must be 1 to {MAX_TOKEN_CHARS} characters"),
        )
        .into());
    }
    Ok(())
}

/// E-mails `mailed`; a failure is logged (without the token), and the
/// user asks again.
async fn send_now(mail: &AccountMailer, purpose: TokenPurpose, mailed: MailedToken) {
    if let Err(e) = mail
        .0
        .send_token(&mailed.user, purpose, &mailed.token, mailed.expires_at)
        .await
    {
        tracing::warn!(error = %e, purpose = purpose.as_str(), "an account e-mail was not sent");
    }
}

/// E-mails `mailed` in a task of its own, after the answer: the mail
/// server's time and failures never show in it.
fn send_later(mail: AccountMailer, purpose: TokenPurpose, mailed: MailedToken) {
    tokio::spawn(async move { send_now(&mail, purpose, mailed).await });
}

/// Erased.
#[derive(ApiResponse)]
pub(crate) enum Erased {
    /// The account and everything it owned are gone.
    #[oai(status = 204)]
    Done,
}

/// The account.
#[derive(ApiResponse)]
pub(crate) enum Me {
    /// The caller's account.
    #[oai(status = 200)]
    Ok(Json<UserView>),
}

pub(crate) struct AccountsApi;

/// The answer to a refused authentication; the 401s never say more than
/// the client needs to know what to do next.
fn auth_error(e: AuthError) -> ApiError {
    match e {
        AuthError::BadCredentials => bad_credentials(),
        AuthError::SessionInvalid | AuthError::TokenReused => ApiError::of(
            ProblemType::Unauthorized,
            "the refresh token is unknown, spent, expired or revoked; log in again",
        ),
        AuthError::AccountGone => ApiError::of(ProblemType::Unauthorized, "the account is gone"),
        AuthError::LoginNotRecent => ApiError::of(
            ProblemType::Forbidden,
            "send the password: without it, this needs a session that logged in within the last 5 minutes",
        ),
        AuthError::ResetInvalid => Problem::invalid(
            "token",
            "is unknown, already used, replaced by a newer one or expired; ask for a new reset",
        )
        .into(),
        AuthError::Service(e) => e.into(),
    }
}

/// One password guess for an account from a client address, counted
/// before the password is checked. Logins and the step-up checks of a
/// password change or an account deletion share these budgets, so a stolen
/// access token is no faster a way to guess than the login form.
struct Guess {
    by_ip: limiter::Decision,
    by_pair: limiter::Decision,
    address: String,
    pair: String,
}

impl Guess {
    /// Counts a guess for `email` (its `login_key`) from `client`, in one
    /// step each, so concurrent guesses cannot all pass a check made before
    /// any count; refused past either limit.
    async fn count(
        state: &AppState,
        client: &ClientAddress,
        email: &str,
    ) -> Result<Self, ApiError> {
        let limits = &state.config.rate_limits;
        let address = client.key();
        let pair = format!("{email} {address}");
        let by_ip = state.limiter.hit(limits.login_per_ip, &address).await;
        if !by_ip.allowed() {
            // The pair is not counted: a refused address must not fill
            // the counters with keys of its choosing.
            return Err(limiter::refused(
                &by_ip,
                "too many failed logins from this address; wait and retry",
            ));
        }
        let by_pair = state.limiter.hit(limits.login_per_pair, &pair).await;
        let d = by_ip.tighter(by_pair);
        if !d.allowed() {
            return Err(limiter::refused(
                &d,
                "too many failed logins for this account or address; wait and retry",
            ));
        }
        limiter::note(d);
        Ok(Self {
            by_ip,
            by_pair,
            address,
            pair,
        })
    }

    /// The password was right: the guess is given back.
    async fn refund(self, state: &AppState) {
        state.limiter.refund(&self.by_ip, &self.address).await;
        state.limiter.refund(&self.by_pair, &self.pair).await;
    }
}

/// A step-up password check by the caller, counted as a guess for the
/// caller's own address (the account is read for its e-mail).
async fn step_up_guess(
    state: &AppState,
    client: &ClientAddress,
    auth: &BearerAuth,
) -> Result<Guess, ApiError> {
    let user = state.users.me(&auth.0.actor()).await?;
    let email = alarm_domain::model::login_key(user.email().as_str());
    Guess::count(state, client, &email).await
}

fn bad_credentials() -> ApiError {
    ApiError::of(ProblemType::Unauthorized, "the email or password is wrong")
}

fn token_view(
    state: &AppState,
    user: &alarm_domain::model::User,
    session: uuid::Uuid,
    refresh: SecretString,
) -> Result<TokenView, ApiError> {
    let access = state
        .tokens()
        .issue(user.id(), user.role(), session, state.ports.clock.now())
        .map_err(|e| ApiError::internal(&*Box::<dyn std::error::Error>::from(e)))?;
    Ok(TokenView {
        access_token: access,
        token_type: "Bearer".to_owned(),
        expires_in: state.tokens().config().access_ttl.as_secs(),
        refresh_token: refresh.expose_secret().to_owned(),
    })
}

#[OpenApi(prefix_path = "/api/v1/auth", tag = "ApiTags::Auth")]
impl AccountsApi {
    /// Register an account.
    ///
    /// When this deployment sends e-mail, a link to verify the address
    /// (valid 24 hours) goes to it; until the address is verified, no
    /// alarm e-mail is sent to it. An address in the operator's
    /// `ADMIN_EMAILS` becomes administrator only once verified.
    #[oai(path = "/register", method = "post")]
    async fn register(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientAddress>,
        body: JsonBody<RegisterInput, CREDENTIALS_BODY_BYTES>,
    ) -> Result<Registered, ApiError> {
        // Every attempt counts, valid or not: the limit bounds what one
        // address can make the server do.
        let d = state
            .limiter
            .hit(state.config.rate_limits.register_per_ip, &client.key())
            .await;
        if !d.allowed() {
            return Err(limiter::refused(
                &d,
                "too many registrations from this address; wait and retry",
            ));
        }
        limiter::note(d);
        let input = body.into_inner()?;
        let email = Email::parse(&input.email)?;
        auth::check_password_policy("password", &input.password).map_err(ApiError::from)?;
        let display_name = DisplayName::parse(&input.display_name)?;
        let time_zone = match &input.time_zone {
            None => TimeZoneName::utc(),
            Some(z) => TimeZoneName::resolve(z, &state.tzdb)?,
        };
        let locale = match (&input.country, &input.state) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(Problem::invalid("state", "a state needs a country").into());
            }
            (Some(c), s) => Some(Locale::new(
                Country::parse(c)?,
                s.as_deref().map(StateCode::parse).transpose()?,
            )),
        };
        let _ticket = auth::hash_ticket()?;
        let password_hash = auth::hash_password(SecretString::from(input.password))
            .await
            .map_err(|e| ApiError::internal(&*Box::<dyn std::error::Error>::from(e)))?;
        let user = state
            .users
            .register(
                NewUser {
                    email,
                    display_name,
                    password_hash,
                    time_zone,
                    locale,
                },
                &crate::problem::request_id(),
            )
            .await?;
        if let Some(mail) = state.config.account_mail.clone() {
            let actor =
                alarm_domain::services::Actor::for_user(&user, &crate::problem::request_id());
            // The account exists either way; a link that failed to be
            // issued can be asked for again (`/auth/verify/resend`).
            match state.users.request_verification(&actor).await {
                Ok(mailed) => send_later(mail, TokenPurpose::EmailVerification, mailed),
                Err(e) => {
                    tracing::warn!(error = %e, "no verification link was issued at registration")
                }
            }
        }
        Ok(Registered::Created(Json(UserView::new(&user))))
    }

    /// Log in with email and password.
    ///
    /// An unknown email and a wrong password get the same answer in the same
    /// time. After 10 failures for one email from one address, or 50 from
    /// one address for any email, in a 15-minute window (the operator's
    /// `LOGIN_*` settings), attempts from that address are refused with 429
    /// and `Retry-After` until the window ends. Failures elsewhere never
    /// block a login from another address.
    #[oai(path = "/login", method = "post")]
    async fn login(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientAddress>,
        body: JsonBody<LoginInput, CREDENTIALS_BODY_BYTES>,
    ) -> Result<Issued, ApiError> {
        let input = body.into_inner()?;
        // Bounded before it becomes a counter key or reaches argon2.
        if input.email.len() > 4 * 254 || input.email.trim().chars().count() > 254 {
            return Err(Problem::invalid("email", "must have at most 254 characters").into());
        }
        auth::check_password_size("password", &input.password)?;
        let limits = &state.config.rate_limits;
        let email = alarm_domain::model::login_key(&input.email);
        let guess = Guess::count(&state, &client, &email).await?;
        let _ticket = auth::hash_ticket()?;
        let (refresh, hash) = auth::new_refresh_token()
            .map_err(|e| ApiError::internal(&*Box::<dyn std::error::Error>::from(e)))?;
        let session = match state
            .auth
            .login(
                &input.email,
                SecretString::from(input.password),
                hash,
                &crate::problem::request_id(),
            )
            .await
        {
            Ok(session) => session,
            Err(AuthError::BadCredentials) => {
                metrics::counter!("login_failures_total").increment(1);
                let spread = state
                    .limiter
                    .hit(limits.login_alert_per_email, &email)
                    .await;
                if spread.count == u64::from(spread.rate.limit) {
                    // Guessing spread over many addresses: each address
                    // is capped above, and the owner's own logins must keep
                    // working, so this is an operator's alert, not a lock.
                    tracing::warn!(
                        failures = spread.count,
                        window_secs = spread.rate.period_secs,
                        "many failed logins for one account from many addresses"
                    );
                }
                return Err(bad_credentials());
            }
            Err(e) => return Err(auth_error(e)),
        };
        guess.refund(&state).await;
        Ok(Issued::Ok(Json(token_view(
            &state,
            &session.user,
            session.family.id,
            refresh,
        )?)))
    }

    /// Exchange a refresh token for new tokens.
    ///
    /// Each refresh token works once; presenting a spent one revokes the whole session.
    #[oai(path = "/refresh", method = "post")]
    async fn refresh(
        &self,
        state: Data<&Arc<AppState>>,
        body: JsonBody<RefreshInput, CREDENTIALS_BODY_BYTES>,
    ) -> Result<Issued, ApiError> {
        let input = body.into_inner()?;
        let old = auth::refresh_hash(&input.refresh_token);
        let (refresh, new) = auth::new_refresh_token()
            .map_err(|e| ApiError::internal(&*Box::<dyn std::error::Error>::from(e)))?;
        let session = state
            .auth
            .refresh(old, new, &crate::problem::request_id())
            .await
            .map_err(auth_error)?;
        Ok(Issued::Ok(Json(token_view(
            &state,
            &session.user,
            session.family.id,
            refresh,
        )?)))
    }

    /// Log out: revoke this session's refresh token and access tokens.
    #[oai(path = "/logout", method = "post")]
    async fn logout(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
    ) -> Result<LoggedOut, ApiError> {
        state
            .auth
            .logout(&auth.0.actor(), auth.0.session)
            .await
            .map_err(auth_error)?;
        Ok(LoggedOut::Done)
    }

    /// Ends every session of the caller, this one included (a lost device,
    /// a suspected leak). Audited.
    #[oai(path = "/logout-all", method = "post")]
    async fn logout_all(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
    ) -> Result<LoggedOut, ApiError> {
        state
            .auth
            .logout_everywhere(&auth.0.actor())
            .await
            .map_err(auth_error)?;
        Ok(LoggedOut::Done)
    }

    /// Changes the caller's password after checking the current one; every
    /// other session ends, this one stays. Audited. A wrong current
    /// password is 403.
    #[oai(path = "/password", method = "post")]
    async fn change_password(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientAddress>,
        body: JsonBody<PasswordChangeInput, CREDENTIALS_BODY_BYTES>,
    ) -> Result<LoggedOut, ApiError> {
        let input = body.into_inner()?;
        auth::check_password_size("current_password", &input.current_password)?;
        auth::check_password_policy("new_password", &input.new_password).map_err(ApiError::from)?;
        let guess = step_up_guess(&state, &client, &auth).await?;
        let _ticket = auth::hash_ticket()?;
        let result = state
            .auth
            .change_password(
                &auth.0.actor(),
                auth.0.session,
                SecretString::from(input.current_password),
                SecretString::from(input.new_password),
            )
            .await;
        match result {
            Ok(_) => {
                guess.refund(&state).await;
                Ok(LoggedOut::Done)
            }
            Err(AuthError::BadCredentials) => Err(ApiError::of(
                ProblemType::Forbidden,
                "the current password is wrong",
            )),
            Err(e) => Err(auth_error(e)),
        }
    }

    /// Asks for a password reset: if the address has an account, a
    /// single-use link valid for 30 minutes is e-mailed to it, and any
    /// earlier link stops working. The answer is the same 202 whether or
    /// not the address has an account: the look-up, the token and the
    /// mail happen after it, so neither its time nor an error tells. Limited per
    /// client address and per e-mail address; 503 when this deployment has
    /// no e-mail configured.
    #[oai(path = "/password-reset", method = "post")]
    async fn request_reset(
        &self,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientAddress>,
        body: JsonBody<ResetRequestInput, CREDENTIALS_BODY_BYTES>,
    ) -> Result<ResetAccepted, ApiError> {
        let limits = &state.config.rate_limits;
        let d = state.limiter.hit(limits.resets_per_ip, &client.key()).await;
        if !d.allowed() {
            return Err(limiter::refused(
                &d,
                "too many password resets from this address; wait and retry",
            ));
        }
        let input = body.into_inner()?;
        let email = Email::parse(&input.email)?;
        let Some(mail) = state.config.account_mail.clone() else {
            return Err(ApiError::of(
                ProblemType::Unavailable,
                "password reset needs e-mail, which this deployment has not configured (SMTP_HOST)",
            ));
        };
        let by_email = state
            .limiter
            .hit(limits.resets_per_email, &format!("reset:{}", email.key()))
            .await;
        if !by_email.allowed() {
            return Err(limiter::refused(
                &by_email,
                "too many password resets for this address; wait and retry",
            ));
        }
        limiter::note(d);
        // Everything that depends on whether the address has an account
        // (the look-up, the token's commit, the mail) runs after the answer,
        // in its own task: neither its time nor its failures can show.
        let auth = state.auth.clone();
        let correlation_id = crate::problem::request_id();
        tokio::spawn(async move {
            match auth.request_password_reset(&email, &correlation_id).await {
                Ok(Some(reset)) => send_now(&mail, TokenPurpose::PasswordReset, reset).await,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "a password reset could not be started"),
            }
        });
        Ok(ResetAccepted::Accepted)
    }

    /// Sets a new password with the token from a reset e-mail. The token is
    /// spent, and every session of the account ends (log in again). An
    /// unknown, used, replaced or expired token is 422 on `token`.
    #[oai(path = "/password-reset/confirm", method = "post")]
    async fn confirm_reset(
        &self,
        state: Data<&Arc<AppState>>,
        body: JsonBody<ResetConfirmInput, CREDENTIALS_BODY_BYTES>,
    ) -> Result<LoggedOut, ApiError> {
        let input = body.into_inner()?;
        check_token_text(&input.token)?;
        auth::check_password_policy("new_password", &input.new_password).map_err(ApiError::from)?;
        let _ticket = auth::hash_ticket()?;
        state
            .auth
            .reset_password(
                &SecretString::from(input.token),
                SecretString::from(input.new_password),
                &crate::problem::request_id(),
            )
            .await
            .map_err(auth_error)?;
        Ok(LoggedOut::Done)
    }

    /// Deletes the caller's account and everything it owns: alarms and
    /// their triggers, ringing occurrences and history, webhooks and their
    /// pending and past deliveries, API keys, exception periods, holiday
    /// preferences, routines, sessions and stored idempotent answers, in
    /// one transaction. The audit log keeps its records under a random
    /// pseudonym, without their summaries. Needs the password (a wrong one
    /// is 403 and erases nothing), or, with `{}`, a session whose password
    /// login was in the last 5 minutes (else 403). Every token of the
    /// account stops working at once (the account is read on each request).
    #[oai(path = "/me", method = "delete")]
    async fn delete_me(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        client: Data<&ClientAddress>,
        body: JsonBody<AccountDeletionInput, CREDENTIALS_BODY_BYTES>,
    ) -> Result<Erased, ApiError> {
        let input = body.into_inner()?;
        let actor = auth.0.actor();
        let Some(password) = input.password else {
            // No password, so nothing to guess: the session's login stands
            // in for it, or the answer is 403.
            state
                .auth
                .delete_account(&actor, auth.0.session, None)
                .await
                .map_err(auth_error)?;
            return Ok(Erased::Done);
        };
        auth::check_password_size("password", &password)?;
        let guess = step_up_guess(&state, &client, &auth).await?;
        let _ticket = auth::hash_ticket()?;
        let result = state
            .auth
            .delete_account(&actor, auth.0.session, Some(SecretString::from(password)))
            .await;
        match result {
            Ok(()) => {
                guess.refund(&state).await;
                Ok(Erased::Done)
            }
            Err(AuthError::BadCredentials) => Err(ApiError::of(
                ProblemType::Forbidden,
                "the password is wrong",
            )),
            Err(e) => Err(auth_error(e)),
        }
    }

    /// Verifies an address with the token from the e-mailed link (no
    /// login needed: the token proves the mailbox). The token is spent; an
    /// unknown, used, replaced or expired token is 422 on `token`. An
    /// address in the operator's `ADMIN_EMAILS` becomes administrator now,
    /// on its first verification (every request reads the role, so tokens
    /// already issued carry it at once).
    #[oai(path = "/verify", method = "post")]
    async fn verify(
        &self,
        state: Data<&Arc<AppState>>,
        body: JsonBody<VerifyInput, CREDENTIALS_BODY_BYTES>,
    ) -> Result<LoggedOut, ApiError> {
        let input = body.into_inner()?;
        check_token_text(&input.token)?;
        state
            .users
            .verify_email(
                &SecretString::from(input.token),
                &crate::problem::request_id(),
            )
            .await?;
        Ok(LoggedOut::Done)
    }

    /// Sends the caller a new verification link (valid 24 hours); the
    /// earlier one stops working. 409 when the address is verified already,
    /// 429 past 3 an hour (`RATE_LIMIT_VERIFICATION_RESENDS_PER_HOUR`),
    /// 503 when this deployment has no e-mail configured.
    #[oai(path = "/verify/resend", method = "post")]
    async fn resend_verification(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
    ) -> Result<VerificationSent, ApiError> {
        let Some(mail) = state.config.account_mail.clone() else {
            return Err(ApiError::of(
                ProblemType::Unavailable,
                "verification needs e-mail, which this deployment has not configured (SMTP_HOST); an operator can verify an address with `alarm-admin verify`",
            ));
        };
        let actor = auth.0.actor();
        let d = state
            .limiter
            .hit(
                state.config.rate_limits.verifications_per_user,
                &format!("verify:{}", actor.user),
            )
            .await;
        if !d.allowed() {
            return Err(limiter::refused(
                &d,
                "too many verification links asked for; wait and retry",
            ));
        }
        limiter::note(d);
        let mailed = state.users.request_verification(&actor).await?;
        send_later(mail, TokenPurpose::EmailVerification, mailed);
        Ok(VerificationSent::Accepted)
    }

    /// The caller's account.
    #[oai(path = "/me", method = "get")]
    async fn me(&self, auth: BearerAuth, state: Data<&Arc<AppState>>) -> Result<Me, ApiError> {
        let user = state.users.me(&auth.0.actor()).await?;
        Ok(Me::Ok(Json(UserView::new(&user))))
    }

    /// Change the caller's display name, default time zone, country or state.
    ///
    /// Members left out stay as they are, except that a new `country`
    /// without a `state` drops the old country's state. A new country or
    /// state brings other holidays: the caller's alarms are re-planned at once.
    #[oai(path = "/me", method = "patch")]
    async fn update_me(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        body: JsonBody<ProfileInput, CREDENTIALS_BODY_BYTES>,
    ) -> Result<Me, ApiError> {
        let input = body.into_inner()?;
        let actor = auth.0.actor();
        let required = |field: &str, value: &MaybeUndefined<String>| {
            if value.is_null() {
                Err(ApiError::from(Problem::invalid(field, "may not be null")))
            } else {
                Ok(value.value().cloned())
            }
        };
        let display_name = required("display_name", &input.display_name)?
            .map(|n| DisplayName::parse(&n))
            .transpose()?;
        let time_zone = required("time_zone", &input.time_zone)?
            .map(|z| TimeZoneName::resolve(&z, &state.tzdb))
            .transpose()?;
        let locale = match (&input.country, &input.state) {
            (MaybeUndefined::Undefined, MaybeUndefined::Undefined) => None,
            (MaybeUndefined::Null, MaybeUndefined::Value(_)) => {
                return Err(Problem::invalid("state", "a state needs a country").into());
            }
            (MaybeUndefined::Null, _) => Some(None),
            (MaybeUndefined::Value(c), s) => {
                let country = Country::parse(c)?;
                let region = match s {
                    MaybeUndefined::Value(s) => Some(StateCode::parse(s)?),
                    MaybeUndefined::Null => None,
                    // Left out: kept when the country stays, dropped when
                    // it changes (a state belongs to its country).
                    MaybeUndefined::Undefined => {
                        let current = state.users.me(&actor).await?;
                        current
                            .locale()
                            .filter(|l| l.country() == country)
                            .and_then(|l| l.state().cloned())
                    }
                };
                Some(Some(Locale::new(country, region)))
            }
            // Only the state changes: it is a state of the current country.
            (MaybeUndefined::Undefined, s) => {
                let current = state.users.me(&actor).await?;
                let Some(country) = current.locale().map(Locale::country) else {
                    return Err(Problem::invalid("state", "a state needs a country").into());
                };
                Some(Some(Locale::new(
                    country,
                    s.value().map(|s| StateCode::parse(s)).transpose()?,
                )))
            }
        };
        let user = state
            .users
            .update_profile(
                &actor,
                ProfileChange {
                    display_name,
                    time_zone,
                    locale,
                },
            )
            .await?;
        Ok(Me::Ok(Json(UserView::new(&user))))
    }
}
