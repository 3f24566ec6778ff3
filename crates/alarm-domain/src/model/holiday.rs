//! Holidays (a date or a yearly month-day, for a country and optional state) and what a user wants done on them.

use jiff::civil::Date;

use super::user::{Country, StateCode};
use crate::error::{ValidationError, check_text, codes};
use crate::ids::HolidayId;
use crate::schedule::civil::days_in_month;

/// When a holiday falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HolidayDate {
    /// One specific date (e.g. an Easter-based holiday of one year).
    Fixed(Date),
    /// Every year on this month and day; February 29 only in leap years.
    Recurring {
        /// 1..=12.
        month: u8,
        /// 1..=31, valid for the month in a leap year.
        day: u8,
    },
}

impl HolidayDate {
    /// A yearly month-day.
    ///
    /// # Errors
    /// `date` with `out-of-range` when the month has no such day (in any year).
    pub fn recurring(month: u8, day: u8) -> Result<Self, ValidationError> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(2000, month) {
            return Err(ValidationError::new(
                "date",
                codes::OUT_OF_RANGE,
                format!("month {month} has no day {day}"),
            ));
        }
        Ok(HolidayDate::Recurring { month, day })
    }

    /// Whether the holiday falls on `date`.
    pub fn matches(&self, date: Date) -> bool {
        match *self {
            HolidayDate::Fixed(d) => d == date,
            HolidayDate::Recurring { month, day } => {
                date.month() as u8 == month && date.day() as u8 == day
            }
        }
    }
}

/// A holiday's name: 1..=100 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HolidayName(String);

impl HolidayName {
    /// # Errors
    /// `name` with `empty`, `too-long` or `invalid-format`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        check_text("name", value, 1, 100).map(Self)
    }
    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A public holiday for a country, or for one state of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    id: HolidayId,
    name: HolidayName,
    date: HolidayDate,
    country: Country,
    state: Option<StateCode>,
    optional: bool,
}

impl Holiday {
    /// Assembles a holiday; `optional` marks an observance that many, but not
    /// all, employers give (Brazil's Carnival, Corpus Christi).
    pub fn new(
        id: HolidayId,
        name: HolidayName,
        date: HolidayDate,
        country: Country,
        state: Option<StateCode>,
        optional: bool,
    ) -> Self {
        Self {
            id,
            name,
            date,
            country,
            state,
            optional,
        }
    }

    /// The id.
    pub fn id(&self) -> HolidayId {
        self.id
    }
    /// The name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }
    /// When it falls.
    pub fn date(&self) -> HolidayDate {
        self.date
    }
    /// The country.
    pub fn country(&self) -> Country {
        self.country
    }
    /// The state, for a regional holiday.
    pub fn state(&self) -> Option<&StateCode> {
        self.state.as_ref()
    }
    /// Whether it is an optional observance.
    pub fn is_optional(&self) -> bool {
        self.optional
    }
    /// Whether it applies to someone in `country` / `state`: national
    /// holidays apply to every state, regional ones only to theirs.
    pub fn applies_to(&self, country: Country, state: Option<&StateCode>) -> bool {
        self.country == country && self.state.as_ref().is_none_or(|s| Some(s) == state)
    }
}

/// A delay of 1..=1440 minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DelayMinutes(u16);

impl DelayMinutes {
    /// # Errors
    /// `minutes` with `out-of-range`.
    pub fn new(minutes: u32) -> Result<Self, ValidationError> {
        if (1..=1440).contains(&minutes) {
            Ok(Self(minutes as u16))
        } else {
            Err(ValidationError::new(
                "minutes",
                codes::OUT_OF_RANGE,
                format!("must be 1..=1440, got {minutes}"),
            ))
        }
    }
    /// The minutes.
    pub fn get(&self) -> u16 {
        self.0
    }
}

/// What an alarm does on a holiday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HolidayPreference {
    /// Ring as usual.
    #[default]
    Fire,
    /// Stay silent.
    Skip,
    /// Ring this much later.
    Delay(DelayMinutes),
}

impl HolidayPreference {
    /// The stable name: `fire`, `skip`, `delay`.
    pub fn as_str(&self) -> &'static str {
        match self {
            HolidayPreference::Fire => "fire",
            HolidayPreference::Skip => "skip",
            HolidayPreference::Delay(_) => "delay",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn recurring_dates_are_validated() {
        assert!(HolidayDate::recurring(2, 29).is_ok());
        assert_eq!(
            HolidayDate::recurring(2, 30).unwrap_err().code(),
            codes::OUT_OF_RANGE
        );
        assert!(HolidayDate::recurring(13, 1).is_err());
        assert!(HolidayDate::recurring(4, 31).is_err());
        let xmas = HolidayDate::recurring(12, 25).unwrap();
        assert!(xmas.matches(date(2031, 12, 25)) && !xmas.matches(date(2031, 12, 24)));
    }

    #[test]
    fn delays_and_scope() {
        assert!(DelayMinutes::new(0).is_err());
        assert!(DelayMinutes::new(1441).is_err());
        assert_eq!(DelayMinutes::new(1440).unwrap().get(), 1440);
        let br = Country::parse("BR").unwrap();
        let sp = StateCode::parse("SP").unwrap();
        let rj = StateCode::parse("RJ").unwrap();
        let regional = Holiday::new(
            HolidayId::generate(),
            HolidayName::parse("Revolução Constitucionalista").unwrap(),
            HolidayDate::recurring(7, 9).unwrap(),
            br,
            Some(sp.clone()),
            false,
        );
        assert!(regional.applies_to(br, Some(&sp)));
        assert!(!regional.applies_to(br, Some(&rj)));
        assert!(!regional.applies_to(br, None));
    }
}
