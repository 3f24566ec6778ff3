//! The one validation error every constructor returns: which field, a stable code, and why.

use std::borrow::Cow;
use std::fmt;

/// A value was rejected. Carries the field path (`schedules[2].rrule`), a stable
/// machine-readable code (`too-long`, `rule-never-fires`…) and a human sentence.
///
/// The code is part of the public contract: the HTTP layer turns it into the
/// problem `type`, so clients can branch on it without parsing English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    field: Cow<'static, str>,
    code: &'static str,
    message: String,
}

impl ValidationError {
    /// Builds an error for `field` with a stable `code` and a readable `message`.
    pub fn new(
        field: impl Into<Cow<'static, str>>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }

    /// The path of the rejected field, e.g. `name` or `schedules[1].time`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The stable code, e.g. `out-of-range`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Why the value was rejected, in a sentence.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Re-roots the field path under `parent`, so a nested value's error
    /// names where it sits in the enclosing value (`schedules[3]` + `time`).
    #[must_use]
    pub fn within(self, parent: &str) -> Self {
        let field = if self.field.is_empty() {
            parent.to_owned()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        Self {
            field: Cow::Owned(field),
            ..self
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.field, self.message, self.code)
    }
}

impl std::error::Error for ValidationError {}

/// Stable codes used across the domain. Kept in one place so the set the API
/// documents is the set the code emits.
pub mod codes {
    /// A required value is empty.
    pub const EMPTY: &str = "empty";
    /// A string is longer than allowed.
    pub const TOO_LONG: &str = "too-long";
    /// A number or duration is outside its allowed range.
    pub const OUT_OF_RANGE: &str = "out-of-range";
    /// The value does not have the required shape.
    pub const INVALID_FORMAT: &str = "invalid-format";
    /// The value is not one of the known names.
    pub const UNKNOWN_VALUE: &str = "unknown-value";
    /// A collection holds the same element twice.
    pub const DUPLICATE: &str = "duplicate";
    /// Too many or too few elements.
    pub const BAD_COUNT: &str = "bad-count";
    /// Start and end are in the wrong order.
    pub const INVERTED_RANGE: &str = "inverted-range";
    /// A one-off time that is already in the past.
    pub const IN_THE_PAST: &str = "in-the-past";
    /// A recurrence rule that can never produce an occurrence.
    pub const RULE_NEVER_FIRES: &str = "rule-never-fires";
    /// A recurrence rule part that is malformed or unsupported.
    pub const INVALID_RULE: &str = "invalid-rule";
    /// The time zone name is not in the time-zone database.
    pub const UNKNOWN_TIME_ZONE: &str = "unknown-time-zone";
    /// A webhook URL whose host is, or resolves to, an address the operator does not allow (SSRF guard).
    pub const REFUSED_TARGET: &str = "refused-target";
    /// A known value the product accepts in its vocabulary but cannot act on yet (the `push`
    /// channel, webhook events nothing emits): refused rather than stored and silently ignored.
    pub const NOT_SUPPORTED: &str = "not-supported";
    /// Schedules that would ring more often than the operator's limit allows (`MAX_FIRES_PER_DAY`).
    pub const TOO_FREQUENT: &str = "too-frequent";
}

/// Checks a trimmed string's length in characters; the shared rule behind
/// every bounded text field.
pub(crate) fn check_text(
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<String, ValidationError> {
    let trimmed = value.trim();
    let len = trimmed.chars().count();
    if len < min {
        return Err(ValidationError::new(
            field,
            codes::EMPTY,
            format!("must have at least {min} character(s) after trimming"),
        ));
    }
    if len > max {
        return Err(ValidationError::new(
            field,
            codes::TOO_LONG,
            format!("must have at most {max} characters, got {len}"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            codes::INVALID_FORMAT,
            "must not contain control characters",
        ));
    }
    check_bidi(field, trimmed)?;
    Ok(nfc(trimmed))
}

/// The Unicode bidirectional embedding, override and isolate controls
/// (U+202A..U+202E, U+2066..U+2069): they make a name display differently
/// from what it is ("Trojan Source"), so no stored text may carry them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// An error and its causes, `: `-joined, for logs and operator messages
/// (a wrapper's own text is often generic; its cause says what failed).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// `value` without bidirectional controls: how a stored name from before
/// they were refused is read back (shown plainly rather than not at all).
pub fn without_bidi(value: &str) -> std::borrow::Cow<'_, str> {
    if value.chars().any(is_bidi_control) {
        value
            .chars()
            .filter(|c| !is_bidi_control(*c))
            .collect::<String>()
            .into()
    } else {
        value.into()
    }
}

/// Refuses text that carries a bidirectional control character.
///
/// # Errors
/// `field` with `invalid-format`.
pub(crate) fn check_bidi(field: &'static str, value: &str) -> Result<(), ValidationError> {
    if value.chars().any(is_bidi_control) {
        return Err(ValidationError::new(
            field,
            codes::INVALID_FORMAT,
            "must not contain bidirectional override or isolate characters (U+202A..U+202E, U+2066..U+2069)",
        ));
    }
    Ok(())
}

/// The text in Unicode normalization form C, so that two spellings of one
/// name (a precomposed é and e + combining acute) are stored, compared and
/// shown as one.
pub(crate) fn nfc(value: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    value.nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_prefixes_paths() {
        let e = ValidationError::new("time", codes::INVALID_FORMAT, "bad");
        assert_eq!(e.within("schedules[2]").field(), "schedules[2].time");
        let e = ValidationError::new("[1]", codes::DUPLICATE, "dup");
        assert_eq!(e.within("days").field(), "days[1]");
    }

    #[test]
    fn text_bounds_are_counted_in_characters_after_trim() {
        assert_eq!(check_text("name", "  é  ", 1, 1).unwrap(), "é");
        assert_eq!(
            check_text("name", "   ", 1, 5).unwrap_err().code(),
            codes::EMPTY
        );
        assert_eq!(
            check_text("name", "abcdef", 1, 5).unwrap_err().code(),
            codes::TOO_LONG
        );
        assert_eq!(
            check_text("name", "a\u{7}b", 1, 5).unwrap_err().code(),
            codes::INVALID_FORMAT
        );
    }
}
