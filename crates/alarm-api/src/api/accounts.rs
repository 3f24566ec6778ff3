//! `/api/v1/auth/*`: registration, login, refresh-token rotation with reuse detection, logout and the caller's account.

use std::sync::Arc;

use alarm_domain::model::{Country, DisplayName, Email, Locale, StateCode};
use alarm_domain::ports::{RefreshFamily, StoreError};
use alarm_domain::services::NewUser;
use alarm_domain::tz::TimeZoneName;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use secrecy::{ExposeSecret, SecretString};

use super::ApiTags;
use crate::auth::{self, BearerAuth};
use crate::body::JsonBody;
use crate::dto::{LoginInput, RefreshInput, RegisterInput, TokenView, UserView};
use crate::problem::{ApiError, Problem, ProblemType};
use crate::state::AppState;

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

/// The account.
#[derive(ApiResponse)]
pub(crate) enum Me {
    /// The caller's account.
    #[oai(status = 200)]
    Ok(Json<UserView>),
}

pub(crate) struct AccountsApi;

fn bad_credentials() -> ApiError {
    ApiError::of(ProblemType::Unauthorized, "the email or password is wrong")
}

async fn issue(state: &AppState, user: &alarm_domain::model::User) -> Result<TokenView, ApiError> {
    let now = state.ports.clock.now();
    let family = RefreshFamily {
        id: uuid::Uuid::now_v7(),
        user: user.id(),
        expires_at: now + state.tokens.config().refresh_ttl,
        revoked: false,
    };
    let (refresh, hash) = auth::new_refresh_token()
        .map_err(|e| ApiError::internal(&*Box::<dyn std::error::Error>::from(e)))?;
    state
        .ports
        .refresh_tokens
        .create(family.clone(), hash)
        .await
        .map_err(|e| ApiError::from(alarm_domain::services::ServiceError::from(e)))?;
    token_view(state, user, family.id, refresh)
}

fn token_view(
    state: &AppState,
    user: &alarm_domain::model::User,
    session: uuid::Uuid,
    refresh: SecretString,
) -> Result<TokenView, ApiError> {
    let access = state
        .tokens
        .issue(user.id(), user.role(), session, state.ports.clock.now())
        .map_err(|e| ApiError::internal(&*Box::<dyn std::error::Error>::from(e)))?;
    Ok(TokenView {
        access_token: access,
        token_type: "Bearer".to_owned(),
        expires_in: state.tokens.config().access_ttl.as_secs(),
        refresh_token: refresh.expose_secret().to_owned(),
    })
}

#[OpenApi(prefix_path = "/api/v1/auth", tag = "ApiTags::Auth")]
impl AccountsApi {
    /// Register an account.
    ///
    /// Accounts whose email is in the operator's `ADMIN_EMAILS` become administrators.
    #[oai(path = "/register", method = "post")]
    async fn register(
        &self,
        state: Data<&Arc<AppState>>,
        body: JsonBody<RegisterInput>,
    ) -> Result<Registered, ApiError> {
        let input = body.into_inner()?;
        let email = Email::parse(&input.email)?;
        auth::check_password_policy(&input.password).map_err(ApiError::from)?;
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
        Ok(Registered::Created(Json(UserView::new(&user))))
    }

    /// Log in with email and password.
    ///
    /// An unknown email and a wrong password get the same answer in the same
    /// time. After 10 failures for one email from one address (100 for one
    /// email from anywhere, 50 from one address for any email) in 15
    /// minutes, attempts are refused with 429 and `Retry-After` until the
    /// window passes.
    #[oai(path = "/login", method = "post")]
    async fn login(
        &self,
        state: Data<&Arc<AppState>>,
        remote: &poem::web::RemoteAddr,
        body: JsonBody<LoginInput>,
    ) -> Result<Issued, ApiError> {
        let input = body.into_inner()?;
        let address = crate::throttle::client_key(remote);
        let now = state.ports.clock.now();
        if let Some(wait) = state.throttle.blocked(&input.email, &address, now) {
            return Err(ApiError::rate_limited(
                wait,
                "too many failed logins for this account or address; wait and retry",
            ));
        }
        let password = SecretString::from(input.password);
        let found = match Email::parse(&input.email) {
            Ok(email) => state
                .ports
                .users
                .credentials(&email)
                .await
                .map_err(|e| ApiError::from(alarm_domain::services::ServiceError::from(e)))?,
            Err(_) => None,
        };
        let Some((user, hash)) = found else {
            // Spend the same effort as a real check before answering.
            let decoy = SecretString::from(auth::DECOY_HASH.to_owned());
            let _ = auth::verify_password(password, decoy).await;
            state.throttle.failed(&input.email, &address, now);
            return Err(bad_credentials());
        };
        if !auth::verify_password(password, hash).await {
            state.throttle.failed(&input.email, &address, now);
            return Err(bad_credentials());
        }
        state.throttle.succeeded(&input.email, &address);
        Ok(Issued::Ok(Json(issue(&state, &user).await?)))
    }

    /// Exchange a refresh token for new tokens.
    ///
    /// Each refresh token works once; presenting a spent one revokes the whole session.
    #[oai(path = "/refresh", method = "post")]
    async fn refresh(
        &self,
        state: Data<&Arc<AppState>>,
        body: JsonBody<RefreshInput>,
    ) -> Result<Issued, ApiError> {
        let input = body.into_inner()?;
        let old = auth::refresh_hash(&input.refresh_token);
        let (refresh, new) = auth::new_refresh_token()
            .map_err(|e| ApiError::internal(&*Box::<dyn std::error::Error>::from(e)))?;
        let now = state.ports.clock.now();
        let family = match state.ports.refresh_tokens.rotate(old, new, now).await {
            Ok(f) => f,
            Err(StoreError::NotFound | StoreError::LeaseLost) => {
                return Err(ApiError::of(
                    ProblemType::Unauthorized,
                    "the refresh token is unknown, spent, expired or revoked; log in again",
                ));
            }
            Err(e) => return Err(alarm_domain::services::ServiceError::from(e).into()),
        };
        let user = match state.ports.users.get(family.user).await {
            Ok(u) => u,
            Err(StoreError::NotFound) => {
                return Err(ApiError::of(
                    ProblemType::Unauthorized,
                    "the account is gone",
                ));
            }
            Err(e) => return Err(alarm_domain::services::ServiceError::from(e).into()),
        };
        Ok(Issued::Ok(Json(token_view(
            &state, &user, family.id, refresh,
        )?)))
    }

    /// Log out: revoke this session's refresh token and access tokens.
    #[oai(path = "/logout", method = "post")]
    async fn logout(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
    ) -> Result<LoggedOut, ApiError> {
        match state
            .ports
            .refresh_tokens
            .revoke_family(auth.0.session)
            .await
        {
            Ok(()) | Err(StoreError::NotFound) => Ok(LoggedOut::Done),
            Err(e) => Err(alarm_domain::services::ServiceError::from(e).into()),
        }
    }

    /// The caller's account.
    #[oai(path = "/me", method = "get")]
    async fn me(&self, auth: BearerAuth, state: Data<&Arc<AppState>>) -> Result<Me, ApiError> {
        let user = state.users.me(&auth.0.actor()).await?;
        Ok(Me::Ok(Json(UserView::new(&user))))
    }
}
