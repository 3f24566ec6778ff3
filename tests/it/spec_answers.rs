//! Every answer matches the served spec: each operation of the OpenAPI document that the running server serves is called with real requests (happy paths and error paths), and each answer's status, content type, headers and body are checked against what that operation declares; an operation of the spec left out of the scenario fails the test.
//!
//! The document is OpenAPI 3.0, whose schema objects are not quite JSON
//! Schema, so they are translated (`nullable`, `$ref`, integer formats)
//! before a JSON Schema validator (boon, draft 2020-12) judges the bodies.
//! The translation also closes every object (`unevaluatedProperties:
//! false`): a member the spec does not declare is as much a mismatch as a
//! missing one, and problem bodies are written by hand in `problem.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use alarm_domain::jiff::{Timestamp, ToSpan, Unit};
use alarm_domain::ports::SendResult;
use serde_json::{Map, Value, json};

use crate::support::Harness;

/// The base of the translated schemas' document (never fetched: boon is
/// handed the document itself).
const SCHEMAS: &str = "http://spec.test/schemas.json";

/// One request to one operation of the spec.
struct Call {
    method: &'static str,
    template: &'static str,
    path: String,
    query: Option<String>,
    bearer: Option<String>,
    headers: Vec<(&'static str, String)>,
    body: Option<(&'static str, Vec<u8>)>,
}

fn call(method: &'static str, template: &'static str) -> Call {
    Call {
        method,
        template,
        path: template.to_owned(),
        query: None,
        bearer: None,
        headers: Vec::new(),
        body: None,
    }
}

impl Call {
    /// Fills the path parameter `{name}`.
    fn param(mut self, name: &str, value: &str) -> Self {
        let placeholder = format!("{{{name}}}");
        assert!(
            self.path.contains(&placeholder),
            "{} has no {placeholder}",
            self.template
        );
        self.path = self.path.replace(&placeholder, value);
        self
    }
    fn id(self, value: &str) -> Self {
        self.param("id", value)
    }
    fn query(mut self, query: &str) -> Self {
        self.query = Some(query.to_owned());
        self
    }
    fn bearer(mut self, token: &str) -> Self {
        self.bearer = Some(token.to_owned());
        self
    }
    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
    fn json(self, body: Value) -> Self {
        self.raw("application/json", body.to_string().into_bytes())
    }
    fn raw(mut self, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some((content_type, body.into()));
        self
    }
}

/// A checked answer.
struct Answer {
    body: Value,
    headers: reqwest::header::HeaderMap,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
    }
    fn str(&self, member: &str) -> String {
        self.body[member]
            .as_str()
            .unwrap_or_else(|| panic!("no {member} in {}", self.body))
            .to_owned()
    }
}

/// The served spec, its schemas compiled for validation, and what the
/// scenario has exercised so far.
struct Spec {
    doc: Value,
    compiler: boon::Compiler,
    schemas: boon::Schemas,
    /// (method, path, status, media type) → the name of its schema in the
    /// translated document's `$defs`.
    answers: HashMap<(String, String, String, String), String>,
    compiled: HashMap<String, boon::SchemaIndex>,
    /// (METHOD, path template) → the statuses seen.
    seen: BTreeMap<(String, String), BTreeSet<u16>>,
}

impl Spec {
    /// Fetches the document from the running server (not docs/openapi.json:
    /// what matters is what this server says it does).
    async fn fetch(base: &str, http: &reqwest::Client) -> Self {
        let r = http
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .expect("the spec is served");
        assert_eq!(r.status().as_u16(), 200);
        Self::new(r.json().await.expect("the spec is JSON"))
    }

    fn new(doc: Value) -> Self {
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.0")),
            "the translation below is written for OpenAPI 3.0, not {}",
            doc["openapi"]
        );
        let components = doc["components"]["schemas"]
            .as_object()
            .expect("components.schemas");
        let pieces = pieces(&doc);
        let mut defs: Map<String, Value> = components
            .iter()
            .map(|(name, s)| (name.clone(), translate(s, !pieces.contains(name))))
            .collect();
        let mut answers = HashMap::new();
        for (path, op, method) in operations(&doc) {
            for (status, response) in op["responses"].as_object().expect("responses") {
                for (media, content) in response["content"].as_object().into_iter().flatten() {
                    let name = format!("answer-{}", answers.len());
                    defs.insert(name.clone(), translate(&content["schema"], true));
                    answers.insert(
                        (method.clone(), path.clone(), status.clone(), media.clone()),
                        name,
                    );
                }
            }
        }
        let mut compiler = boon::Compiler::new();
        compiler.set_default_draft(boon::Draft::V2020_12);
        compiler
            .add_resource(SCHEMAS, json!({ "$defs": defs }))
            .expect("the translated schemas load");
        Self {
            doc,
            compiler,
            schemas: boon::Schemas::new(),
            answers,
            compiled: HashMap::new(),
            seen: BTreeMap::new(),
        }
    }

    /// Sends `c`, asserts the status the scenario expects, then checks the
    /// answer against the spec: a status the operation declares, its content
    /// type, its required headers and its body schema.
    async fn expect(&mut self, h: &Harness, c: Call, want: u16) -> Answer {
        self.send(&h.base, &h.http, c, want).await
    }

    async fn send(&mut self, base: &str, http: &reqwest::Client, c: Call, want: u16) -> Answer {
        let method = c.method.to_ascii_lowercase();
        let op = self.doc["paths"][c.template][&method].clone();
        assert!(
            op.is_object(),
            "{} {} is not an operation of the served spec",
            c.method,
            c.template
        );
        let what = format!("{} {}", c.method, c.path);
        let url = match &c.query {
            Some(q) => format!("{base}{}?{q}", c.path),
            None => format!("{base}{}", c.path),
        };
        let (status, headers, text, len) = if want == 413 {
            // The server refuses an oversized body by its Content-Length,
            // before reading it, and closes: a client still writing the body
            // may see a broken pipe instead of the answer. Sending only the
            // head makes the exchange deterministic.
            let (status, headers, text) = head_only(base, &c).await;
            let len = text.len();
            (status, headers, text, len)
        } else {
            let mut b = http.request(c.method.parse().expect("method"), url);
            if let Some(token) = &c.bearer {
                b = b.bearer_auth(token);
            }
            for (name, value) in &c.headers {
                b = b.header(*name, value);
            }
            if let Some((content_type, body)) = c.body.clone() {
                b = b.header("content-type", content_type).body(body);
            }
            let r = b.send().await.expect("the server answers");
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let bytes = r.bytes().await.expect("the body reads");
            let text = String::from_utf8_lossy(&bytes).into_owned();
            (status, headers, text, bytes.len())
        };
        assert_eq!(status, want, "{what}: {text}");
        self.seen
            .entry((c.method.to_owned(), c.template.to_owned()))
            .or_default()
            .insert(status);

        let declared = op["responses"][status.to_string()].clone();
        assert!(
            declared.is_object(),
            "{what}: {status} is not declared (declared: {:?}): {text}",
            op["responses"]
                .as_object()
                .map(|r| r.keys().collect::<Vec<_>>())
        );
        assert!(
            headers.contains_key(alarm_api::REQUEST_ID_HEADER),
            "{what}: no request id"
        );
        for (name, header) in declared["headers"].as_object().into_iter().flatten() {
            let value = headers
                .get(name.as_str())
                .map(|v| v.to_str().expect("ASCII"));
            match value {
                None => assert!(
                    header["required"] != true,
                    "{what}: the required header {name} is missing"
                ),
                Some(v) if header["schema"]["type"] == "integer" => assert!(
                    v.parse::<i128>().is_ok(),
                    "{what}: {name} is declared an integer, got {v:?}"
                ),
                Some(_) => {}
            }
        }
        let content = declared["content"].as_object().cloned().unwrap_or_default();
        // No answer to a HEAD has a body (RFC 9110): its status and headers
        // are what it declares.
        if c.method == "HEAD" {
            assert!(text.is_empty(), "{what}: a HEAD answer with a body: {text}");
            return Answer {
                body: Value::Null,
                headers,
            };
        }
        if content.is_empty() {
            assert!(text.is_empty(), "{what}: {status} declares no body: {text}");
            return Answer {
                body: Value::Null,
                headers,
            };
        }
        let got = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no content type"));
        let media = content
            .keys()
            .find(|m| normal_media(m) == normal_media(got))
            .unwrap_or_else(|| {
                panic!(
                    "{what}: {status} is {got}, declared {:?}",
                    content.keys().collect::<Vec<_>>()
                )
            })
            .clone();
        if content[&media]["schema"]["format"] == "binary" {
            // Bytes (a sound): the media type was matched; the length is
            // the one declared in Content-Length, which must be there.
            let length = headers
                .get("content-length")
                .unwrap_or_else(|| panic!("{what}: no Content-Length"));
            assert_eq!(
                length.to_str().ok().and_then(|l| l.parse::<usize>().ok()),
                Some(len),
                "{what}: Content-Length"
            );
            return Answer {
                body: Value::Null,
                headers,
            };
        }
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{what}: the body is not JSON ({e}): {text}"));
        let key = (
            method,
            c.template.to_owned(),
            status.to_string(),
            media.clone(),
        );
        let name = self.answers[&key].clone();
        let index = match self.compiled.get(&name) {
            Some(i) => *i,
            None => {
                let i = self
                    .compiler
                    .compile(&format!("{SCHEMAS}#/$defs/{name}"), &mut self.schemas)
                    .unwrap_or_else(|e| panic!("{what}: the schema of {status} compiles: {e:#}"));
                self.compiled.insert(name, i);
                i
            }
        };
        if let Err(e) = self.schemas.validate(&body, index) {
            panic!("{what}: the {status} body does not match its declared schema:\n{e}\n{body:#}");
        }
        Answer { body, headers }
    }

