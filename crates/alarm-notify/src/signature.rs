//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with the registration's `whsec_` secret.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// Why a secret cannot sign, or a signature does not verify. The secret is
/// never part of the message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// The secret is not `whsec_` followed by base64.
    #[error("the signing secret is not `whsec_` + base64")]
    BadSecret,
    /// No `v1,` signature in the header matches.
    #[error("no matching v1 signature")]
    Mismatch,
    /// The timestamp is too far from now (replay protection).
    #[error("the timestamp is {0} s away from now")]
    Stale(i64),
}

fn key(secret: &SecretString) -> Result<Vec<u8>, SignatureError> {
    let encoded = secret
        .expose_secret()
        .strip_prefix("whsec_")
        .ok_or(SignatureError::BadSecret)?;
    STANDARD
        .decode(encoded)
        .map_err(|_| SignatureError::BadSecret)
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` header value for a delivery: `v1,<base64>`.
///
/// # Errors
/// [`SignatureError::BadSecret`].
pub fn sign(
    secret: &SecretString,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, SignatureError> {
    let tag = mac(&key(secret)?, id, timestamp, body)
        .finalize()
        .into_bytes();
    Ok(format!("v1,{}", STANDARD.encode(tag)))
}

/// The `webhook-signature` header value signed with each of `secrets`, in
/// order, space-separated (`v1,<a> v1,<b>`: a receiver accepts the request
/// when any one verifies with its secret).
///
/// # Errors
/// [`SignatureError::BadSecret`] for any of them.
pub fn sign_all(
    secrets: &[&SecretString],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, SignatureError> {
    let signatures = secrets
        .iter()
        .map(|s| sign(s, id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(signatures.join(" "))
}

/// Checks a received `webhook-signature` header (space-separated
/// signatures, any of which may match; compared in constant time) and the
/// timestamp's distance from `now` (both Unix seconds).
///
/// # Errors
/// [`SignatureError`].
pub fn verify(
    secret: &SecretString,
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
    tolerance_seconds: i64,
) -> Result<(), SignatureError> {
    let away = (now - timestamp).abs();
    if away > tolerance_seconds {
        return Err(SignatureError::Stale(away));
    }
    let key = key(secret)?;
    for candidate in header.split(' ') {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(tag) = STANDARD.decode(encoded) else {
            continue;
        };
        if mac(&key, id, timestamp, body).verify_slice(&tag).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    /// The example of the Standard Webhooks specification.
    #[test]
    fn matches_the_specification_example() {
        let s = secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(&s, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body).expect("sign");
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let header = format!("v1,bm90IHRoaXMgb25l {sig}");
        assert_eq!(
            verify(
                &s,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                body,
                &header,
                1_614_265_331,
                300
            ),
            Ok(()),
            "any of the listed signatures may match"
        );
    }

    /// During a rotation's overlap each secret's receiver verifies the
    /// same header.
    #[test]
    fn one_header_carries_a_signature_per_secret() {
        let new = secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let old = secret("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        let header = sign_all(&[&new, &old], "msg_1", 1000, b"{}").expect("sign");
        assert_eq!(header.split(' ').count(), 2, "{header}");
        assert!(header.starts_with(&sign(&new, "msg_1", 1000, b"{}").expect("sign")));
        for s in [&new, &old] {
            assert_eq!(verify(s, "msg_1", 1000, b"{}", &header, 1000, 300), Ok(()));
        }
        let third = secret("whsec_ERERERERERERERERERERERERERERERERERERERERERE=");
        assert_eq!(
            verify(&third, "msg_1", 1000, b"{}", &header, 1000, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn refuses_tampering_staleness_and_bad_secrets() {
        let s = secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let sig = sign(&s, "msg_1", 1000, b"{}").expect("sign");
        assert_eq!(
            verify(&s, "msg_1", 1000, b"{ }", &sig, 1000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&s, "msg_2", 1000, b"{}", &sig, 1000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&s, "msg_1", 1001, b"{}", &sig, 1001, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&s, "msg_1", 1000, b"{}", &sig, 1301, 300),
            Err(SignatureError::Stale(301))
        );
        let other = secret("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert_eq!(
            verify(&other, "msg_1", 1000, b"{}", &sig, 1000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            sign(&secret("MfKQ9r8G"), "m", 1, b""),
            Err(SignatureError::BadSecret)
        );
        assert_eq!(
            sign(&secret("whsec_***"), "m", 1, b""),
            Err(SignatureError::BadSecret)
        );
        let shown = format!("{:?}", SignatureError::BadSecret);
        assert!(!shown.contains("MfKQ"), "errors never carry the secret");
    }
}
