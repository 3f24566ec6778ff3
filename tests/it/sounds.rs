//! Sounds over HTTP on both databases: a tus 1.0 upload (capabilities, creation, offsets, checksums, resume after a cut-off body) becomes the owner's sound, streamed back with ranges and ETags; alarms name sounds, which then cannot be deleted; non-audio is refused; quotas hold; a real tus client (tuspy) uploads through the API.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::{Harness, Limits};

const TUS: &str = "1.0.0";
const MIB: usize = 1024 * 1024;

/// An Ogg file of `n` bytes: the signature, then a pattern.
pub(crate) fn ogg(n: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..n).map(|i| (i * 13 % 251) as u8).collect();
    bytes[..4].copy_from_slice(b"OggS");
    bytes
}

fn meta(name: &str, kind: &str) -> String {
    format!(
        "filename {},filetype {}",
        STANDARD.encode(name),
        STANDARD.encode(kind)
    )
}

/// Creates an upload of `length` bytes; its path.
async fn create(h: &Harness, token: &str, length: usize, name: &str) -> String {
    let r = h
        .req("POST", "/api/v1/uploads")
        .bearer(token)
        .header("Tus-Resumable", TUS)
        .header("Upload-Length", &length.to_string())
        .header("Upload-Metadata", &meta(name, "audio/ogg"))
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.header("upload-offset"), Some("0"));
    assert_eq!(r.header("tus-resumable"), Some(TUS));
    assert!(
        r.header("upload-expires")
            .is_some_and(|e| e.ends_with(" GMT"))
    );
    r.header("location").expect("location").to_owned()
}

async fn patch(
    h: &Harness,
    token: &str,
    path: &str,
    offset: usize,
    bytes: &[u8],
) -> crate::support::Resp {
    h.req("PATCH", path)
        .bearer(token)
        .header("Tus-Resumable", TUS)
        .header("Upload-Offset", &offset.to_string())
        .raw("application/offset+octet-stream", bytes.to_vec())
        .send()
        .await
}

async fn offset(h: &Harness, token: &str, path: &str) -> (u16, Option<u64>) {
    let r = h
        .req("HEAD", path)
        .bearer(token)
        .header("Tus-Resumable", TUS)
        .send()
        .await;
    (
        r.status,
        r.header("upload-offset").and_then(|o| o.parse().ok()),
    )
}

/// The sound's bytes (GET …/content), with extra request headers.
async fn content(
    h: &Harness,
    token: &str,
    id: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = h
        .http
        .get(format!("{}/api/v1/sounds/{id}/content", h.base))
        .bearer_auth(token);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let r = req.send().await.expect("answer");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.bytes().await.expect("body").to_vec())
}

fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