    /// Every operation of the spec was called, and each with the answers
    /// its shape makes possible: a success; 401 when it needs credentials;
    /// 404 when its path names a resource; 422 when it takes a JSON body,
    /// 415 when it takes another kind (a tus PATCH's bytes).
    /// What the scenario left out: each operation's missing answers.
    fn unexercised(&self) -> Vec<String> {
        let mut missing = Vec::new();
        for (path, op, method) in operations(&self.doc) {
            let key = (method.to_ascii_uppercase(), path.clone());
            let seen = self.seen.get(&key).cloned().unwrap_or_default();
            let mut want: Vec<(&str, bool)> =
                vec![("a success", seen.iter().any(|s| (200..300).contains(s)))];
            if op.get("security").is_some() {
                want.push(("401", seen.contains(&401)));
            }
            if path.contains('{') {
                want.push(("404", seen.contains(&404)));
            }
            if let Some(body) = op.get("requestBody") {
                if body["content"].get("application/json").is_some() {
                    want.push(("422", seen.contains(&422)));
                } else {
                    want.push(("415", seen.contains(&415)));
                }
            }
            for (answer, ok) in want {
                if !ok {
                    missing.push(format!("{} {path}: {answer}", key.0));
                }
            }
        }
        missing
    }

    fn assert_every_operation_exercised(&self) {
        let missing = self.unexercised();
        assert!(
            missing.is_empty(),
            "operations of the spec not exercised by this test:\n  {}",
            missing.join("\n  ")
        );
    }
}

/// Sends `c`'s request head with its body's length but not the body, over
/// a raw connection, and reads the whole answer (the server closes it).
async fn head_only(base: &str, c: &Call) -> (u16, reqwest::header::HeaderMap, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect");
    let mut head = format!(
        "{} {}{} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n",
        c.method,
        c.path,
        c.query
            .as_ref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default()
    );
    if let Some(token) = &c.bearer {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in &c.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some((content_type, body)) = &c.body {
        head.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let raw = String::from_utf8(raw).expect("utf-8 answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let mut headers = reqwest::header::HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').expect("a header line");
        headers.append(
            reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).expect("name"),
            value.trim().parse().expect("value"),
        );
    }
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, headers, body)
}

/// The payload of a chunked body.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("a chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex size");
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// `application/json; charset=utf-8` and `application/json;charset=UTF-8`
/// are the same media type.
fn normal_media(m: &str) -> String {
    m.split(';')
        .map(|p| p.trim().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(";")
}

/// (path, operation, method) of every operation in the document.
fn operations(doc: &Value) -> Vec<(String, Value, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if matches!(
                method.as_str(),
                "get" | "put" | "post" | "delete" | "patch" | "head" | "options" | "trace"
            ) {
                out.push((path.clone(), op.clone(), method.clone()));
            }
        }
    }
    out
}

