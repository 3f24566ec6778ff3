//! Security headers on every answer: no sniffing, no framing, no referrer, a Content-Security-Policy that lets nothing load for API answers and lets the docs page run exactly its own inline scripts (by hash).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use poem::Response;
use poem::http::HeaderValue;
use sha2::{Digest, Sha256};

/// The policy of every answer except the docs page: JSON needs nothing.
const API_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The docs page's policy: its inline scripts by SHA-256 (the Swagger UI
/// bundle and the start-up script that carries the spec, both fixed when
/// the app is built), its inline styles, its embedded images, and fetches
/// back to this origin ("Try it out").
pub(crate) fn docs_csp(html: &str) -> String {
    let hashes: Vec<String> = inline_scripts(html)
        .map(|script| {
            format!(
                "'sha256-{}'",
                STANDARD.encode(Sha256::digest(script.as_bytes()))
            )
        })
        .collect();
    format!(
        "default-src 'none'; script-src {}; style-src 'unsafe-inline'; img-src 'self' data:; \
         connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        hashes.join(" ")
    )
}

/// The text of every `<script …>…</script>` element.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    html.split("<script").skip(1).filter_map(|rest| {
        let (_, body) = rest.split_once('>')?;
        body.split_once("</script>").map(|(script, _)| script)
    })
}

/// Adds the headers. `docs` is the docs page's policy when this answer is
/// that page.
pub(crate) fn secure(resp: &mut Response, docs: Option<&str>, tls: bool) {
    let h = resp.headers_mut();
    if tls {
        // Served over TLS by this process: browsers keep to HTTPS for a year.
        h.insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    let csp = docs
        .and_then(|p| HeaderValue::from_str(p).ok())
        .unwrap_or(HeaderValue::from_static(API_CSP));
    h.insert("content-security-policy", csp);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_inline_script_is_hashed() {
        let html = "<head><script charset=\"UTF-8\">var a=1;</script></head><body><script>go()</script></body>";
        let csp = docs_csp(html);
        let hash = |s: &str| STANDARD.encode(Sha256::digest(s.as_bytes()));
        assert!(csp.contains(&format!("'sha256-{}'", hash("var a=1;"))));
        assert!(csp.contains(&format!("'sha256-{}'", hash("go()"))));
        assert!(!csp.contains("unsafe-eval"));
    }
}