async fn a_tus_upload_becomes_a_sound_streamed_back_with_ranges(h: &Harness) {
    let ana = h.account("ana@example.com").await.access;
    let bob = h.account("bob@example.com").await.access;
    let caps = h.req("OPTIONS", "/api/v1/uploads").send().await;
    assert_eq!(caps.status, 204);
    assert_eq!(caps.header("tus-version"), Some(TUS));
    assert_eq!(caps.header("tus-max-size"), Some("104857600"));
    assert_eq!(caps.header("tus-checksum-algorithm"), Some("sha1,sha256"));
    assert!(
        caps.header("tus-extension")
            .is_some_and(|e| e.contains("creation") && e.contains("termination"))
    );

    let r = h
        .req("POST", "/api/v1/uploads")
        .bearer(&ana)
        .header("Upload-Length", "10")
        .header("Upload-Metadata", &meta("a.ogg", "audio/ogg"))
        .send()
        .await;
    r.problem(412, "precondition-failed");
    assert_eq!(r.header("tus-version"), Some(TUS));
    h.req("POST", "/api/v1/uploads")
        .bearer(&ana)
        .header("Tus-Resumable", TUS)
        .header("Upload-Length", "104857601")
        .header("Upload-Metadata", &meta("a.ogg", "audio/ogg"))
        .send()
        .await
        .problem(413, "payload-too-large");
    let r = h
        .req("POST", "/api/v1/uploads")
        .bearer(&ana)
        .header("Tus-Resumable", TUS)
        .header("Upload-Length", "10")
        .send()
        .await;
    r.problem(422, "validation");
    assert_eq!(r.field(), "filename");
    h.req("POST", "/api/v1/uploads")
        .header("Tus-Resumable", TUS)
        .header("Upload-Length", "10")
        .send()
        .await
        .problem(401, "unauthorized");

    let data = ogg(6 * MIB + 777);
    let path = create(h, &ana, data.len(), "dawn chorus.ogg").await;
    let id = path.rsplit('/').next().expect("id").to_owned();
    assert_eq!(offset(h, &ana, &path).await, (200, Some(0)));
    assert_eq!(offset(h, &bob, &path).await.0, 404, "another user's upload");
    h.req("PATCH", &path)
        .bearer(&ana)
        .header("Tus-Resumable", TUS)
        .header("Upload-Offset", "0")
        .raw("application/octet-stream", data[..10].to_vec())
        .send()
        .await
        .problem(415, "unsupported-media-type");
    patch(h, &ana, &path, 5, &data[5..10])
        .await
        .problem(409, "conflict");
    patch(h, &bob, &path, 0, &data[..10])
        .await
        .problem(404, "not-found");

    // A first PATCH of 2 MiB + 3 (a tail only), a wrong checksum that keeps
    // nothing, then the rest with its right checksum.
    let first = 2 * MIB + 3;
    let r = patch(h, &ana, &path, 0, &data[..first]).await;
    assert_eq!(
        (r.status, r.header("upload-offset")),
        (204, Some(&*first.to_string())),
        "{}",
        r.body
    );
    let wrong = h
        .req("PATCH", &path)
        .bearer(&ana)
        .header("Tus-Resumable", TUS)
        .header("Upload-Offset", &first.to_string())
        .header(
            "Upload-Checksum",
            &format!("sha256 {}", STANDARD.encode([0u8; 32])),
        )
        .raw("application/offset+octet-stream", data[first..].to_vec())
        .send()
        .await;
    wrong.problem(460, "checksum-mismatch");
    assert_eq!(
        offset(h, &ana, &path).await,
        (200, Some(first as u64)),
        "nothing of it kept"
    );
    let r = h
        .req("PATCH", &path)
        .bearer(&ana)
        .header("Tus-Resumable", TUS)
        .header("Upload-Offset", &first.to_string())
        .header(
            "Upload-Checksum",
            &format!("sha256 {}", STANDARD.encode(sha(&data[first..]))),
        )
        .raw("application/offset+octet-stream", data[first..].to_vec())
        .send()
        .await;
    assert_eq!(
        (r.status, r.header("upload-offset")),
        (204, Some(&*data.len().to_string())),
        "{}",
        r.body
    );
    assert_eq!(
        offset(h, &ana, &path).await,
        (200, Some(data.len() as u64)),
        "complete"
    );

    let list = h.req("GET", "/api/v1/sounds").bearer(&ana).send().await;
    assert_eq!(list.status, 200);
    let sound = &list.body["items"][0];
    assert_eq!(
        (
            sound["id"].as_str(),
            sound["name"].as_str(),
            sound["content_type"].as_str(),
            sound["size_bytes"].as_u64()
        ),
        (
            Some(&*id),
            Some("dawn chorus.ogg"),
            Some("audio/ogg"),
            Some(data.len() as u64)
        )
    );
    let got = h
        .req("GET", &format!("/api/v1/sounds/{id}"))
        .bearer(&ana)
        .send()
        .await;
    assert_eq!(got.body, *sound);
    let (status, headers, bytes) = content(h, &ana, &id, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "audio/ogg");
    assert_eq!(sha(&bytes), sha(&data), "byte-identical");
    let tag = headers["etag"].to_str().expect("etag").to_owned();
    let (status, headers, bytes) = content(h, &ana, &id, &[("range", "bytes=10-19")]).await;
    assert_eq!(status, 206);
    assert_eq!(
        headers["content-range"],
        format!("bytes 10-19/{}", data.len()).as_str()
    );
    assert_eq!(bytes, data[10..20]);
    let (status, _, bytes) = content(h, &ana, &id, &[("range", "bytes=-5")]).await;
    assert_eq!((status, &bytes[..]), (206, &data[data.len() - 5..]));
    let (status, headers, _) = content(
        h,
        &ana,
        &id,
        &[("range", &format!("bytes={}-", data.len()))],
    )
    .await;
    assert_eq!(status, 416);
    assert_eq!(
        headers["content-range"],
        format!("bytes */{}", data.len()).as_str()
    );
    let (status, _, bytes) = content(h, &ana, &id, &[("if-none-match", &tag)]).await;
    assert_eq!((status, bytes.len()), (304, 0));
    for path in [
        format!("/api/v1/sounds/{id}"),
        format!("/api/v1/sounds/{id}/content"),
    ] {
        h.req("GET", &path)
            .bearer(&bob)
            .send()
            .await
            .problem(404, "not-found");
    }
    h.req("DELETE", &format!("/api/v1/sounds/{id}"))
        .bearer(&bob)
        .send()
        .await
        .problem(404, "not-found");
    let bobs = h.req("GET", "/api/v1/sounds").bearer(&bob).send().await;
    assert_eq!(bobs.body["items"], json!([]));
}