/// Components that are pieces of a bigger object: a union variant is
/// `allOf: [{kind}, {$ref: Variant}]`, so `Variant` alone must accept the
/// `kind` member that the whole declares; the whole is closed instead.
fn pieces(doc: &Value) -> HashSet<String> {
    fn walk(v: &Value, out: &mut HashSet<String>) {
        match v {
            Value::Object(map) => {
                if let Some(parts) = map.get("allOf").and_then(Value::as_array)
                    && parts.iter().any(|p| p.get("properties").is_some())
                {
                    for p in parts {
                        if let Some(name) = p["$ref"].as_str().and_then(component) {
                            out.insert(name.to_owned());
                        }
                    }
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = HashSet::new();
    walk(&doc["components"], &mut out);
    out
}

fn component(reference: &str) -> Option<&str> {
    reference.strip_prefix("#/components/schemas/")
}

/// An OpenAPI 3.0 schema object as JSON Schema 2020-12.
///
/// - `$ref` points into the translated document's `$defs`; its siblings are
///   dropped, as OpenAPI 3.0 ignores them.
/// - `nullable: true` adds `null` to the type (or, without a type, allows
///   `null` beside the schema).
/// - `discriminator` and `example` are annotations; the variants' `kind`
///   enums already pick the variant.
/// - Integer formats (`uint32`, `int32`…) become the bounds they declare.
/// - Objects are closed unless `closable` is false (a piece of an `allOf`).
fn translate(schema: &Value, closable: bool) -> Value {
    let Some(map) = schema.as_object() else {
        return schema.clone();
    };
    if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
        let name = component(reference)
            .unwrap_or_else(|| panic!("a $ref outside components.schemas: {reference}"));
        return json!({ "$ref": format!("#/$defs/{name}") });
    }
    let pieces_here = map
        .get("allOf")
        .and_then(Value::as_array)
        .is_some_and(|parts| parts.iter().any(|p| p.get("properties").is_some()));
    let mut out = Map::new();
    for (key, value) in map {
        let translated = match key.as_str() {
            "nullable" | "discriminator" | "example" => continue,
            "properties" => Value::Object(
                value
                    .as_object()
                    .expect("properties")
                    .iter()
                    .map(|(name, s)| (name.clone(), translate(s, true)))
                    .collect(),
            ),
            "items" | "not" => translate(value, true),
            "additionalProperties" if value.is_object() => translate(value, true),
            "allOf" => Value::Array(
                value
                    .as_array()
                    .expect("allOf")
                    .iter()
                    .map(|s| translate(s, !pieces_here))
                    .collect(),
            ),
            "anyOf" | "oneOf" => Value::Array(
                value
                    .as_array()
                    .expect(key)
                    .iter()
                    .map(|s| translate(s, true))
                    .collect(),
            ),
            _ => value.clone(),
        };
        out.insert(key.clone(), translated);
    }
    if map.get("type").and_then(Value::as_str) == Some("integer") {
        let bounds: Option<(i64, Option<i64>)> = match map.get("format").and_then(Value::as_str) {
            Some("uint8") => Some((0, Some(u8::MAX.into()))),
            Some("uint16") => Some((0, Some(u16::MAX.into()))),
            Some("uint32") => Some((0, Some(u32::MAX.into()))),
            Some("uint64") => Some((0, None)),
            Some("int8") => Some((i8::MIN.into(), Some(i8::MAX.into()))),
            Some("int16") => Some((i16::MIN.into(), Some(i16::MAX.into()))),
            Some("int32") => Some((i32::MIN.into(), Some(i32::MAX.into()))),
            _ => None,
        };
        if let Some((min, max)) = bounds {
            out.entry("minimum").or_insert(json!(min));
            if let Some(max) = max {
                out.entry("maximum").or_insert(json!(max));
            }
        }
    }
    if closable && (map.contains_key("properties") || pieces_here) {
        out.insert("unevaluatedProperties".to_owned(), json!(false));
    }
    if map.get("nullable") == Some(&Value::Bool(true)) {
        match out.get("type").cloned() {
            Some(Value::String(t)) => {
                out.insert("type".to_owned(), json!([t, "null"]));
                if let Some(Value::Array(values)) = out.get_mut("enum") {
                    values.push(Value::Null);
                }
            }
            _ => return json!({ "anyOf": [{ "type": "null" }, Value::Object(out)] }),
        }
    }
    Value::Object(out)
}

const PASSWORD: &str = "correct horse battery staple";

fn register(body: Value) -> Call {
    call("POST", "/api/v1/auth/register").json(body)
}

fn login(email: &str, password: &str) -> Call {
    call("POST", "/api/v1/auth/login").json(json!({"email": email, "password": password}))
}

/// A daily alarm at 07:00 in São Paulo.
fn daily(name: &str) -> Value {
    json!({
        "name": name,
        "time_zone": "America/Sao_Paulo",
        "schedules": [{"kind": "daily", "time": "07:00"}],
    })
}

/// The caller-independent checks of an owner-scoped operation: without
/// credentials 401, with another user's token 404.
async fn guarded(s: &mut Spec, h: &Harness, make: impl Fn() -> Call, stranger: &str) {
    s.expect(h, make(), 401).await;
    s.expect(h, make().bearer("not-a-token"), 401).await;
    s.expect(h, make().bearer(stranger), 404).await;
}

async fn every_answer_matches_the_served_spec(h: &Harness, smtp: &crate::delivery::Smtp) {
    let mut s = Spec::fetch(&h.base, &h.http).await;

    // Operations.
    s.expect(h, call("GET", "/health/live"), 200).await;
    s.expect(h, call("GET", "/health/ready"), 200).await;
    let health = s.expect(h, call("GET", "/health"), 200).await;
    assert_eq!(health.body["checks"][0]["name"], "database");
    // The harness signs HS256: the key set is empty (HS256 keys are
    // secret), and its cache header is declared.
    let jwks = s
        .expect(h, call("GET", "/.well-known/jwks.json"), 200)
        .await;
    assert_eq!(jwks.body["keys"], json!([]));

    // Accounts: one with a locale and one without, so both shapes of
    // `UserView` are judged.
    let ana = s
        .expect(
            h,
            register(json!({
                "email": "ana@example.com",
                "password": PASSWORD,
                "display_name": "Ana",
                "time_zone": "America/Sao_Paulo",
                "country": "BR",
                "state": "SP",
            })),
            201,
        )
        .await;
    assert_eq!(
        (ana.str("country"), ana.str("state")),
        ("BR".into(), "SP".into())
    );
    let bob = s
        .expect(
            h,
            register(
                json!({"email": "bob@example.com", "password": PASSWORD, "display_name": "Bob"}),
            ),
            201,
        )
        .await;
    assert!(bob.body.get("country").is_none() && bob.body.get("state").is_none());
    s.expect(
        h,
        register(json!({"email": "ana@example.com", "password": PASSWORD, "display_name": "Ana"})),
        409,
    )
    .await;
    s.expect(
        h,
        register(json!({"email": "not an email", "password": PASSWORD, "display_name": "X"})),
        422,
    )
    .await;
    s.expect(
        h,
        call("POST", "/api/v1/auth/register").raw("application/json", "{"),
        400,
    )
    .await;
    s.expect(
        h,
        call("POST", "/api/v1/auth/register").raw("text/plain", "hello"),
        415,
    )
    .await;

    let first = s.expect(h, login("ana@example.com", PASSWORD), 200).await;
    s.expect(h, login("ana@example.com", "a wrong password"), 401)
        .await;
    s.expect(
        h,
        call("POST", "/api/v1/auth/login").json(json!({"email": "ana@example.com"})),
        422,
    )
    .await;
    let refresh =
        |token: &str| call("POST", "/api/v1/auth/refresh").json(json!({"refresh_token": token}));
    let tokens = s.expect(h, refresh(&first.str("refresh_token")), 200).await;
    s.expect(h, refresh(&first.str("refresh_token")), 401).await;
    s.expect(
        h,
        call("POST", "/api/v1/auth/refresh").json(json!({"token": "x"})),
        422,
    )
    .await;
    // The reuse above revoked that session; the refreshed tokens belong to it.
    s.expect(
        h,
        call("GET", "/api/v1/auth/me").bearer(&tokens.str("access_token")),
        401,
    )
    .await;
    let a = s
        .expect(h, login("ana@example.com", PASSWORD), 200)
        .await
        .str("access_token");
    let b = s
        .expect(h, login("bob@example.com", PASSWORD), 200)
        .await
        .str("access_token");
    let me = s
        .expect(h, call("GET", "/api/v1/auth/me").bearer(&a), 200)
        .await;
    assert_eq!(me.str("email"), "ana@example.com");
    s.expect(h, call("GET", "/api/v1/auth/me"), 401).await;

    // A webhook first, so that the alarm that rings below queues a delivery.
    let hook_body = json!({"url": "http://127.0.0.1:9/hook", "events": ["alarm.triggered"]});
    let hook = s
        .expect(
            h,
            call("POST", "/api/v1/webhooks")
                .bearer(&a)
                .json(hook_body.clone()),
            201,
        )
        .await;
    let hook_id = hook.str("id");

    // Ringing: an alarm due in a few seconds, rung by the harness's own
    // engine. (An engine told that an hour has passed would prepare the
    // ring for an instant the database's clock has not reached, and every
    // reader would rightly hide it.)
    let due = Timestamp::now()
        .round(Unit::Second)
        .expect("round")
        .checked_add(5.seconds())
        .expect("due");
    let local = due.to_zoned(alarm_domain::jiff::tz::TimeZone::UTC);
    let tea = s
        .expect(
            h,
            call("POST", "/api/v1/alarms").bearer(&a).json(json!({
                "name": "Tea",
                "time_zone": "UTC",
                "schedules": [{
                    "kind": "once",
                    "date": local.date().to_string(),
                    "time": local.time().strftime("%H:%M:%S").to_string(),
                }],
                "channels": ["in-app", "webhook"],
            })),
            201,
        )
        .await
        .str("id");
    let snooze = || call("POST", "/api/v1/alarms/{id}/snooze").id(&tea);
    let dismiss = || call("POST", "/api/v1/alarms/{id}/dismiss").id(&tea);
    s.expect(h, snooze().bearer(&a), 409).await;
    s.expect(h, dismiss().bearer(&a), 409).await;
    let empty = s
        .expect(h, call("GET", "/api/v1/ringing").bearer(&a), 200)
        .await;
    assert_eq!(empty.body["items"], json!([]));
    // Routines: one attached to Tea before it rings, so its history holds
    // a `routine_started` event for the spec to judge.
    let routines = || call("POST", "/api/v1/routines");
    let morning = json!({"name": "Morning", "actions": ["Lights on", "Coffee"]});
    let routine = s
        .expect(h, routines().bearer(&a).json(morning.clone()), 201)
        .await;
    let routine_id = routine.str("id");
    assert_eq!(routine.body["active"], json!(true));
    s.expect(
        h,
        routines()
            .bearer(&a)
            .json(json!({"name": "Twice", "actions": ["Coffee", "coffee"]})),
        422,
    )
    .await;
    s.expect(h, routines().json(morning.clone()), 401).await;
    let attach = || call("PUT", "/api/v1/alarms/{id}/routines").id(&tea);
    let attached = s
        .expect(
            h,
            attach()
                .bearer(&a)
                .json(json!({"routine_ids": [routine_id.clone()]})),
            200,
        )
        .await;
    assert_eq!(attached.body["items"][0]["id"], json!(routine_id.as_str()));
    s.expect(
        h,
        attach()
            .bearer(&a)
            .json(json!({"routine_ids": ["0190d0e0-0000-7000-8000-000000000000"]})),
        422,
    )
    .await;
    guarded(&mut s, h, || attach().json(json!({"routine_ids": []})), &b).await;
    crate::ringing::wait_ringing(
        h,
        &a,
        tokio::time::Instant::now() + std::time::Duration::from_secs(30),
    )
    .await;
    let ringing = s
        .expect(h, call("GET", "/api/v1/ringing").bearer(&a), 200)
        .await;
    assert_eq!(ringing.body["items"][0]["alarm_id"], json!(tea));
    s.expect(h, call("GET", "/api/v1/ringing"), 401).await;
    guarded(&mut s, h, snooze, &b).await;
    s.expect(h, snooze().bearer(&a).header("Idempotency-Key", "a b"), 400)
        .await;
    let snoozed = s
        .expect(h, snooze().bearer(&a).header("Idempotency-Key", "s-1"), 200)
        .await;
    assert_eq!(snoozed.body["snoozed"], true);
    s.expect(h, snooze().bearer(&a).header("Idempotency-Key", "s-1"), 200)
        .await;
    s.expect(h, snooze().bearer(&a), 409).await;
    guarded(&mut s, h, dismiss, &b).await;
    s.expect(h, dismiss().bearer(&a), 204).await;
    s.expect(h, dismiss().bearer(&a), 409).await;

    // Alarms.
    let create = || call("POST", "/api/v1/alarms");
    let wake = s
        .expect(
            h,
            create()
                .bearer(&a)
                .header("Idempotency-Key", "k-1")
                .json(daily("Wake")),
            201,
        )
        .await;
    let id = wake.str("id");
    assert!(wake.header("location").ends_with(&id));
    s.expect(
        h,
        create()
            .bearer(&a)
            .header("Idempotency-Key", "k-1")
            .json(daily("Wake")),
        201,
    )
    .await;
    s.expect(
        h,
        create()
            .bearer(&a)
            .header("Idempotency-Key", "k-1")
            .json(daily("Other")),
        422,
    )
    .await;
    s.expect(
        h,
        create()
            .bearer(&a)
            .header("Idempotency-Key", "a b")
            .json(daily("X")),
        400,
    )
    .await;
    s.expect(
        h,
        create()
            .bearer(&a)
            .json(json!({"name": "X", "time_zone": "UTC", "schedules": []})),
        422,
    )
    .await;
    s.expect(h, create().bearer(&a).raw("application/json", "{"), 400)
        .await;
    s.expect(h, create().bearer(&a).raw("text/plain", "x"), 415)
        .await;
    let huge = format!(
        r#"{{"name": "{}"}}"#,
        "x".repeat(alarm_api::body::MAX_BODY_BYTES)
    );
    s.expect(h, create().bearer(&a).raw("application/json", huge), 413)
        .await;
    s.expect(h, create().json(daily("X")), 401).await;
    // The New York alarm's preview crosses the spring-forward gap, so an
    // occurrence carries an `adjustment`.
    let ny = s
        .expect(
            h,
            create().bearer(&a).json(json!({
                "name": "NY",
                "time_zone": "America/New_York",
                "schedules": [{"kind": "daily", "time": "02:30"}],
            })),
            201,
        )
        .await
        .str("id");

    let list = || call("GET", "/api/v1/alarms");
    let page = s.expect(h, list().bearer(&a).query("limit=1"), 200).await;
    let cursor = page.str("next_cursor");
    let last = s
        .expect(
            h,
            list()
                .bearer(&a)
                .query(&format!("limit=100&cursor={cursor}")),
            200,
        )
        .await;
    assert!(last.body.get("next_cursor").is_none(), "{}", last.body);
    s.expect(h, list().bearer(&a).query("enabled=true"), 200)
        .await;
    s.expect(h, list().bearer(&a).query("limit=0"), 400).await;
    s.expect(h, list().bearer(&a).query("limit=many"), 400)
        .await;
    s.expect(h, list().bearer(&a).query("cursor=nope"), 400)
        .await;
    s.expect(h, list(), 401).await;
    // A browser page of a foreign origin is refused by the CORS layer.
    s.expect(
        h,
        list()
            .bearer(&a)
            .header("Origin", "https://evil.example.com"),
        403,
    )
    .await;

    let get = || call("GET", "/api/v1/alarms/{id}").id(&id);
    let got = s.expect(h, get().bearer(&a), 200).await;
    let etag = got.header("etag").to_owned();
    guarded(&mut s, h, get, &b).await;
    s.expect(
        h,
        call("GET", "/api/v1/alarms/{id}").id("nope").bearer(&a),
        404,
    )
    .await;

    let put = || call("PUT", "/api/v1/alarms/{id}").id(&id);
    s.expect(h, put().bearer(&a).json(daily("Wake up")), 428)
        .await;
    s.expect(
        h,
        put()
            .bearer(&a)
            .header("If-Match", "\"999\"")
            .json(daily("Wake up")),
        412,
    )
    .await;
    s.expect(
        h,
        put()
            .bearer(&a)
            .header("If-Match", &etag)
            .json(json!({"name": ""})),
        422,
    )
    .await;
    let put_ok = s
        .expect(
            h,
            put()
                .bearer(&a)
                .header("If-Match", &etag)
                .json(daily("Wake up")),
            200,
        )
        .await;
    let mut etag = put_ok.header("etag").to_owned();
    guarded(&mut s, h, || put().json(daily("Mine")), &b).await;

    for (action, template) in [
        ("disable", "/api/v1/alarms/{id}/disable"),
        ("enable", "/api/v1/alarms/{id}/enable"),
    ] {
        let switch = || call("POST", template).id(&id);
        s.expect(h, switch().bearer(&a), 428).await;
        s.expect(h, switch().bearer(&a).header("If-Match", "\"999\""), 412)
            .await;
        guarded(&mut s, h, switch, &b).await;
        let switched = s
            .expect(h, switch().bearer(&a).header("If-Match", "*"), 200)
            .await;
        etag = switched.header("etag").to_owned();
        assert_eq!(
            switched.body.get("next_fire_at").is_some(),
            action == "enable",
            "{action}: {}",
            switched.body
        );
        if action == "disable" {
            // Suppressed occurrences of a disabled alarm carry a `reason`.
            let preview = s
                .expect(
                    h,
                    call("GET", "/api/v1/alarms/{id}/occurrences")
                        .id(&id)
                        .bearer(&a)
                        .query("include_suppressed=true&limit=2"),
                    200,
                )
                .await;
            assert_eq!(preview.body["items"][0]["reason"], "disabled");
        }
    }

    let occurrences = || call("GET", "/api/v1/alarms/{id}/occurrences").id(&ny);
    let preview = s
        .expect(
            h,
            occurrences()
                .bearer(&a)
                .query("from=2027-03-13T00:00:00Z&limit=3"),
            200,
        )
        .await;
    assert_eq!(
        preview.body["items"][1]["adjustment"]["dst_gap_shift_seconds"],
        3600
    );
    s.expect(h, occurrences().bearer(&a).query("limit=0"), 400)
        .await;
    s.expect(h, occurrences().bearer(&a).query("from=yesterday"), 400)
        .await;
    s.expect(
        h,
        occurrences().bearer(&a).query("include_suppressed=maybe"),
        400,
    )
    .await;
    guarded(&mut s, h, occurrences, &b).await;

    let events = || call("GET", "/api/v1/alarms/{id}/events").id(&tea);
    let page = s.expect(h, events().bearer(&a).query("limit=1"), 200).await;
    let cursor = page.str("next_cursor");
    let rest = s
        .expect(
            h,
            events()
                .bearer(&a)
                .query(&format!("limit=100&cursor={cursor}")),
            200,
        )
        .await;
    assert!(rest.body.get("next_cursor").is_none(), "{}", rest.body);
    let started = rest.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["kind"] == "routine_started")
        .expect("the attached routine started when Tea rang");
    assert_eq!(
        started["routine"],
        json!({"routine_id": routine_id.as_str(), "name": "Morning", "actions": ["Lights on", "Coffee"]})
    );
    s.expect(h, events().bearer(&a).query("cursor=nope"), 400)
        .await;
    s.expect(h, events().bearer(&a).query("limit=0"), 400).await;
    guarded(&mut s, h, events, &b).await;

    let delete = || call("DELETE", "/api/v1/alarms/{id}").id(&id);
    s.expect(h, delete().bearer(&a), 428).await;
    s.expect(h, delete().bearer(&a).header("If-Match", "\"999\""), 412)
        .await;
    guarded(&mut s, h, delete, &b).await;
    s.expect(h, delete().bearer(&a).header("If-Match", &etag), 204)
        .await;
    s.expect(h, delete().bearer(&a).header("If-Match", "*"), 404)
        .await;

    // Webhooks.
    let hooks = || call("POST", "/api/v1/webhooks");
    s.expect(
        h,
        hooks()
            .bearer(&a)
            .json(json!({"url": "ftp://example.com/h", "events": ["alarm.triggered"]})),
        422,
    )
    .await;
    s.expect(
        h,
        hooks()
            .bearer(&a)
            .json(json!({"url": "http://127.0.0.1:9/h", "events": ["alarm.exploded"]})),
        422,
    )
    .await;
    s.expect(h, hooks().bearer(&a).raw("application/json", "[1,"), 400)
        .await;
    s.expect(h, hooks().json(hook_body.clone()), 401).await;
    let listed = s
        .expect(h, call("GET", "/api/v1/webhooks").bearer(&a), 200)
        .await;
    assert_eq!(listed.body["items"][0]["id"], json!(hook_id));
    s.expect(h, call("GET", "/api/v1/webhooks"), 401).await;

    let get = || call("GET", "/api/v1/webhooks/{id}").id(&hook_id);
    s.expect(h, get().bearer(&a), 200).await;
    guarded(&mut s, h, get, &b).await;

    let put = || call("PUT", "/api/v1/webhooks/{id}").id(&hook_id);
    let update = json!({"url": "http://127.0.0.1:9/hook", "events": ["alarm.triggered", "alarm.escalated"], "active": true});
    s.expect(h, put().bearer(&a).json(update.clone()), 200)
        .await;
    s.expect(
        h,
        put()
            .bearer(&a)
            .json(json!({"url": "http://127.0.0.1:9/hook"})),
        422,
    )
    .await;
    guarded(&mut s, h, || put().json(update.clone()), &b).await;

    let rotate = || call("POST", "/api/v1/webhooks/{id}/rotate-secret").id(&hook_id);
    let rotated = s.expect(h, rotate().bearer(&a), 200).await;
    assert!(rotated.str("secret").starts_with("whsec_"));
    guarded(&mut s, h, rotate, &b).await;

    let test = || call("POST", "/api/v1/webhooks/{id}/test").id(&hook_id);
    let ping = s.expect(h, test().bearer(&a), 202).await;
    let ping_id = ping.str("id");
    assert!(ping.body.get("alarm_id").is_none(), "{}", ping.body);
    guarded(&mut s, h, test, &b).await;

    let deliveries = || call("GET", "/api/v1/webhooks/{id}/deliveries").id(&hook_id);
    let all = s.expect(h, deliveries().bearer(&a), 200).await;
    // The ring queued an `alarm.triggered` message beside the ping, so both
    // shapes of a delivery (with and without an alarm) are judged.
    let events: Vec<&str> = all.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|d| d["event"].as_str().unwrap_or(""))
        .collect();
    // Newest first: the ring came before the ping.
    assert_eq!(events, ["webhook.test", "alarm.triggered"], "{}", all.body);
    assert_eq!(all.body["items"][1]["alarm_id"], json!(tea));
    let page = s
        .expect(h, deliveries().bearer(&a).query("limit=1"), 200)
        .await;
    let before = page.str("next_before");
    let older = s
        .expect(
            h,
            deliveries().bearer(&a).query(&format!("before={before}")),
            200,
        )
        .await;
    assert!(older.body.get("next_before").is_none(), "{}", older.body);
    s.expect(h, deliveries().bearer(&a).query("limit=0"), 400)
        .await;
    s.expect(h, deliveries().bearer(&a).query("before=nope"), 400)
        .await;
    guarded(&mut s, h, deliveries, &b).await;

    let retry = |delivery: &str| {
        call(
            "POST",
            "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry",
        )
        .id(&hook_id)
        .param("delivery_id", delivery)
    };
    s.expect(h, retry(&ping_id).bearer(&a), 409).await;
    guarded(&mut s, h, || retry(&ping_id), &b).await;
    s.expect(h, retry(&uuid::Uuid::now_v7().to_string()).bearer(&a), 404)
        .await;
    // No sender runs in the harness: the store plays one that gives up.
    let ports = h.ports();
    let now = Timestamp::now();
    let claimed = ports
        .outbox
        .claim(
            now,
            now + alarm_domain::jiff::SignedDuration::from_secs(30),
            10,
        )
        .await
        .expect("claim");
    assert!(
        claimed
            .iter()
            .any(|c| c.item.message.to_string() == ping_id),
        "the ping is due"
    );
    let dead = claimed
        .iter()
        .map(|c| {
            (
                c.clone(),
                SendResult::Dead {
                    code: Some(500),
                    error: "HTTP 500".to_owned(),
                    latency_ms: 12,
                },
            )
        })
        .collect();
    ports.outbox.finish(now, dead, 5).await.expect("finish");
    s.expect(h, deliveries().bearer(&a), 200).await;
    s.expect(h, retry(&ping_id).bearer(&a), 202).await;

    let types = || call("GET", "/api/v1/webhooks/event-types");
    let catalogue = s.expect(h, types().bearer(&a), 200).await;
    assert_eq!(
        catalogue.body["items"].as_array().map(Vec::len),
        Some(10),
        "every event type"
    );
    s.expect(h, types(), 401).await;
    let delete = || call("DELETE", "/api/v1/webhooks/{id}").id(&hook_id);
    guarded(&mut s, h, delete, &b).await;
    s.expect(h, delete().bearer(&a), 204).await;

    // Exception periods.
    let periods = || call("POST", "/api/v1/exception-periods");
    let period =
        json!({"name": "Lisbon", "type": "vacation", "start": "2026-07-01", "end": "2026-07-14"});
    let created = s
        .expect(h, periods().bearer(&a).json(period.clone()), 201)
        .await;
    let period_id = created.str("id");
    assert_eq!(created.body["type"], json!("vacation"));
    s.expect(
        h,
        periods().bearer(&a).json(
            json!({"name": "x", "type": "sabbatical", "start": "2026-07-01", "end": "2026-07-02"}),
        ),
        422,
    )
    .await;
    s.expect(h, periods().json(period.clone()), 401).await;
    let list = || call("GET", "/api/v1/exception-periods");
    let listed = s.expect(h, list().bearer(&a), 200).await;
    assert_eq!(listed.body["items"][0]["id"], json!(period_id));
    s.expect(h, list(), 401).await;
    let get_period = || call("GET", "/api/v1/exception-periods/{id}").id(&period_id);
    s.expect(h, get_period().bearer(&a), 200).await;
    guarded(&mut s, h, get_period, &b).await;
    let put_period = || call("PUT", "/api/v1/exception-periods/{id}").id(&period_id);
    s.expect(h, put_period().bearer(&a).json(period.clone()), 200)
        .await;
    s.expect(
        h,
        put_period()
            .bearer(&a)
            .json(json!({"name": "Lisbon", "type": "vacation", "start": "2026-07-14", "end": "2026-07-01"})),
        422,
    )
    .await;
    guarded(&mut s, h, || put_period().json(period.clone()), &b).await;
    let delete_period = || call("DELETE", "/api/v1/exception-periods/{id}").id(&period_id);
    guarded(&mut s, h, delete_period, &b).await;
    s.expect(h, delete_period().bearer(&a), 204).await;

    // Holidays: the list for everyone, writes for administrators.
    let root = h.account(crate::support::ADMIN).await.access;
    let list_days = || call("GET", "/api/v1/holidays");
    s.expect(h, list_days(), 401).await;
    let days = s
        .expect(
            h,
            list_days()
                .bearer(&a)
                .query("year=2026&country=BR&state=SP"),
            200,
        )
        .await;
    assert!(days.body["items"].as_array().is_some_and(|d| d.len() > 10));
    s.expect(h, list_days().bearer(&a).query("year=1066&country=BR"), 400)
        .await;
    let add = || call("POST", "/api/v1/holidays");
    let custom = json!({"name": "Festa", "month": 6, "day": 24, "country": "BR", "state": "SP", "optional": true});
    let added = s
        .expect(h, add().bearer(&root).json(custom.clone()), 201)
        .await;
    let holiday = added.str("id");
    s.expect(h, add().bearer(&a).json(custom.clone()), 403)
        .await;
    s.expect(
        h,
        add()
            .bearer(&root)
            .json(json!({"name": "Festa", "country": "BR"})),
        422,
    )
    .await;
    s.expect(h, add().json(custom.clone()), 401).await;
    let put_day = || call("PUT", "/api/v1/holidays/{id}").id(&holiday);
    s.expect(h, put_day().bearer(&root).json(custom.clone()), 200)
        .await;
    s.expect(
        h,
        put_day()
            .bearer(&root)
            .json(json!({"name": "", "month": 6, "day": 24, "country": "BR"})),
        422,
    )
    .await;
    s.expect(
        h,
        call("PUT", "/api/v1/holidays/{id}")
            .id("0190d0e0-0000-7000-8000-000000000000")
            .bearer(&root)
            .json(custom.clone()),
        404,
    )
    .await;
    s.expect(h, put_day().json(custom.clone()), 401).await;
    let delete_day = || call("DELETE", "/api/v1/holidays/{id}").id(&holiday);
    s.expect(h, delete_day().bearer(&a), 403).await;
    s.expect(h, delete_day().bearer(&root), 204).await;
    s.expect(h, delete_day().bearer(&root), 404).await;
    s.expect(h, delete_day(), 401).await;

    // Holiday preferences.
    let prefs = || call("GET", "/api/v1/holiday-preferences");
    s.expect(h, prefs().bearer(&a), 200).await;
    s.expect(h, prefs(), 401).await;
    let put_prefs = || call("PUT", "/api/v1/holiday-preferences");
    let delay = json!({"default": {"action": "delay", "minutes": 30}});
    let set = s
        .expect(h, put_prefs().bearer(&a).json(delay.clone()), 200)
        .await;
    assert_eq!(set.body["default"]["minutes"], json!(30));
    s.expect(
        h,
        put_prefs()
            .bearer(&a)
            .json(json!({"default": {"action": "nap"}})),
        422,
    )
    .await;
    s.expect(h, put_prefs().json(delay), 401).await;
    let reset = || call("DELETE", "/api/v1/holiday-preferences");
    s.expect(h, reset().bearer(&a), 204).await;
    s.expect(h, reset(), 401).await;

    // Routines: the rest of their operations.
    let list_routines = || call("GET", "/api/v1/routines");
    let mine = s.expect(h, list_routines().bearer(&a), 200).await;
    assert_eq!(mine.body["items"][0]["id"], json!(routine_id.as_str()));
    s.expect(h, list_routines(), 401).await;
    let get_routine = || call("GET", "/api/v1/routines/{id}").id(&routine_id);
    s.expect(h, get_routine().bearer(&a), 200).await;
    guarded(&mut s, h, get_routine, &b).await;
    let put_routine = || call("PUT", "/api/v1/routines/{id}").id(&routine_id);
    let paused = json!({"name": "Morning", "actions": ["Lights on"], "active": false});
    let replaced = s
        .expect(h, put_routine().bearer(&a).json(paused.clone()), 200)
        .await;
    assert_eq!(replaced.body["active"], json!(false));
    s.expect(
        h,
        put_routine()
            .bearer(&a)
            .json(json!({"name": "Morning", "actions": []})),
        422,
    )
    .await;
    guarded(&mut s, h, || put_routine().json(paused.clone()), &b).await;
    let of_tea = || call("GET", "/api/v1/alarms/{id}/routines").id(&tea);
    let listed = s.expect(h, of_tea().bearer(&a), 200).await;
    assert_eq!(listed.body["items"][0]["actions"], json!(["Lights on"]));
    guarded(&mut s, h, of_tea, &b).await;
    let delete_routine = || call("DELETE", "/api/v1/routines/{id}").id(&routine_id);
    guarded(&mut s, h, delete_routine, &b).await;
    s.expect(h, delete_routine().bearer(&a), 204).await;
    let detached = s.expect(h, of_tea().bearer(&a), 200).await;
    assert_eq!(detached.body["items"], json!([]), "deleting detaches");

    // API keys: issued (shown once), used on the webhooks within their
    // scope, listed, rotated, deleted.
    let keys = || call("POST", "/api/v1/api-keys");
    let reader = json!({"name": "CI", "scopes": ["webhooks:read"]});
    let made = s
        .expect(h, keys().bearer(&a).json(reader.clone()), 201)
        .await;
    let key_id = made.str("id");
    let key_text = made.str("api_key");
    assert!(key_text.starts_with(made.str("prefix").as_str()));
    s.expect(
        h,
        keys()
            .bearer(&a)
            .json(json!({"name": "CI", "scopes": ["alarms:write"]})),
        422,
    )
    .await;
    s.expect(h, keys().json(reader), 401).await;
    let by_key = s
        .expect(
            h,
            call("GET", "/api/v1/webhooks").header("x-api-key", &key_text),
            200,
        )
        .await;
    assert!(by_key.body["items"].is_array(), "{}", by_key.body);
    s.expect(
        h,
        call("POST", "/api/v1/webhooks")
            .header("x-api-key", &key_text)
            .json(hook_body.clone()),
        403,
    )
    .await;
    let list_keys = || call("GET", "/api/v1/api-keys");
    let listed = s.expect(h, list_keys().bearer(&a), 200).await;
    assert_eq!(listed.body["items"][0]["id"], json!(key_id.as_str()));
    assert!(
        listed.body["items"][0].get("api_key").is_none(),
        "never shown again"
    );
    s.expect(h, list_keys(), 401).await;
    let rotate = || call("POST", "/api/v1/api-keys/{id}/rotate").id(&key_id);
    s.expect(
        h,
        rotate().bearer(&a).json(json!({"overlap_seconds": -1})),
        422,
    )
    .await;
    guarded(&mut s, h, || rotate().json(json!({})), &b).await;
    let rotated = s
        .expect(
            h,
            rotate().bearer(&a).json(json!({"overlap_seconds": 0})),
            201,
        )
        .await;
    s.expect(
        h,
        call("GET", "/api/v1/webhooks").header("x-api-key", &key_text),
        401,
    )
    .await;
    let delete_key = || call("DELETE", "/api/v1/api-keys/{id}").id(&rotated.str("id"));
    guarded(&mut s, h, delete_key, &b).await;
    s.expect(h, delete_key().bearer(&a), 204).await;

    // Uploads (tus 1.0) and the sounds they become.
    s.expect(h, call("OPTIONS", "/api/v1/uploads"), 204).await;
    let sound_bytes = crate::sounds::ogg(3000);
    let metadata = format!(
        "filename {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "bell.ogg")
    );
    let begin = || {
        call("POST", "/api/v1/uploads")
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", &sound_bytes.len().to_string())
            .header("Upload-Metadata", &metadata)
    };
    s.expect(h, begin(), 401).await;
    s.expect(
        h,
        call("POST", "/api/v1/uploads")
            .bearer(&a)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", "10"),
        422,
    )
    .await;
    s.expect(
        h,
        call("POST", "/api/v1/uploads")
            .bearer(&a)
            .header("Tus-Resumable", "0.2.2")
            .header("Upload-Length", "10")
            .header("Upload-Metadata", &metadata),
        412,
    )
    .await;
    let created = s.expect(h, begin().bearer(&a), 201).await;
    let upload = created
        .header("location")
        .rsplit('/')
        .next()
        .expect("id")
        .to_owned();
    let tus = |method: &'static str| {
        call(method, "/api/v1/uploads/{id}")
            .id(&upload)
            .header("Tus-Resumable", "1.0.0")
    };
    guarded(&mut s, h, || tus("HEAD"), &b).await;
    let at = s.expect(h, tus("HEAD").bearer(&a), 200).await;
    assert_eq!(at.header("upload-offset"), "0");
    let send = |offset: usize, bytes: &[u8]| {
        tus("PATCH")
            .header("Upload-Offset", &offset.to_string())
            .raw("application/offset+octet-stream", bytes.to_vec())
    };
    guarded(&mut s, h, || send(0, &sound_bytes[..10]), &b).await;
    s.expect(
        h,
        tus("PATCH")
            .bearer(&a)
            .header("Upload-Offset", "0")
            .raw("application/octet-stream", sound_bytes[..10].to_vec()),
        415,
    )
    .await;
    s.expect(h, send(7, &sound_bytes[7..10]).bearer(&a), 409)
        .await;
    s.expect(
        h,
        send(0, &sound_bytes[..10]).bearer(&a).header(
            "Upload-Checksum",
            &format!(
                "sha256 {}",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [0u8; 32])
            ),
        ),
        460,
    )
    .await;
    s.expect(h, send(0, &sound_bytes[..1000]).bearer(&a), 204)
        .await;
    let done = s
        .expect(h, send(1000, &sound_bytes[1000..]).bearer(&a), 204)
        .await;
    assert_eq!(done.header("upload-offset"), sound_bytes.len().to_string());
    let cancel = s.expect(h, begin().bearer(&a), 201).await;
    let cancelled = cancel
        .header("location")
        .rsplit('/')
        .next()
        .expect("id")
        .to_owned();
    let terminate = || {
        call("DELETE", "/api/v1/uploads/{id}")
            .id(&cancelled)
            .header("Tus-Resumable", "1.0.0")
    };
    guarded(&mut s, h, terminate, &b).await;
    s.expect(h, terminate().bearer(&a), 204).await;

    let sounds = s
        .expect(h, call("GET", "/api/v1/sounds").bearer(&a), 200)
        .await;
    assert_eq!(sounds.body["items"][0]["id"], json!(upload.as_str()));
    s.expect(h, call("GET", "/api/v1/sounds"), 401).await;
    let sound = || call("GET", "/api/v1/sounds/{id}").id(&upload);
    guarded(&mut s, h, sound, &b).await;
    s.expect(h, sound().bearer(&a), 200).await;
    let bytes = || call("GET", "/api/v1/sounds/{id}/content").id(&upload);
    guarded(&mut s, h, bytes, &b).await;
    let whole = s.expect(h, bytes().bearer(&a), 200).await;
    let tag = whole.header("etag").to_owned();
    s.expect(h, bytes().bearer(&a).header("Range", "bytes=0-9"), 206)
        .await;
    s.expect(h, bytes().bearer(&a).header("Range", "bytes=5000-"), 416)
        .await;
    s.expect(h, bytes().bearer(&a).header("If-None-Match", &tag), 304)
        .await;
    // The signed link a CDN fetches: no credentials.
    let link = sounds.body["items"][0]["link"]
        .as_str()
        .expect("link")
        .to_owned();
    let (link_path, link_query) = link
        .strip_prefix(crate::support::CDN)
        .and_then(|l| l.split_once('?'))
        .expect("a link under the CDN");
    let owner = link_path.split('/').nth(4).expect("owner").to_owned();
    let by_link = |owner: &str| {
        call("GET", "/api/v1/sound-links/{owner}/{id}")
            .param("owner", owner)
            .id(&upload)
            .query(link_query)
    };
    s.expect(h, by_link(&owner), 200).await;
    s.expect(h, by_link("someone"), 404).await;
    s.expect(
        h,
        by_link(&owner).query(&link_query.replace("signature=", "signature=x")),
        403,
    )
    .await;
    let drop_sound = || call("DELETE", "/api/v1/sounds/{id}").id(&upload);
    guarded(&mut s, h, drop_sound, &b).await;
    s.expect(h, drop_sound().bearer(&a), 204).await;

    // The caller's profile.
    let patch_me = || call("PATCH", "/api/v1/auth/me");
    let renamed = s
        .expect(
            h,
            patch_me()
                .bearer(&a)
                .json(json!({"display_name": "Ana L."})),
            200,
        )
        .await;
    assert_eq!(renamed.body["display_name"], json!("Ana L."));
    s.expect(
        h,
        patch_me()
            .bearer(&a)
            .json(json!({"time_zone": "Mars/Olympus"})),
        422,
    )
    .await;
    s.expect(h, patch_me().json(json!({"display_name": "x"})), 401)
        .await;

    // Password guessing ends in 429 with `Retry-After`. The budget is a
    // fixed window aligned to the epoch: the guesses and the refused login
    // must fall in one window, so a run close to a window's end waits for
    // the next one (at most 30 s; seen in CI: the last login fell 2 s into
    // a new window and was let in).
    let rate = alarm_api::limiter::RateLimits::default().login_per_pair;
    let into = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        % rate.period_secs;
    let left = rate.period_secs - into;
    if left < 30 {
        tokio::time::sleep(std::time::Duration::from_secs(left + 1)).await;
    }
    for _ in 0..rate.limit {
        s.expect(h, login("bob@example.com", "a wrong password"), 401)
            .await;
    }
    let throttled = s.expect(h, login("bob@example.com", PASSWORD), 429).await;
    assert!(throttled.header("retry-after").parse::<u64>().is_ok());

    // Password change: 401 without a token, 422 for a short new password,
    // 403 for a wrong current one, 204; then logout everywhere.
    let password = || call("POST", "/api/v1/auth/password");
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    s.expect(
        h,
        password().json(change(PASSWORD, "a brand new passphrase")),
        401,
    )
    .await;
    s.expect(
        h,
        password().bearer(&a).json(change(PASSWORD, "short")),
        422,
    )
    .await;
    s.expect(
        h,
        password()
            .bearer(&a)
            .json(change("not the password at all", "a brand new passphrase")),
        403,
    )
    .await;
    s.expect(
        h,
        password()
            .bearer(&a)
            .json(change(PASSWORD, "a brand new passphrase")),
        204,
    )
    .await;
    s.expect(
        h,
        password()
            .bearer(&a)
            .json(change("a brand new passphrase", PASSWORD)),
        204,
    )
    .await;
    let everywhere = || call("POST", "/api/v1/auth/logout-all");
    s.expect(h, everywhere(), 401).await;
    let elsewhere = s
        .expect(h, login("ana@example.com", PASSWORD), 200)
        .await
        .str("access_token");
    s.expect(h, everywhere().bearer(&elsewhere), 204).await;
    s.expect(h, call("GET", "/api/v1/auth/me").bearer(&elsewhere), 401)
        .await;
    let a = s
        .expect(h, login("ana@example.com", PASSWORD), 200)
        .await
        .str("access_token");

    let logout = || call("POST", "/api/v1/auth/logout");
    s.expect(h, logout(), 401).await;
    s.expect(h, logout().bearer(&a), 204).await;
    s.expect(h, call("GET", "/api/v1/auth/me").bearer(&a), 401)
        .await;

    // Account deletion: 401 without a token, 422 for a member it does not
    // take, 403 for a wrong password, 204 without one (the session logged
    // in just now); the account is then gone.
    let a = s
        .expect(h, login("ana@example.com", PASSWORD), 200)
        .await
        .str("access_token");
    let delete = || call("DELETE", "/api/v1/auth/me");
    s.expect(h, delete().json(json!({"password": PASSWORD})), 401)
        .await;
    s.expect(
        h,
        delete().bearer(&a).json(json!({"passwd": PASSWORD})),
        422,
    )
    .await;
    s.expect(
        h,
        delete()
            .bearer(&a)
            .json(json!({"password": "not the password at all"})),
        403,
    )
    .await;
    s.expect(h, delete().bearer(&a).json(json!({})), 204).await;
    s.expect(h, call("GET", "/api/v1/auth/me").bearer(&a), 401)
        .await;

    // Password reset: 422 for an address that is not one, 202 (a link is
    // mailed to bob), 422 for a token that is not one, 204 with the link's.
    let reset = || call("POST", "/api/v1/auth/password-reset");
    s.expect(h, reset().json(json!({"email": "not an address"})), 422)
        .await;
    s.expect(h, reset().json(json!({"email": "bob@example.com"})), 202)
        .await;
    let token = crate::resets::wait_for(smtp, 1)
        .await
        .pop()
        .expect("a reset link");
    let confirm = || call("POST", "/api/v1/auth/password-reset/confirm");
    s.expect(
        h,
        confirm().json(json!({"token": "not-a-token", "new_password": "a brand new passphrase"})),
        422,
    )
    .await;
    s.expect(
        h,
        confirm().json(json!({"token": token, "new_password": "a brand new passphrase"})),
        204,
    )
    .await;

    // Address verification: 422 for a token that is not one, 204 with the
    // link mailed at bob's registration; a new link on request (401
    // without a token, 202), and 409 once the address is verified.
    let verify = || call("POST", "/api/v1/auth/verify");
    s.expect(h, verify().json(json!({"token": "not-a-token"})), 422)
        .await;
    let link = crate::verification::link_for(smtp, "bob@example.com").await;
    s.expect(h, verify().json(json!({"token": link})), 204)
        .await;
    s.expect(
        h,
        register(
            json!({"email": "carol@example.com", "password": PASSWORD, "display_name": "Carol"}),
        ),
        201,
    )
    .await;
    let carol = s
        .expect(h, login("carol@example.com", PASSWORD), 200)
        .await
        .str("access_token");
    let resend = || call("POST", "/api/v1/auth/verify/resend");
    s.expect(h, resend(), 401).await;
    s.expect(h, resend().bearer(&carol), 202).await;
    alarm_domain::services::UserService::new(h.ports(), Vec::new())
        .verify_by_operator(
            &alarm_domain::model::Email::parse("carol@example.com").expect("email"),
            "test",
        )
        .await
        .expect("verify");
    s.expect(h, resend().bearer(&carol), 409).await;

    s.assert_every_operation_exercised();
}

