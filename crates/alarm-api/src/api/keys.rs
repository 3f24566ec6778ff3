//! `/.well-known/jwks.json`: the public keys that verify access tokens, so a gateway (an OCI API Gateway validates RS256/384/512 only) can check them at the edge.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use crate::state::AppState;

/// One public key (RFC 7517).
#[derive(Debug, Clone, Object)]
pub(crate) struct JwkView {
    /// Key type: `RSA`.
    pub kty: String,
    /// `sig`: the key verifies signatures.
    #[oai(rename = "use")]
    pub use_: String,
    /// `RS256`.
    pub alg: String,
    /// The `kid` of the tokens it verifies.
    pub kid: String,
    /// The modulus, base64url.
    pub n: String,
    /// The public exponent, base64url.
    pub e: String,
}

/// A JSON Web Key Set.
#[derive(Debug, Clone, Object)]
pub(crate) struct JwksView {
    /// The RSA keys that verify access tokens, the signing key first;
    /// empty when tokens are HS256 (whose keys are secret).
    pub keys: Vec<JwkView>,
}

/// The key set, cacheable for five minutes (a rotation publishes the new
/// key before it signs).
#[derive(ApiResponse)]
pub(crate) enum Jwks {
    /// The public keys.
    #[oai(status = 200)]
    Ok(Json<JwksView>, #[oai(header = "cache-control")] String),
}

pub(crate) struct KeysApi;

#[OpenApi(tag = "ApiTags::Operations")]
impl KeysApi {
    /// The public keys that verify access tokens (JWKS, RFC 7517).
    #[oai(path = "/.well-known/jwks.json", method = "get", operation_id = "jwks")]
    async fn jwks(&self, state: Data<&Arc<AppState>>) -> Jwks {
        let keys = state
            .tokens()
            .jwks(alarm_domain::jiff::Timestamp::now())
            .into_iter()
            .map(|k| JwkView {
                kty: k.kty.to_owned(),
                use_: k.use_.to_owned(),
                alg: k.alg.to_owned(),
                kid: k.kid,
                n: k.n,
                e: k.e,
            })
            .collect();
        Jwks::Ok(Json(JwksView { keys }), "public, max-age=300".to_owned())
    }
}
