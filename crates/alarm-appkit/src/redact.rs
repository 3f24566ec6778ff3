//! The secret values this process holds, scrubbed from every log line it writes, and panics logged through that same writer.
//!
//! `SecretString` keeps secrets out of `Debug`; this is the second wall,
//! for text that holds a secret without knowing it: a panic message, an
//! error a library formats from a URL with a password, a value pasted in
//! the wrong setting. Every secret setting (`secret_env`) and every value
//! a `{vault:…}` reference gave is registered; the log writer replaces
//! each occurrence with `[redacted]`, and the panic hook logs a panic's
//! message and place through the log (never the standard hook's bare
//! `stderr` print).

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, MatchKind};
use std::io::Write;
use std::sync::RwLock;

use secrecy::{ExposeSecret, SecretString};

/// Shorter values are not scrubbed: they would mangle ordinary words and
/// numbers, and a secret that short protects nothing anyway.
pub const MIN_LEN: usize = 8;

/// The most values kept: rotations add values, and the oldest go first.
const MAX_VALUES: usize = 256;

/// The registered values and one automaton over them all, so a line is
/// scanned once whatever their number (the automaton is rebuilt on
/// registration, which happens at start and at a rotation).
struct Known {
    values: Vec<SecretString>,
    matcher: Option<AhoCorasick>,
}

static KNOWN: RwLock<Known> = RwLock::new(Known {
    values: Vec::new(),
    matcher: None,
});

/// Remembers `secret` (and each of its lines, for multi-line values such
/// as PEM keys or key lists) so no log line shows it.
pub fn register(secret: &SecretString) {
    let text = secret.expose_secret();
    let mut known = KNOWN
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let before = known.values.len();
    let parts = std::iter::once(text).chain(text.lines().map(str::trim));
    for part in parts {
        if part.len() >= MIN_LEN && !known.values.iter().any(|k| k.expose_secret() == part) {
            if known.values.len() == MAX_VALUES {
                known.values.remove(0);
            }
            known.values.push(SecretString::from(part.to_owned()));
        }
    }
    if known.values.len() == before && known.matcher.is_some() {
        return;
    }
    // Leftmost-longest: a value that contains another is replaced whole.
    known.matcher = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(known.values.iter().map(|v| v.expose_secret().as_bytes()))
        .ok();
}

/// `text` with every registered value replaced by `[redacted]`.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let known = KNOWN
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match &known.matcher {
        Some(m) if m.is_match(text) => {
            let mut out = String::with_capacity(text.len());
            m.replace_all_with(text, &mut out, |_, _, dst| {
                dst.push_str("[redacted]");
                true
            });
            Cow::Owned(out)
        }
        _ => Cow::Borrowed(text),
    }
}

/// A log writer that scrubs what it is given. The log layer writes each
/// event with one call, so a line is scrubbed whole.
pub struct Scrubbing<W>(pub W);

impl<W: Write> Write for Scrubbing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(scrub(text).as_bytes())?,
            Err(_) => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Makes [`Scrubbing`] writers over standard error.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScrubbedStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ScrubbedStderr {
    type Writer = Scrubbing<std::io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        Scrubbing(std::io::stderr())
    }
}

/// Logs every panic as an error event (its message scrubbed like any
/// line, with the place it happened) instead of the standard hook's
/// print; before logging is set up, prints the scrubbed message.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic payload".to_owned());
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if tracing::dispatcher::has_been_set() {
            tracing::error!(panic = %message, at = %place, "panicked");
        } else {
            eprintln!("panicked at {place}: {}", scrub(&message));
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_never_reach_a_line() {
        register(&SecretString::from("short"));
        register(&SecretString::from(
            "canary-value-one\n-----BEGIN-----\nline-two-of-a-key\n",
        ));
        register(&SecretString::from("canary-value-one-and-more"));
        assert_eq!(scrub("nothing here"), "nothing here");
        assert!(matches!(scrub("nothing here"), Cow::Borrowed(_)));
        assert_eq!(
            scrub("a=canary-value-one-and-more b=canary-value-one c=line-two-of-a-key d=short"),
            "a=[redacted] b=[redacted] c=[redacted] d=short"
        );
        let mut out = Vec::new();
        Scrubbing(&mut out)
            .write_all(b"{\"msg\":\"canary-value-one\"}\n")
            .expect("write");
        assert_eq!(out, b"{\"msg\":\"[redacted]\"}\n");
    }
}
