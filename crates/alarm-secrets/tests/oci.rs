//! The OCI request signer against Oracle's published example and the official Python SDK, and the OCI Vault provider against a fake that verifies signatures.

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use alarm_domain::ports::{SecretError, SecretProvider};
use alarm_secrets::oci::{RequestSigner, authorization, signing_input};
use alarm_secrets::{OciAuth, OciConfig, OciSecrets};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use support::oci::{FakeOci, State};

const DATE: &str = "Thu, 05 Jan 2014 21:31:40 GMT";
const KEY_ID: &str = "ocid1.tenancy.oc1..aaaaaaaaba3pv6wkcr4jqae5f15p2b2m2yt2j6rx32uzr4h25vqstifsfdsq/ocid1.user.oc1..aaaaaaaat5nvwcna5j6aqzjcaty5eqbb6qt2jvpkanghtgdaqedqw3rynjq/20:3b:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5:3a:34";
const GET_URL: &str = "https://iaas.us-phoenix-1.oraclecloud.com/20160918/instances?availabilityDomain=Pjwf%3A%20PHX-AD-1&compartmentId=ocid1.compartment.oc1..aaaaaaaam3we6vgnherjq5q2idnccdflvjsnog7mlr6rtdb25gilchfeyjxa&displayName=TeamXInstances&volumeId=ocid1.volume.oc1.phx.abyhqljrgvttnlx73nmrwfaux7kcvzfs3s66izvxf2h4lgvyndsdsnoiwr5q";
const POST_URL: &str = "https://iaas.us-phoenix-1.oraclecloud.com/20160918/volumeAttachments";
const POST_BODY: &str = "{\n    \"compartmentId\": \"ocid1.compartment.oc1..aaaaaaaam3we6vgnherjq5q2idnccdflvjsnog7mlr6rtdb25gilchfeyjxa\",\n    \"instanceId\": \"ocid1.instance.oc1.phx.abuw4ljrlsfiqw6vzzxb43vyypt4pkodawglp3wqxjqofakrwvou52gb6s5a\",\n    \"volumeId\": \"ocid1.volume.oc1.phx.abyhqljrgvttnlx73nmrwfaux7kcvzfs3s66izvxf2h4lgvyndsdsnoiwr5q\"\n}";
/// The example's 1024-bit public key (SubjectPublicKeyInfo, base64), as
/// Oracle publishes it beside the example.
const EXAMPLE_PUBLIC_KEY: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDCFENGw33yGihy92pDjZQhl0C36rPJj+CvfSC8+q28hxA161QFNUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6Z4UMR7EOcpfdUE9Hf3m/hs+FUR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJwoYi+1hqp1fIekaxsyQIDAQAB";
/// Oracle's published signatures of the GET and POST examples.
const GET_SIGNATURE: &str = "GBas7grhyrhSKHP6AVIj/h5/Vp8bd/peM79H9Wv8kjoaCivujVXlpbKLjMPeDUhxkFIWtTtLBj3sUzaFj34XE6YZAHc9r2DmE4pMwOAy/kiITcZxa1oHPOeRheC0jP2dqbTll8fmTZVwKZOKHYPtrLJIJQHJjNvxFWeHQjMaR7M=";
const POST_SIGNATURE: &str = "Mje8vIDPlwIHmD/cTDwRxE7HaAvBg16JnVcsuqaNRim23fFPgQfLoOOxae6WqKb1uPjYEl0qIdazWaBy/Ml8DRhqlocMwoSXv0fbukP8J5N80LCmzT/FFBvIvTB91XuXI3hYfP9Zt1l7S6ieVadHUfqBedWH0itrtPJBgKmrWso=";

fn url(s: &str) -> reqwest::Url {
    reqwest::Url::parse(s).expect("url")
}