async fn a_cut_off_patch_keeps_what_arrived_and_resumes(h: &Harness) {
    let ana = h.account("ana@example.com").await.access;
    let data = ogg(7 * MIB + 5);
    let path = create(h, &ana, data.len(), "cut.ogg").await;
    // A PATCH that declares the rest but sends 6 MiB and stops (its
    // client shuts its side down): the server keeps what arrived and then
    // answers, so once the answer is read the offset is settled.
    let sent = 6 * MIB;
    let answer = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let authority = h.base.trim_start_matches("http://").to_owned();
        let mut s = tokio::net::TcpStream::connect(&authority)
            .await
            .expect("connect");
        let head = format!(
            "PATCH {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {ana}\r\n\
             Tus-Resumable: {TUS}\r\nUpload-Offset: 0\r\n\
             Content-Type: application/offset+octet-stream\r\nContent-Length: {}\r\n\r\n",
            data.len()
        );
        s.write_all(head.as_bytes()).await.expect("head");
        s.write_all(&data[..sent]).await.expect("body");
        s.shutdown().await.expect("the client stops sending");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    };
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let (status, at) = offset(h, &ana, &path).await;
    assert_eq!(status, 200);
    let at = at.expect("offset") as usize;
    assert!(at > 0 && at <= sent, "kept {at} of {sent} bytes sent");
    let r = patch(h, &ana, &path, at, &data[at..]).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let id = path.rsplit('/').next().expect("id");
    let (status, _, bytes) = content(h, &ana, id, &[]).await;
    assert_eq!(
        (status, sha(&bytes)),
        (200, sha(&data)),
        "byte-identical after the resume"
    );
}

async fn alarms_name_sounds_which_stay_while_named(h: &Harness) {
    let ana = h.account("ana@example.com").await.access;
    let bob = h.account("bob@example.com").await.access;
    let data = ogg(4000);
    let path = create(h, &ana, data.len(), "bell.ogg").await;
    assert_eq!(patch(h, &ana, &path, 0, &data).await.status, 204);
    let sound = path.rsplit('/').next().expect("id").to_owned();
    let alarm = |sound_id: &str| {
        json!({
            "name": "Wake",
            "schedules": [{"kind": "daily", "time": "07:00"}],
            "sound_id": sound_id,
        })
    };
    let made = h
        .req("POST", "/api/v1/alarms")
        .bearer(&ana)
        .json(alarm(&sound))
        .send()
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.body["sound_id"], sound.as_str());
    let r = h
        .req("POST", "/api/v1/alarms")
        .bearer(&bob)
        .json(alarm(&sound))
        .send()
        .await;
    r.problem(422, "validation");
    assert_eq!(r.field(), "sound_id", "another user's sound is unknown");
    let r = h
        .req("POST", "/api/v1/alarms")
        .bearer(&ana)
        .json(alarm("not-a-uuid"))
        .send()
        .await;
    r.problem(422, "validation");
    assert_eq!(r.field(), "sound_id");
    h.req("DELETE", &format!("/api/v1/sounds/{sound}"))
        .bearer(&ana)
        .send()
        .await
        .problem(409, "conflict");
    let id = made.body["id"].as_str().expect("id");
    let etag = made.header("etag").expect("etag").to_owned();
    let gone = h
        .req("DELETE", &format!("/api/v1/alarms/{id}"))
        .bearer(&ana)
        .header("If-Match", &etag)
        .send()
        .await;
    assert_eq!(gone.status, 204, "{}", gone.body);
    let r = h
        .req("DELETE", &format!("/api/v1/sounds/{sound}"))
        .bearer(&ana)
        .send()
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let (status, _, _) = content(h, &ana, &sound, &[]).await;
    assert_eq!(status, 404);
}

