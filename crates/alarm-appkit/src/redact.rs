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

/// The most values kept: rotations add values, and past this many the
/// oldest go first. Start-up registers at most a few hundred (a PEM key is
/// one value a line, each in up to three spellings), so only a process
/// rotating thousands of times ever drops one.
const MAX_VALUES: usize = 8192;

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
    for part in parts.filter(|p| p.len() >= MIN_LEN) {
        // As written, and as a JSON log line or a `?` field escapes it
        // (`"` and `\` become `\"` and `\\`, control characters `\n`…).
        for form in [part.to_owned(), json_escaped(part), debug_escaped(part)] {
            if !known.values.iter().any(|k| k.expose_secret() == form) {
                if known.values.len() == MAX_VALUES {
                    known.values.remove(0);
                }
                known.values.push(SecretString::from(form));
            }
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

/// `text` as a JSON string's content.
fn json_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// `text` as `{:?}` writes it, without the quotes.
fn debug_escaped(text: &str) -> String {
    let quoted = format!("{text:?}");
    quoted[1..quoted.len() - 1].to_owned()
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
        // Scrubbed here too, not only by the log writer: the event also
        // goes to the span exporter when traces are on.
        let message = scrub(&message);
        if tracing::dispatcher::has_been_set() {
            tracing::error!(panic = %message, at = %place, "panicked");
        } else {
            eprintln!("panicked at {place}: {message}");
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
        register(&SecretString::from("quote\"back\\slash\tvalue"));
        assert_eq!(scrub("nothing here"), "nothing here");
        assert!(matches!(scrub("nothing here"), Cow::Borrowed(_)));
        assert_eq!(
            scrub("a=canary-value-one-and-more b=canary-value-one c=line-two-of-a-key d=short"),
            "a=[redacted] b=[redacted] c=[redacted] d=short"
        );
        // As the JSON formatter and `?` fields write it.
        assert_eq!(
            scrub(r#"{"a":"quote\"back\\slash\tvalue"}"#),
            r#"{"a":"[redacted]"}"#
        );
        let mut out = Vec::new();
        Scrubbing(&mut out)
            .write_all(b"{\"msg\":\"canary-value-one\"}\n")
            .expect("write");
        assert_eq!(out, b"{\"msg\":\"[redacted]\"}\n");
    }
}