/// Oracle's published signature verifies over the signing string this
/// crate builds (so the two are the same bytes: PKCS#1 v1.5 leaves no
/// room), and the header built around it is Oracle's, byte for byte.
/// ring signs only with keys of 2048 bits or more, so the example's
/// 1024-bit key can verify here but not sign.
#[test]
fn oracles_published_example_is_reproduced() {
    let spki = STANDARD.decode(EXAMPLE_PUBLIC_KEY).expect("base64");
    // A 1024-bit SubjectPublicKeyInfo is a 22-byte header (the rsaEncryption
    // algorithm and the bit string's lead) around the PKCS#1 key ring takes.
    let (head, pkcs1) = spki.split_at(22);
    assert_eq!(&head[..4], &[0x30, 0x81, 0x9f, 0x30]);
    let public = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        pkcs1,
    );

    let (names, headers, get) = signing_input("GET", &url(GET_URL), DATE, None);
    assert_eq!(names, "date (request-target) host");
    assert_eq!(headers, [("date", DATE.to_owned())]);
    public
        .verify(
            get.as_bytes(),
            &STANDARD.decode(GET_SIGNATURE).expect("b64"),
        )
        .expect("Oracle's GET signature verifies over our signing string");
    assert_eq!(
        authorization(names, KEY_ID, GET_SIGNATURE),
        format!(
            "Signature version=\"1\",headers=\"date (request-target) host\",keyId=\"{KEY_ID}\",algorithm=\"rsa-sha256\",signature=\"{GET_SIGNATURE}\""
        )
    );

    let (names, headers, post) = signing_input(
        "POST",
        &url(POST_URL),
        DATE,
        Some(("application/json", POST_BODY.as_bytes())),
    );
    assert_eq!(
        names,
        "date (request-target) host content-length content-type x-content-sha256"
    );
    let sent: HashMap<_, _> = headers.into_iter().collect();
    assert_eq!(sent["content-length"], "316");
    assert_eq!(
        sent["x-content-sha256"],
        "V9Z20UJTvkvpJ50flBzKE32+6m2zJjweHpDMX/U4Uy0="
    );
    public
        .verify(
            post.as_bytes(),
            &STANDARD.decode(POST_SIGNATURE).expect("b64"),
        )
        .expect("Oracle's POST signature verifies over our signing string");
    // Tampering with one byte of what is signed breaks the signature.
    assert!(
        public
            .verify(
                post.replace("316", "317").as_bytes(),
                &STANDARD.decode(POST_SIGNATURE).expect("b64")
            )
            .is_err()
    );
}

