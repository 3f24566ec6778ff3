//! Calendar shapes: exception periods (input, view, list) with their dates as `YYYY-MM-DD`, holiday preferences, the holiday list and custom holidays.

use alarm_domain::error::{ValidationError, codes};
use alarm_domain::ids::HolidayId;
use alarm_domain::jiff::civil::Date;

use super::date;
use alarm_domain::model::{
    Country, DelayMinutes, ExceptionKind, ExceptionPeriod, Holiday, HolidayDate, HolidayPreference,
    StateCode,
};
use alarm_domain::ports::HolidayPreferences;
use alarm_domain::services::ListedHoliday;
use poem_openapi::Object;
use serde::Deserialize;

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

/// What the caller's alarms do on a holiday.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferenceDto {
    /// `fire` (ring as usual), `skip` (stay silent) or `delay` (ring later).
    pub action: String,
    /// For `delay` only: 1..=1440 minutes.
    #[oai(skip_serializing_if_is_none)]
    #[serde(default)]
    pub minutes: Option<u32>,
}

/// What the caller's alarms do on one holiday.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferenceOverrideDto {
    /// The holiday (an id from `GET /holidays`).
    pub holiday_id: String,
    /// `fire`, `skip` or `delay`.
    pub action: String,
    /// For `delay` only: 1..=1440 minutes.
    #[oai(skip_serializing_if_is_none)]
    #[serde(default)]
    pub minutes: Option<u32>,
}

/// The caller's holiday preferences: one for every holiday, and overrides
/// for some (at most 100).
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolidayPreferencesDto {
    /// What happens on holidays without an override.
    pub default: PreferenceDto,
    /// Per-holiday exceptions to `default`.
    #[oai(default)]
    #[serde(default)]
    pub overrides: Vec<PreferenceOverrideDto>,
}

/// One preference from its action and minutes; errors name `{at}.action`
/// or `{at}.minutes`.
fn preference(
    action: &str,
    minutes: Option<u32>,
    at: &str,
) -> Result<HolidayPreference, ValidationError> {
    let minutes_field = format!("{at}.minutes");
    match (action, minutes) {
        ("fire" | "skip", Some(_)) => Err(ValidationError::new(
            minutes_field,
            codes::NOT_SUPPORTED,
            "only `delay` takes minutes",
        )),
        ("fire", None) => Ok(HolidayPreference::Fire),
        ("skip", None) => Ok(HolidayPreference::Skip),
        ("delay", None) => Err(ValidationError::new(
            minutes_field,
            codes::EMPTY,
            "`delay` needs minutes, 1..=1440",
        )),
        ("delay", Some(m)) => DelayMinutes::new(m)
            .map(HolidayPreference::Delay)
            .map_err(|e| ValidationError::new(minutes_field, e.code(), e.message().to_owned())),
        (other, _) => Err(ValidationError::new(
            format!("{at}.action"),
            codes::UNKNOWN_VALUE,
            format!("`{other}` is not one of fire, skip, delay"),
        )),
    }
}

fn preference_dto(p: HolidayPreference) -> (String, Option<u32>) {
    let minutes = match p {
        HolidayPreference::Delay(m) => Some(u32::from(m.get())),
        HolidayPreference::Fire | HolidayPreference::Skip => None,
    };
    (p.as_str().to_owned(), minutes)
}

impl HolidayPreferencesDto {
    /// The domain preferences; each error names its field
    /// (`overrides[2].minutes`).
    pub(crate) fn to_domain(&self) -> Result<HolidayPreferences, ValidationError> {
        // Bounded before each item is parsed (the service checks it again).
        if self.overrides.len() > alarm_domain::services::MAX_HOLIDAY_OVERRIDES {
            return Err(ValidationError::new(
                "overrides",
                codes::BAD_COUNT,
                format!(
                    "at most {} overrides",
                    alarm_domain::services::MAX_HOLIDAY_OVERRIDES
                ),
            ));
        }
        let default = preference(&self.default.action, self.default.minutes, "default")?;
        let overrides = self
            .overrides
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let at = format!("overrides[{i}]");
                let id: HolidayId = o.holiday_id.parse().map_err(|_| {
                    ValidationError::new(
                        format!("{at}.holiday_id"),
                        codes::INVALID_FORMAT,
                        "not a holiday id",
                    )
                })?;
                Ok((id, preference(&o.action, o.minutes, &at)?))
            })
            .collect::<Result<Vec<_>, ValidationError>>()?;
        Ok(HolidayPreferences { default, overrides })
    }

    /// The view of `p`.
    pub fn new(p: &HolidayPreferences) -> Self {
        let (action, minutes) = preference_dto(p.default);
        Self {
            default: PreferenceDto { action, minutes },
            overrides: p
                .overrides
                .iter()
                .map(|(id, pref)| {
                    let (action, minutes) = preference_dto(*pref);
                    PreferenceOverrideDto {
                        holiday_id: id.to_string(),
                        action,
                        minutes,
                    }
                })
                .collect(),
        }
    }
}

