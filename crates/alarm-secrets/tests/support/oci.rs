//! A fake of OCI's Secret Retrieval API that checks every request's signature with the caller's public key, as OCI does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::{Answer, Request, serve};

/// What the fake holds.
#[derive(Default)]
pub struct State {
    /// The key id a request must carry, and the public key (PKCS#1 DER)
    /// its signature must verify with.
    pub key_id: String,
    pub public_key: Vec<u8>,
    /// Secrets: OCID → (vault OCID, name, versions, 1 first).
    pub secrets: HashMap<String, (String, String, Vec<String>)>,
    /// Requests whose signature verified.
    pub accepted: u32,
    /// Requests refused as not authenticated.
    pub refused: u32,
}

/// The fake and how to reach it.
#[derive(Clone)]
pub struct FakeOci {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
}

impl FakeOci {
    /// Starts the fake on the calling runtime.
    pub async fn start(state: State) -> Self {
        let state = Arc::new(Mutex::new(state));
        let s = state.clone();
        let addr = serve(Arc::new(move |req| handle(&s, &req))).await;
        Self { addr, state }
    }

    /// The endpoint, as `OciConfig::endpoint`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn fields(authorization: &str) -> Option<HashMap<&str, &str>> {
    let rest = authorization.strip_prefix("Signature ")?;
    rest.split(',')
        .map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k, v.strip_prefix('"')?.strip_suffix('"')?))
        })
        .collect()
}

/// Why a request is not authenticated, if it is not.
fn unauthenticated(st: &State, req: &Request) -> Option<&'static str> {
    let auth = fields(req.header("authorization")?)?;
    if auth.get("version") != Some(&"1") || auth.get("algorithm") != Some(&"rsa-sha256") {
        return Some("version or algorithm");
    }
    if auth.get("keyId") != Some(&st.key_id.as_str()) {
        return Some("key id");
    }
    let names: Vec<&str> = auth.get("headers")?.split(' ').collect();
    let body_method = matches!(req.method.as_str(), "POST" | "PUT" | "PATCH");
    let needed: &[&str] = if body_method {
        &[
            "date",
            "(request-target)",
            "host",
            "content-length",
            "content-type",
            "x-content-sha256",
        ]
    } else {
        &["date", "(request-target)", "host"]
    };
    if needed.iter().any(|n| !names.contains(n)) {
        return Some("a required header is not signed");
    }
    if body_method {
        let digest = STANDARD.encode(ring::digest::digest(&ring::digest::SHA256, &req.body));
        if req.header("x-content-sha256") != Some(digest.as_str()) {
            return Some("body digest");
        }
    }
    let date = jiff::fmt::rfc2822::parse(req.header("date")?).ok()?;
    if (jiff::Timestamp::now() - date.timestamp())
        .get_seconds()
        .abs()
        > 300
    {
        return Some("clock skew");
    }
    let mut lines = Vec::new();
    for n in names {
        lines.push(if n == "(request-target)" {
            format!(
                "(request-target): {} {}",
                req.method.to_ascii_lowercase(),
                req.target
            )
        } else {
            format!("{n}: {}", req.header(n)?)
        });
    }
    let signature = STANDARD.decode(auth.get("signature")?).ok()?;
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &st.public_key,
    )
    .verify(lines.join("\n").as_bytes(), &signature)
    .err()
    .map(|_| "signature")
}

fn bundle(id: &str, version: usize, value: &str) -> Answer {
    (
        200,
        json!({
            "secretId": id,
            "versionNumber": version,
            "stages": ["CURRENT", "LATEST"],
            "secretBundleContent": { "contentType": "BASE64", "content": STANDARD.encode(value) },
        }),
    )
}

fn not_found() -> Answer {
    (
        404,
        json!({ "code": "NotAuthorizedOrNotFound", "message": "Authorization failed or requested resource not found." }),
    )
}

fn handle(state: &Mutex<State>, req: &Request) -> Answer {
    let mut st = state.lock().expect("state");
    if req.header("authorization").is_none() || unauthenticated(&st, req).is_some() {
        st.refused += 1;
        return (
            401,
            json!({ "code": "NotAuthenticated", "message": "The required information to complete authentication was not provided or was incorrect." }),
        );
    }
    st.accepted += 1;
    let version = req
        .query("versionNumber")
        .map(|v| v.parse::<usize>().expect("version"));
    let found = match (req.method.as_str(), req.path()) {
        ("GET", p) if p.starts_with("/20190301/secretbundles/") => {
            let id = &p["/20190301/secretbundles/".len()..];
            st.secrets.get(id).map(|s| (id.to_owned(), s.2.clone()))
        }
        ("POST", "/20190301/secretbundles/actions/getByName") => {
            let (name, vault) = (req.query("secretName"), req.query("vaultId"));
            st.secrets
                .iter()
                .find(|(_, (v, n, _))| Some(v.as_str()) == vault && Some(n.as_str()) == name)
                .map(|(id, s)| (id.clone(), s.2.clone()))
        }
        _ => None,
    };
    let Some((id, versions)) = found else {
        return not_found();
    };
    let v = version.unwrap_or(versions.len());
    match v.checked_sub(1).and_then(|i| versions.get(i)) {
        Some(value) => bundle(&id, v, value),
        None => not_found(),
    }
}