/// Runs Python (with the official `oci` package) on `script`, giving it
/// `args`; its standard output.
fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed (the `oci` package is installed by `cargo xtask ci`: python3 -m pip install oci): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A fresh 2048-bit RSA key, PEM (PKCS#1 when `pkcs1`, else PKCS#8),
/// made by the `cryptography` package the `oci` SDK depends on: ring
/// cannot generate RSA keys, and no key is committed.
fn fresh_key(pkcs1: bool) -> SecretString {
    let script = "import sys\nfrom cryptography.hazmat.primitives.asymmetric import rsa\nfrom cryptography.hazmat.primitives import serialization as s\nk = rsa.generate_private_key(public_exponent=65537, key_size=2048)\nf = s.PrivateFormat.TraditionalOpenSSL if sys.argv[1] == '1' else s.PrivateFormat.PKCS8\nsys.stdout.write(k.private_bytes(s.Encoding.PEM, f, s.NoEncryption()).decode())";
    SecretString::from(python(script, &[if pkcs1 { "1" } else { "0" }]))
}

/// The official SDK's signer (`oci.signer.Signer`) on a GET and a POST
/// with a fixed date; prints each request's `authorization` header.
const SDK_SIGNS: &str = r#"
import sys, oci
from oci._vendor import requests
tenancy, user, fingerprint, key_file, date, get_url, post_url, body = sys.argv[1:9]
signer = oci.signer.Signer(tenancy, user, fingerprint, key_file)
for method, url, data in (("GET", get_url, None), ("POST", post_url, body)):
    headers = {"date": date}
    if data is not None:
        headers["content-type"] = "application/json"
    req = requests.Request(method, url, headers=headers, data=data).prepare()
    signer(req)
    print(req.headers["authorization"])
"#;

#[test]
fn the_official_python_sdk_signs_the_same_bytes() {
    for pkcs1 in [true, false] {
        let key = fresh_key(pkcs1);
        let dir = std::env::temp_dir().join(format!("oci-sdk-{}-{pkcs1}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let key_file = dir.join("key.pem");
        std::fs::write(&key_file, key.expose_secret()).expect("key file");
        let (tenancy, user, fp) = (
            "ocid1.tenancy.oc1..aaaa",
            "ocid1.user.oc1..bbbb",
            "11:22:33",
        );
        let get = "https://secrets.vaults.eu-frankfurt-1.oci.oraclecloud.com/20190301/secretbundles/ocid1.vaultsecret.oc1.eu-frankfurt-1.abc?versionNumber=2";
        let post = "https://secrets.vaults.eu-frankfurt-1.oci.oraclecloud.com/20190301/secretbundles/actions/getByName?secretName=db-password&vaultId=ocid1.vault.oc1..v";
        let sdk = python(
            SDK_SIGNS,
            &[
                tenancy,
                user,
                fp,
                key_file.to_str().expect("path"),
                DATE,
                get,
                post,
                POST_BODY,
            ],
        );
        let sdk: Vec<&str> = sdk.lines().collect();
        let signer =
            RequestSigner::new(format!("{tenancy}/{user}/{fp}"), &key).expect("our signer");
        let ours_get = signer.sign("GET", &url(get), DATE, None).expect("sign");
        let ours_post = signer
            .sign(
                "POST",
                &url(post),
                DATE,
                Some(("application/json", POST_BODY.as_bytes())),
            )
            .expect("sign");
        let auth = |s: &alarm_secrets::oci::SignedHeaders| {
            s.headers
                .iter()
                .find(|(n, _)| *n == "authorization")
                .expect("authorization")
                .1
                .clone()
        };
        // The same fields with the same values; the SDK lists them in
        // another order, which the scheme leaves free.
        let ours = [auth(&ours_get), auth(&ours_post)];
        assert_eq!(sdk.len(), 2, "{sdk:?}");
        for (theirs, ours) in sdk.iter().zip(&ours) {
            assert_eq!(fields(theirs), fields(ours), "pkcs1: {pkcs1}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// An `Authorization` header's fields, sorted.
fn fields(header: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = header
        .strip_prefix("Signature ")
        .expect("scheme")
        .split(',')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("field");
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect();
    fields.sort();
    assert_eq!(fields.len(), 5, "{header}");
    fields
}

const VAULT: &str = "ocid1.vault.oc1..vault";
const SECRET: &str = "ocid1.vaultsecret.oc1.eu-frankfurt-1.secret1";

async fn fake(key_id: &str, signer: &RequestSigner) -> FakeOci {
    FakeOci::start(State {
        key_id: key_id.to_owned(),
        public_key: signer.public_key_der(),
        secrets: HashMap::from([(
            SECRET.to_owned(),
            (
                VAULT.to_owned(),
                "db-password".to_owned(),
                vec!["v-one".to_owned(), "v-two ✓".to_owned()],
            ),
        )]),
        ..State::default()
    })
    .await
}

fn api_key(key: &SecretString) -> OciAuth {
    OciAuth::ApiKey {
        tenancy: "ocid1.tenancy.oc1..t".into(),
        user: "ocid1.user.oc1..u".into(),
        fingerprint: "aa:bb".into(),
        private_key: key.clone(),
    }
}

#[tokio::test]
async fn secrets_are_read_by_ocid_and_by_name_with_verified_signatures() {
    let key = fresh_key(true);
    let signer = RequestSigner::new("x".into(), &key).expect("signer");
    let fake = fake("ocid1.tenancy.oc1..t/ocid1.user.oc1..u/aa:bb", &signer).await;
    let oci = OciSecrets::connect(OciConfig {
        endpoint: fake.url(),
        vault_id: Some(VAULT.into()),
        auth: api_key(&key),
        timeout: Duration::from_secs(5),
    })
    .await
    .expect("connect");
    assert_eq!(
        oci.get(SECRET).await.expect("by id").expose_secret(),
        "v-two ✓"
    );
    assert_eq!(
        oci.get(&format!("{SECRET}@1"))
            .await
            .expect("by id, v1")
            .expose_secret(),
        "v-one"
    );
    assert_eq!(
        oci.get("db-password")
            .await
            .expect("by name")
            .expose_secret(),
        "v-two ✓"
    );
    assert_eq!(
        oci.get("db-password@1")
            .await
            .expect("by name, v1")
            .expose_secret(),
        "v-one"
    );
    assert!(matches!(oci.get("nope").await, Err(SecretError::NotFound(n)) if n == "nope"));
    assert!(matches!(
        oci.get("db-password@7").await,
        Err(SecretError::NotFound(_))
    ));
    assert_eq!(fake.state.lock().expect("state").refused, 0);
    let shown = format!("{oci:?}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");

    // Another key under the same key id: every request is refused, and
    // the failure says so without a value.
    let other = OciSecrets::connect(OciConfig {
        endpoint: fake.url(),
        vault_id: Some(VAULT.into()),
        auth: api_key(&fresh_key(false)),
        timeout: Duration::from_secs(5),
    })
    .await
    .expect("connect");
    match other.get(SECRET).await {
        Err(SecretError::Unexpected(e)) => {
            let text = alarm_domain::error::chain(&*e);
            assert!(
                text.contains("401") && text.contains("NotAuthenticated"),
                "{text}"
            );
        }
        other => panic!("a wrong key: {other:?}"),
    }
}

#[tokio::test]
async fn a_tampered_request_is_refused() {
    let key = fresh_key(true);
    let key_id = "ocid1.tenancy.oc1..t/ocid1.user.oc1..u/aa:bb";
    let signer = RequestSigner::new(key_id.into(), &key).expect("signer");
    let fake = fake(key_id, &signer).await;
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&jiff::Timestamp::now())
        .expect("date");
    let signed_url = url(&format!(
        "{}/20190301/secretbundles/{SECRET}?versionNumber=1",
        fake.url()
    ));
    let signed = signer.sign("GET", &signed_url, &date, None).expect("sign");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let send = |target: reqwest::Url| {
        let mut r = client.get(target);
        for (n, v) in &signed.headers {
            r = r.header(*n, v);
        }
        r.send()
    };
    assert_eq!(send(signed_url.clone()).await.expect("sent").status(), 200);
    // The same signature on another version of the secret.
    let tampered = url(&format!(
        "{}/20190301/secretbundles/{SECRET}?versionNumber=2",
        fake.url()
    ));
    assert_eq!(send(tampered).await.expect("sent").status(), 401);
    let st = fake.state.lock().expect("state");
    assert_eq!((st.accepted, st.refused), (1, 1));
}

#[tokio::test]
async fn a_resource_principal_signs_with_its_session_token_and_rereads_it() {
    let key = fresh_key(false);
    let dir = std::env::temp_dir().join(format!("oci-rp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (token_file, key_file) = (dir.join("rpst"), dir.join("key.pem"));
    std::fs::write(&token_file, "token-one\n").expect("token");
    std::fs::write(&key_file, key.expose_secret()).expect("key");
    let signer = RequestSigner::new("x".into(), &key).expect("signer");
    let fake = fake("ST$token-one", &signer).await;
    let oci = OciSecrets::connect(OciConfig {
        endpoint: fake.url(),
        vault_id: None,
        auth: OciAuth::ResourcePrincipal {
            token: SecretString::from(token_file.display().to_string()),
            private_key: SecretString::from(key_file.display().to_string()),
        },
        timeout: Duration::from_secs(5),
    })
    .await
    .expect("connect");
    assert_eq!(
        oci.get(SECRET).await.expect("read").expose_secret(),
        "v-two ✓"
    );
    // The platform renews the token in its file: the next request uses it.
    std::fs::write(&token_file, "token-two\n").expect("token");
    fake.state.lock().expect("state").key_id = "ST$token-two".into();
    assert_eq!(
        oci.get(SECRET).await.expect("read").expose_secret(),
        "v-two ✓"
    );
    match oci.get("db-password").await {
        Err(SecretError::Unexpected(e)) => {
            assert!(alarm_domain::error::chain(&*e).contains("OCI_VAULT_ID"));
        }
        other => panic!("a name without a vault: {other:?}"),
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn bad_keys_fail_at_start() {
    for (pem, says) in [
        ("not a key", "PEM"),
        ("-----BEGIN -----END -----", "PEM"),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "encrypted",
        ),
        (
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
            "not an RSA key",
        ),
    ] {
        let err = OciSecrets::connect(OciConfig {
            endpoint: "http://127.0.0.1:9".into(),
            vault_id: None,
            auth: api_key(&SecretString::from(pem)),
            timeout: Duration::from_secs(5),
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains(says), "{err}");
    }
}