/// One day of the holiday list.
#[derive(Clone, Object)]
pub struct HolidayView {
    /// Id, for `holiday-preferences` overrides; a built-in holiday has the
    /// same id every year.
    pub id: String,
    /// Its name (the official Portuguese one for built-in holidays).
    pub name: String,
    /// Its date in the year asked for, `YYYY-MM-DD`.
    pub date: String,
    /// `national` (public holiday), `optional` (ponto facultativo, such as
    /// Carnival and Corpus Christi) or `state` (a state's own holiday).
    pub status: String,
    /// The state of a state holiday.
    #[oai(skip_serializing_if_is_none)]
    pub state: Option<String>,
    /// `builtin` (the built-in calendar) or `custom` (added by an administrator).
    pub source: String,
}

impl HolidayView {
    /// The view of one listed day.
    pub fn new(h: &ListedHoliday) -> Self {
        Self {
            id: h.id.to_string(),
            name: h.name.clone(),
            date: h.date.to_string(),
            status: h.observance.as_str().to_owned(),
            state: h.state.clone(),
            source: if h.builtin { "builtin" } else { "custom" }.to_owned(),
        }
    }
}

/// The holidays of one year for one country and state, by date.
#[derive(Clone, Object)]
pub struct HolidayList {
    /// The year.
    pub year: i32,
    /// The country.
    pub country: String,
    /// The state, when one was asked for.
    #[oai(skip_serializing_if_is_none)]
    pub state: Option<String>,
    /// The days.
    pub items: Vec<HolidayView>,
}

/// A custom holiday as an administrator writes it: one `date`, or a
/// `month` and `day` that recur every year.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolidayInput {
    /// 1..=100 characters.
    pub name: String,
    /// A one-time date, `YYYY-MM-DD` (leave out `month` and `day`).
    #[serde(default)]
    pub date: Option<String>,
    /// For a yearly holiday: 1..=12 (with `day`, without `date`).
    #[serde(default)]
    pub month: Option<u8>,
    /// For a yearly holiday: 1..=31.
    #[serde(default)]
    pub day: Option<u8>,
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// A state code: the holiday applies to that state only.
    #[serde(default)]
    pub state: Option<String>,
    /// An optional observance (default false).
    #[serde(default)]
    pub optional: bool,
}

impl HolidayInput {
    /// The date rule, country and state; each error names its field.
    pub(crate) fn to_domain(
        &self,
    ) -> Result<(HolidayDate, Country, Option<StateCode>), ValidationError> {
        let date = match (&self.date, self.month, self.day) {
            (Some(d), None, None) => HolidayDate::Fixed(date("date", d)?),
            (None, Some(m), Some(d)) => HolidayDate::recurring(m, d)?,
            _ => {
                return Err(ValidationError::new(
                    "date",
                    codes::BAD_COUNT,
                    "give either `date`, or `month` and `day`",
                ));
            }
        };
        let state = self.state.as_deref().map(StateCode::parse).transpose()?;
        Ok((date, Country::parse(&self.country)?, state))
    }
}

/// A custom holiday as stored.
#[derive(Clone, Object)]
pub struct StoredHolidayView {
    /// Id (UUID v7).
    pub id: String,
    /// Its name.
    pub name: String,
    /// A one-time date, `YYYY-MM-DD`.
    #[oai(skip_serializing_if_is_none)]
    pub date: Option<String>,
    /// The month of a yearly holiday.
    #[oai(skip_serializing_if_is_none)]
    pub month: Option<u8>,
    /// The day of a yearly holiday.
    #[oai(skip_serializing_if_is_none)]
    pub day: Option<u8>,
    /// The country.
    pub country: String,
    /// The state, for a state holiday.
    #[oai(skip_serializing_if_is_none)]
    pub state: Option<String>,
    /// An optional observance.
    pub optional: bool,
}

impl StoredHolidayView {
    /// The view of `h`.
    pub fn new(h: &Holiday) -> Self {
        let (date, month, day) = match h.date() {
            HolidayDate::Fixed(d) => (Some(d.to_string()), None, None),
            HolidayDate::Recurring { month, day } => (None, Some(month), Some(day)),
        };
        Self {
            id: h.id().to_string(),
            name: h.name().to_owned(),
            date,
            month,
            day,
            country: h.country().as_str().to_owned(),
            state: h.state().map(|s| s.as_str().to_owned()),
            optional: h.is_optional(),
        }
    }
}
