//! `/api/v1/api-keys`: the caller's API keys for the webhook endpoints (the gateway's key authentication): issue (the key is shown once), list, delete, and rotate with an overlap. Managed with a bearer token only: a key cannot make keys.

use std::sync::Arc;

use alarm_domain::ids::ApiKeyId;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use secrecy::ExposeSecret;

use super::ApiTags;
use crate::auth::BearerAuth;
use crate::body::JsonBody;
use crate::dto::{ApiKeyInput, ApiKeyList, ApiKeyRotation, ApiKeyView, NewApiKeyView};
use crate::problem::ApiError;
use crate::state::AppState;

/// The key text must not be kept by a cache on the way.
const NO_STORE: &str = "no-store";

/// A new key.
#[derive(ApiResponse)]
pub(crate) enum Issued {
    /// The key and its text (shown only here).
    #[oai(status = 201)]
    Created(
        Json<NewApiKeyView>,
        #[oai(header = "Location")] String,
        #[oai(header = "Cache-Control")] String,
    ),
}

/// The caller's keys.
#[derive(ApiResponse)]
pub(crate) enum Listed {
    /// Every key (never their text).
    #[oai(status = 200)]
    Ok(Json<ApiKeyList>),
}

/// Deleted.
#[derive(ApiResponse)]
pub(crate) enum Deleted {
    /// The key stops working at once.
    #[oai(status = 204)]
    Done,
}

fn key_id(raw: &str) -> Result<ApiKeyId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

fn issued(state: &AppState, new: &alarm_domain::services::NewApiKey) -> Issued {
    Issued::Created(
        Json(NewApiKeyView {
            key: ApiKeyView::new(&new.key),
            api_key: new.secret.expose_secret().to_owned(),
        }),
        state.location(&format!("api-keys/{}", new.key.id)),
        NO_STORE.to_owned(),
    )
}

pub(crate) struct ApiKeysApi;

#[OpenApi(prefix_path = "/api/v1/api-keys", tag = "ApiTags::ApiKeys")]
impl ApiKeysApi {
    /// Issue an API key.
    ///
    /// The answer carries the key's text once; the server keeps only its
    /// hash. Send it as `X-API-Key` on `/api/v1/webhooks…`; it works nowhere
    /// else, and only within its scopes. At most 20 keys per user
    /// (`QUOTA_API_KEYS_PER_USER`); each key may make 1,000 requests an hour.
    /// Every use is audited (`api_key.use`).
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        body: JsonBody<ApiKeyInput>,
    ) -> Result<Issued, ApiError> {
        let (name, scopes, expires_at) = body.into_inner()?.to_domain()?;
        let new = state
            .api_keys
            .create(&auth.0.actor(), name, scopes, expires_at)
            .await?;
        Ok(issued(&state, &new))
    }

    /// List the caller's API keys.
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
    ) -> Result<Listed, ApiError> {
        let keys = state.api_keys.list(&auth.0.actor()).await?;
        Ok(Listed::Ok(Json(ApiKeyList {
            items: keys.iter().map(ApiKeyView::new).collect(),
        })))
    }

    /// Delete an API key: it stops working at once.
    #[oai(path = "/:id", method = "delete")]
    async fn delete(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// API key id.
        id: Path<String>,
    ) -> Result<Deleted, ApiError> {
        let id = key_id(&id.0)?;
        state.api_keys.delete(&auth.0.actor(), id).await?;
        Ok(Deleted::Done)
    }

    /// Rotate an API key.
    ///
    /// Issues a new key with the same name, scopes and expiry; the old one
    /// keeps working for `overlap_seconds` (default 3600, at most 604800,
    /// never past its own expiry), so clients can switch without an outage.
    #[oai(path = "/:id/rotate", method = "post")]
    async fn rotate(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// API key id.
        id: Path<String>,
        body: JsonBody<ApiKeyRotation>,
    ) -> Result<Issued, ApiError> {
        let id = key_id(&id.0)?;
        // 404 before the body is judged.
        state.api_keys.get(&auth.0.actor(), id).await?;
        let rotation = body.into_inner()?;
        let new = state
            .api_keys
            .rotate(&auth.0.actor(), id, rotation.overlap())
            .await?;
        Ok(issued(&state, &new))
    }
}