/// A failing dependency: `/health/ready` and `/health` answer 503, with the
/// body their spec declares for it.
async fn unavailable_answers_match_the_served_spec() {
    let checks: Vec<Arc<dyn alarm_api::HealthCheck>> = vec![Arc::new(crate::support::Fails)];
    let server =
        crate::support::serve_in_memory(checks, alarm_domain::jiff::SignedDuration::from_secs(1))
            .await;
    let http = reqwest::Client::new();
    let base = server.base_url();
    let mut s = Spec::fetch(&base, &http).await;
    for path in ["/health/ready", "/health"] {
        let r = s.send(&base, &http, call("GET", path), 503).await;
        assert_eq!(r.body["checks"][0]["status"], "failed");
    }
    server.stop().await.expect("stop");
}

/// Whether `body` conforms to the component schema `name` of the crate's
/// spec, translated as above (so a member the spec does not declare is a
/// mismatch): what other suites use to hold bodies that are not answers
/// (webhooks) to the published schemas.
pub(crate) fn conforms(name: &str, body: &Value) -> Result<(), String> {
    let mut s = Spec::new(serde_json::from_str(&alarm_api::openapi_json()).expect("json"));
    let index = s
        .compiler
        .compile(&format!("{SCHEMAS}#/$defs/{name}"), &mut s.schemas)
        .map_err(|e| format!("{name} does not compile: {e}"))?;
    s.schemas
        .validate(body, index)
        .map_err(|e| format!("{body} is not a {name}: {e}"))
}

