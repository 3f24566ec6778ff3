//! Calendar shapes: exception periods (input, view, list) with their dates as `YYYY-MM-DD`.

use alarm_domain::error::{ValidationError, codes};
use alarm_domain::jiff::civil::Date;
use alarm_domain::model::{ExceptionKind, ExceptionPeriod};
use poem_openapi::Object;
use serde::Deserialize;

/// A calendar date of a body, named `field` in errors.
pub(crate) fn date(field: &str, text: &str) -> Result<Date, ValidationError> {
    // Bounded before parsing: a date is ten characters.
    if text.len() != 10 {
        return Err(ValidationError::new(
            field.to_owned(),
            codes::INVALID_FORMAT,
            "must be a date written YYYY-MM-DD",
        ));
    }
    text.parse::<Date>().map_err(|_| {
        ValidationError::new(
            field.to_owned(),
            codes::INVALID_FORMAT,
            format!("`{text}` is not a date written YYYY-MM-DD"),
        )
    })
}

/// A stretch of days on which the caller's alarms stay silent.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionPeriodInput {
    /// 1..=100 characters, e.g. "Summer in Lisbon".
    pub name: String,
    /// `vacation`, `holiday`, `travel`, `maintenance`, `medical-leave`,
    /// `remote-work` or `custom`.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    /// First silent day, `YYYY-MM-DD`, in each alarm's own time zone.
    pub start: String,
    /// Last silent day (inclusive), `YYYY-MM-DD`; at most 366 days after `start`.
    pub end: String,
}

impl ExceptionPeriodInput {
    /// The kind and the two dates; each error names its field.
    pub(crate) fn to_domain(&self) -> Result<(ExceptionKind, Date, Date), ValidationError> {
        Ok((
            ExceptionKind::parse(&self.kind)?,
            date("start", &self.start)?,
            date("end", &self.end)?,
        ))
    }
}

/// An exception period.
#[derive(Clone, Object)]
pub struct ExceptionPeriodView {
    /// Id (UUID v7).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its kind.
    #[oai(rename = "type")]
    pub kind: String,
    /// First silent day, `YYYY-MM-DD`.
    pub start: String,
    /// Last silent day (inclusive), `YYYY-MM-DD`.
    pub end: String,
}

impl ExceptionPeriodView {
    /// The view of `p`.
    pub fn new(p: &ExceptionPeriod) -> Self {
        Self {
            id: p.id().to_string(),
            name: p.name().to_owned(),
            kind: p.kind().as_str().to_owned(),
            start: p.start().to_string(),
            end: p.end().to_string(),
        }
    }
}

/// The caller's exception periods, by start date (at most 100, so no pages).
#[derive(Clone, Object)]
pub struct ExceptionPeriodList {
    /// The periods.
    pub items: Vec<ExceptionPeriodView>,
}
