//! A fake of the Vault HTTP API: KV v2 reads (versioned), token lookup-self and renew-self, AppRole login, a namespace header, sealing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::Notify;

use super::{Answer, Request, serve_with};

/// What the fake holds and counts.
#[derive(Default)]
pub struct State {
    /// Valid tokens and their TTL in seconds.
    pub tokens: HashMap<String, u64>,
    /// KV v2 secrets under the mount `secret`: path → versions (1 first).
    pub secrets: HashMap<String, Vec<HashMap<String, String>>>,
    /// Paths the tokens may not read.
    pub forbidden: Vec<String>,
    /// The namespace every request must name, if any.
    pub namespace: Option<String>,
    /// Answers 503 "Vault is sealed" to everything.
    pub sealed: bool,
    /// AppRole credentials (role id, secret id), and the TTL of the
    /// tokens it issues.
    pub approle: Option<(String, String, u64)>,
    /// Renewals refused with 403.
    pub refuse_renewal: bool,
    /// Counters.
    pub logins: u32,
    pub renewals: u32,
}

/// The fake and how to reach it.
#[derive(Clone)]
pub struct FakeVault {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    /// Notified after each login and renewal.
    pub changed: Arc<Notify>,
    https: bool,
}

fn envelope(data: Value, auth: Value) -> Value {
    json!({
        "request_id": "00000000-0000-0000-0000-000000000000",
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": null,
        "auth": auth,
    })
}

fn errors(code: u16, msgs: &[&str]) -> Answer {
    (code, json!({ "errors": msgs }))
}

fn auth_info(token: &str, ttl: u64) -> Value {
    json!({
        "client_token": token,
        "accessor": "acc",
        "policies": ["default"],
        "token_policies": ["default"],
        "metadata": null,
        "lease_duration": ttl,
        "renewable": true,
        "entity_id": "",
        "token_type": "service",
        "orphan": true,
    })
}

impl FakeVault {
    /// Starts the fake on the calling runtime.
    pub async fn start(state: State) -> Self {
        Self::start_with(state, None).await
    }

    /// Starts the fake over TLS with its own self-signed certificate for
    /// `localhost`; gives the certificate, PEM, as a client's CA.
    pub async fn start_tls(state: State) -> (Self, String) {
        let (acceptor, ca) = super::self_signed();
        (Self::start_with(state, Some(acceptor)).await, ca)
    }

    async fn start_with(state: State, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let state = Arc::new(Mutex::new(state));
        let changed = Arc::new(Notify::new());
        let (s, c) = (state.clone(), changed.clone());
        let https = tls.is_some();
        let addr = serve_with(Arc::new(move |req| handle(&s, &c, &req)), tls).await;
        Self {
            addr,
            state,
            changed,
            https,
        }
    }

    /// The address as `VAULT_ADDR`.
    pub fn url(&self) -> String {
        if self.https {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }
}

fn handle(state: &Mutex<State>, changed: &Notify, req: &Request) -> Answer {
    let mut st = state.lock().expect("state");
    if st.sealed {
        return errors(503, &["Vault is sealed"]);
    }
    if let Some(ns) = &st.namespace
        && req.header("x-vault-namespace") != Some(ns.as_str())
    {
        return errors(403, &["permission denied (namespace)"]);
    }
    if req.method == "POST" && req.path() == "/v1/auth/approle/login" {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let Some((role, secret, ttl)) = st.approle.clone() else {
            return errors(400, &["no approle"]);
        };
        if body["role_id"] != role || body["secret_id"] != secret {
            return errors(400, &["invalid role or secret ID"]);
        }
        st.logins += 1;
        let token = format!("hvs.approle-{}", st.logins);
        st.tokens.insert(token.clone(), ttl);
        changed.notify_waiters();
        return (200, envelope(Value::Null, auth_info(&token, ttl)));
    }
    let token = req.header("x-vault-token").unwrap_or_default().to_owned();
    let Some(&ttl) = st.tokens.get(&token) else {
        return errors(403, &["permission denied"]);
    };
    match (req.method.as_str(), req.path()) {
        ("GET", "/v1/auth/token/lookup-self") => (
            200,
            envelope(
                json!({
                    "accessor": "acc", "creation_time": 0, "creation_ttl": ttl,
                    "display_name": "token", "entity_id": "", "expire_time": null,
                    "explicit_max_ttl": 0, "id": token, "identity_policies": null,
                    "issue_time": null, "meta": null, "num_uses": 0, "orphan": true,
                    "path": "auth/token/create", "policies": ["default"],
                    "renewable": ttl > 0, "role": null, "ttl": ttl,
                }),
                Value::Null,
            ),
        ),
        ("POST", "/v1/auth/token/renew-self") => {
            if st.refuse_renewal {
                return errors(403, &["token not renewable"]);
            }
            st.renewals += 1;
            changed.notify_waiters();
            (200, envelope(Value::Null, auth_info(&token, ttl)))
        }
        ("GET", path) if path.starts_with("/v1/secret/data/") => {
            let name = &path["/v1/secret/data/".len()..];
            if st.forbidden.iter().any(|f| f == name) {
                return errors(403, &["1 error occurred:\n\t* permission denied\n\n"]);
            }
            let Some(versions) = st.secrets.get(name) else {
                return errors(404, &[]);
            };
            let version = match req.query("version") {
                Some(v) => v.parse::<usize>().expect("version"),
                None => versions.len(),
            };
            let Some(data) = version.checked_sub(1).and_then(|i| versions.get(i)) else {
                return errors(404, &[]);
            };
            (
                200,
                envelope(
                    json!({
                        "data": data,
                        "metadata": {
                            "created_time": "2026-12-04T00:00:00Z", "deletion_time": "",
                            "custom_metadata": null, "destroyed": false, "version": version,
                        },
                    }),
                    Value::Null,
                ),
            )
        }
        _ => errors(404, &[]),
    }
}