/// The checker's own machinery, on the crate's spec without a server: a
/// checker that lets a mismatch through would make the scenario above
/// prove nothing.
pub(crate) mod machinery {
    use super::*;

    fn spec() -> Spec {
        Spec::new(serde_json::from_str(&alarm_api::openapi_json()).expect("json"))
    }

    fn valid(s: &mut Spec, schema: &str, body: Value) -> bool {
        let index = s
            .compiler
            .compile(&format!("{SCHEMAS}#/$defs/{schema}"), &mut s.schemas)
            .expect("compiles");
        s.schemas.validate(&body, index).is_ok()
    }

    pub(crate) fn undeclared_null_and_out_of_range_members_are_refused() {
        let mut s = spec();
        let page = json!({"items": [], "next_cursor": "0190"});
        assert!(valid(&mut s, "AlarmPage", page));
        assert!(valid(&mut s, "AlarmPage", json!({"items": []})));
        assert!(!valid(
            &mut s,
            "AlarmPage",
            json!({"items": [], "next_cursor": null})
        ));
        assert!(!valid(
            &mut s,
            "AlarmPage",
            json!({"items": [], "cursor": "0190"})
        ));
        let field = json!({"field": "name", "reason": "too long"});
        assert!(valid(&mut s, "FieldError", field.clone()));
        let mut extra = field;
        extra["hint"] = json!("shorter");
        assert!(!valid(&mut s, "FieldError", extra));
        let view = |snoozes: i64| {
            json!({
                "alarm_id": "a", "alarm_name": "n", "occurrence_at": "t", "local_time": "l",
                "ringing_since": "t", "snoozes": snoozes, "max_snoozes": 3,
                "escalation_level": 0, "snoozed": false,
            })
        };
        assert!(valid(&mut s, "RingingView", view(1)));
        assert!(
            !valid(&mut s, "RingingView", view(-1)),
            "uint8 is at least 0"
        );
        assert!(
            !valid(&mut s, "RingingView", view(256)),
            "uint8 is at most 255"
        );
    }