async fn anything_but_audio_is_refused_and_deleted(h: &Harness) {
    let ana = h.account("ana@example.com").await.access;
    let text = b"#!/bin/sh\necho this is not a song\n".to_vec();
    let path = create(h, &ana, text.len(), "song.ogg").await;
    patch(h, &ana, &path, 0, &text)
        .await
        .problem(415, "unsupported-media-type");
    assert_eq!(offset(h, &ana, &path).await.0, 404, "the upload is gone");
    let list = h.req("GET", "/api/v1/sounds").bearer(&ana).send().await;
    assert_eq!(list.body["items"], json!([]));
    // Termination: an upload cancelled is gone.
    let path = create(h, &ana, 100, "later.ogg").await;
    let r = h
        .req("DELETE", &path)
        .bearer(&ana)
        .header("Tus-Resumable", TUS)
        .send()
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(offset(h, &ana, &path).await.0, 404);
}

async fn sound_quotas_refuse_an_upload_before_its_bytes(h: &Harness) {
    let ana = h.account("ana@example.com").await.access;
    // The harness allows one sound and 2 MiB per account.
    let refused = |length: usize| {
        h.req("POST", "/api/v1/uploads")
            .bearer(&ana)
            .header("Tus-Resumable", TUS)
            .header("Upload-Length", &length.to_string())
            .header("Upload-Metadata", &meta("two.ogg", "audio/ogg"))
            .send()
    };
    let r = refused(2 * MIB + 1).await;
    r.problem(409, "quota-exceeded");
    assert_eq!(r.body["quota"], "sound_megabytes_per_user");
    let data = ogg(MIB + 1);
    let path = create(h, &ana, data.len(), "one.ogg").await;
    let r = refused(100).await;
    r.problem(409, "quota-exceeded");
    assert_eq!(
        r.body["quota"], "sounds_per_user",
        "the open upload counts: it will be a sound"
    );
    assert_eq!(patch(h, &ana, &path, 0, &data).await.status, 204);
    let r = refused(100).await;
    r.problem(409, "quota-exceeded");
    assert_eq!(r.body["quota"], "sounds_per_user");
}

/// With a CDN configured, a sound carries a signed link that reads its
/// bytes without credentials, cacheable by the CDN; a link altered in any
/// part is 403.
async fn a_cdn_link_reads_a_sound_without_credentials(h: &Harness) {
    let ana = h.account("ana@example.com").await.access;
    let data = ogg(5000);
    let path = create(h, &ana, data.len(), "bell.ogg").await;
    assert_eq!(patch(h, &ana, &path, 0, &data).await.status, 204);
    let id = path.rsplit('/').next().expect("id");
    let sound = h
        .req("GET", &format!("/api/v1/sounds/{id}"))
        .bearer(&ana)
        .send()
        .await;
    let link = sound.body["link"].as_str().expect("a link").to_owned();
    assert!(sound.body["link_expires_at"].is_string());
    // The CDN forwards the path and query to this API, its origin.
    let origin = link
        .strip_prefix("https://cdn.test")
        .expect("under the CDN's base");
    let r = h
        .http
        .get(format!("{}{origin}", h.base))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);
    let cache = r.headers()["cache-control"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cache.starts_with("public, max-age="), "{cache}");
    assert_eq!(sha(&r.bytes().await.expect("body")), sha(&data));
    let r = h
        .http
        .get(format!("{}{origin}", h.base))
        .header("range", "bytes=0-3")
        .send()
        .await
        .expect("answer");
    assert_eq!(
        (r.status().as_u16(), &r.bytes().await.expect("body")[..]),
        (206, &b"OggS"[..])
    );
    let (expires, signature) = origin
        .split_once("?expires=")
        .and_then(|(_, q)| q.split_once("&signature="))
        .expect("query");
    let later: i64 = expires.parse::<i64>().expect("expires") + 600;
    let tampered = [
        origin.replace(&format!("expires={expires}"), &format!("expires={later}")),
        origin.replace(signature, &signature.chars().rev().collect::<String>()),
        origin.replace(id, &uuid::Uuid::now_v7().to_string()),
    ];
    for altered in tampered {
        h.req("GET", &altered)
            .send()
            .await
            .problem(403, "forbidden");
    }
}

/// A PATCH held open by its client after its first bytes: the stream, and
/// the body still to send.
struct Held(tokio::net::TcpStream);

impl Held {
    /// Sends the head and the first `first` bytes of `data` as a PATCH
    /// from offset 0, then waits until the server says the upload is being
    /// written (HEAD 423), so its memory is reserved.
    async fn open(h: &Harness, token: &str, path: &str, data: &[u8], first: usize) -> Self {
        use tokio::io::AsyncWriteExt;
        let authority = h.base.trim_start_matches("http://").to_owned();
        let mut s = tokio::net::TcpStream::connect(&authority)
            .await
            .expect("connect");
        let head = format!(
            "PATCH {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\n\
             Tus-Resumable: {TUS}\r\nUpload-Offset: 0\r\nConnection: close\r\n\
             Content-Type: application/offset+octet-stream\r\nContent-Length: {}\r\n\r\n",
            data.len()
        );
        s.write_all(head.as_bytes()).await.expect("head");
        s.write_all(&data[..first]).await.expect("first bytes");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while offset(h, token, path).await.0 != 423 {
            assert!(
                std::time::Instant::now() < deadline,
                "the PATCH never began"
            );
            tokio::task::yield_now().await;
        }
        Self(s)
    }

    /// Sends the rest and reads the answer's status line.
    async fn finish(mut self, rest: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.0.write_all(rest).await.expect("the rest");
        let mut out = Vec::new();
        let _ = self.0.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

/// The upload memory gate over HTTP: with one PATCH per account and
/// room for two PATCHes in all, an account's second concurrent PATCH is
/// 429, a third account's PATCH while two are held is 503 with
/// `Retry-After`, and each goes through once the held ones end. Nothing
/// refused is kept.
async fn the_upload_gate_holds_each_account_and_the_whole_budget(h: &Harness) {
    let ana = h.account("ana@example.com").await.access;
    let bob = h.account("bob@example.com").await.access;
    let carol = h.account("carol@example.com").await.access;
    let data = ogg(1000);
    let ana_first = create(h, &ana, data.len(), "a1.ogg").await;
    let ana_second = create(h, &ana, data.len(), "a2.ogg").await;
    let bobs = create(h, &bob, data.len(), "b.ogg").await;
    let carols = create(h, &carol, data.len(), "c.ogg").await;

    let held_ana = Held::open(h, &ana, &ana_first, &data, 10).await;
    let r = patch(h, &ana, &ana_second, 0, &data).await;
    r.problem(429, "rate-limited");
    let held_bob = Held::open(h, &bob, &bobs, &data, 10).await;
    let r = patch(h, &carol, &carols, 0, &data).await;
    r.problem(503, "unavailable");
    assert_eq!(r.header("retry-after"), Some("5"), "{:?}", r.body);
    for (token, path) in [(&ana, &ana_second), (&carol, &carols)] {
        assert_eq!(offset(h, token, path).await, (200, Some(0)), "nothing kept");
    }

    assert!(
        held_ana
            .finish(&data[10..])
            .await
            .starts_with("HTTP/1.1 204")
    );
    assert!(
        held_bob
            .finish(&data[10..])
            .await
            .starts_with("HTTP/1.1 204")
    );
    for (token, path) in [(&ana, &ana_second), (&carol, &carols)] {
        let r = patch(h, token, path, 0, &data).await;
        assert_eq!(r.status, 204, "{}", r.body);
    }
}

/// tuspy, a real tus client, uploads 20 MiB in 5 MiB PATCHes through the
/// API into s3s-fs; the sound it becomes is byte-identical.
async fn a_real_tus_client_uploads_through_the_api(h: &Harness) {
    let ana = h.account("ana@example.com").await.access;
    let data = ogg(20 * MIB + 12_345);
    let dir = std::env::temp_dir().join(format!("alarm-it-tuspy-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("morning.ogg");
    std::fs::write(&file, &data).expect("file");
    let script = "import sys\nfrom tusclient import client\n\
         c = client.TusClient(sys.argv[1], headers={'Authorization': 'Bearer ' + sys.argv[2]})\n\
         u = c.uploader(sys.argv[3], chunk_size=5*1024*1024, metadata={'filename': 'morning.ogg', 'filetype': 'audio/ogg'})\n\
         u.upload()\nprint(u.url)\n"
        .to_owned();
    let args = [
        "-c".to_owned(),
        script,
        format!("{}/api/v1/uploads", h.base),
        ana.clone(),
        file.to_str().expect("path").to_owned(),
    ];
    // Blocking, off the runtime that serves the API to it.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3").args(&args).output()
    })
    .await
    .expect("joined")
    .expect("python3 runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tuspy failed: {stderr}");
    let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let id = url.rsplit('/').next().expect("id");
    let (status, headers, bytes) = content(h, &ana, id, &[]).await;
    assert_eq!((status, sha(&bytes)), (200, sha(&data)), "byte-identical");
    assert_eq!(headers["content-type"], "audio/ogg");
}

crate::trials!(api: [
    a_cdn_link_reads_a_sound_without_credentials,
    a_tus_upload_becomes_a_sound_streamed_back_with_ranges,
    a_cut_off_patch_keeps_what_arrived_and_resumes,
    alarms_name_sounds_which_stay_while_named,
    anything_but_audio_is_refused_and_deleted,
],);

/// Whether tuspy can be imported; CI installs it (`cargo xtask ci`).
fn tuspy_missing() -> bool {
    !std::process::Command::new("python3")
        .args(["-c", "import tusclient"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The scenarios that need their own limits or a client that may be
/// missing (then listed as ignored outside CI, never passed).
pub(crate) fn more_trials() -> Vec<libtest_mimic::Trial> {
    let mut out = Vec::new();
    let missing = if tuspy_missing() {
        Some("tuspy is not installed (pip install tuspy==1.1.0)".to_owned())
    } else {
        alarm_storage::testing::s3_unavailable()
    };
    let skip = missing.is_some() && std::env::var_os("CI").is_none();
    if let Some(why) = missing.filter(|_| skip) {
        eprintln!("{why}: sounds::a_real_tus_client_uploads_through_the_api is skipped");
    }
    out.extend(
        crate::on_both(
            "sounds",
            "a_real_tus_client_uploads_through_the_api",
            |db, label| {
                crate::block_on(async move {
                    // Into a real S3 server: the multipart path end to end.
                    let server = alarm_storage::testing::S3Server::start();
                    let limits = Limits {
                        storage: Some(alarm_storage::Backend::S3(server.settings())),
                        ..Limits::lenient()
                    };
                    if let Some(h) = Harness::start_with(db, &label, limits).await {
                        a_real_tus_client_uploads_through_the_api(&h).await;
                        h.stop().await;
                    }
                })
            },
        )
        .map(|t| if skip { t.with_ignored_flag(true) } else { t }),
    );
    out.extend(crate::on_both(
        "sounds",
        "the_upload_gate_holds_each_account_and_the_whole_budget",
        |db, label| {
            crate::block_on(async move {
                let limits = Limits {
                    upload_memory_megabytes: 12,
                    upload_patches_per_user: 1,
                    ..Limits::lenient()
                };
                if let Some(h) = Harness::start_with(db, &label, limits).await {
                    the_upload_gate_holds_each_account_and_the_whole_budget(&h).await;
                    h.stop().await;
                }
            })
        },
    ));
    out.extend(crate::on_both(
        "sounds",
        "sound_quotas_refuse_an_upload_before_its_bytes",
        |db, label| {
            crate::block_on(async move {
                let mut limits = Limits::lenient();
                limits.domain.sounds_per_user = 1;
                limits.domain.sound_megabytes_per_user = 2;
                if let Some(h) = Harness::start_with(db, &label, limits).await {
                    sound_quotas_refuse_an_upload_before_its_bytes(&h).await;
                    h.stop().await;
                }
            })
        },
    ));
    out
}