    pub(crate) fn a_union_variant_takes_its_kind_and_nothing_else() {
        let mut s = spec();
        let daily = json!({"kind": "daily", "time": "07:00"});
        assert!(valid(&mut s, "ScheduleDto", daily.clone()));
        let mut extra = daily;
        extra["days"] = json!(["mon"]);
        assert!(!valid(&mut s, "ScheduleDto", extra));
        assert!(!valid(
            &mut s,
            "ScheduleDto",
            json!({"kind": "hourly", "time": "07:00"})
        ));
    }

    pub(crate) fn nullable_becomes_a_type_union() {
        let string = json!({"type": "string", "nullable": true, "enum": ["a"]});
        assert_eq!(
            translate(&string, true),
            json!({"type": ["string", "null"], "enum": ["a", null]})
        );
        let reference = json!({"nullable": true, "allOf": [{"$ref": "#/components/schemas/X"}]});
        assert_eq!(
            translate(&reference, true),
            json!({"anyOf": [{"type": "null"}, {"allOf": [{"$ref": "#/$defs/X"}]}]})
        );
    }

    pub(crate) fn an_operation_left_out_fails_the_scenario() {
        let mut s = spec();
        let all = operations(&s.doc);
        let (path, _, method) = all[0].clone();
        s.seen.insert(
            (method.to_ascii_uppercase(), path.clone()),
            [200, 401, 404, 422].into(),
        );
        let missing = s.unexercised();
        let named = |m: &str, (path, _, method): &(String, Value, String)| {
            m.starts_with(&format!("{} {path}: ", method.to_ascii_uppercase()))
        };
        for op in &all[1..] {
            assert!(
                missing.iter().any(|m| named(m, op)),
                "{} {} is reported as left out: {missing:?}",
                op.2,
                op.0
            );
        }
        assert!(
            !missing.iter().any(|m| named(m, &all[0])),
            "the answered operation is not reported: {missing:?}"
        );
    }
}

crate::trials! {
    mail: [every_answer_matches_the_served_spec],
    tokio: [unavailable_answers_match_the_served_spec],
    sync: [machinery::undeclared_null_and_out_of_range_members_are_refused, machinery::a_union_variant_takes_its_kind_and_nothing_else, machinery::nullable_becomes_a_type_union, machinery::an_operation_left_out_fails_the_scenario],
}
