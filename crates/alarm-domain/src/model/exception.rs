//! Exception periods: date ranges (vacation, travel…) during which a user's alarms stay silent.

use jiff::civil::Date;

use crate::error::{ValidationError, check_text, codes};
use crate::ids::{ExceptionPeriodId, UserId};

/// Why the user is away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExceptionKind {
    /// Time off.
    Vacation,
    /// A personal holiday.
    Holiday,
    /// Away from home.
    Travel,
    /// Planned maintenance.
    Maintenance,
    /// Sick or medical leave.
    MedicalLeave,
    /// Working from home.
    RemoteWork,
    /// Anything else.
    Custom,
}

const KINDS: [(ExceptionKind, &str); 7] = [
    (ExceptionKind::Vacation, "vacation"),
    (ExceptionKind::Holiday, "holiday"),
    (ExceptionKind::Travel, "travel"),
    (ExceptionKind::Maintenance, "maintenance"),
    (ExceptionKind::MedicalLeave, "medical-leave"),
    (ExceptionKind::RemoteWork, "remote-work"),
    (ExceptionKind::Custom, "custom"),
];

impl ExceptionKind {
    /// The stable name, e.g. `medical-leave`.
    pub fn as_str(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("custom", |(_, n)| n)
    }

    /// # Errors
    /// `type` with `unknown-value`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        KINDS
            .iter()
            .find(|(_, n)| *n == value)
            .map(|(k, _)| *k)
            .ok_or_else(|| {
                ValidationError::new(
                    "type",
                    codes::UNKNOWN_VALUE,
                    format!(
                        "`{value}` is not one of {}",
                        KINDS.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
                    ),
                )
            })
    }
}

/// The longest exception period, in days (both ends included).
pub const MAX_EXCEPTION_DAYS: i32 = 366;

/// A named, inclusive range of local dates on which the owner's alarms are suppressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionPeriod {
    id: ExceptionPeriodId,
    owner: UserId,
    name: String,
    kind: ExceptionKind,
    start: Date,
    end: Date,
}

impl ExceptionPeriod {
    /// Validates the name (1..=100 characters) and the range (start <= end,
    /// at most 366 days including both ends).
    ///
    /// # Errors
    /// `name`, or `end` with `inverted-range` / `out-of-range`.
    pub fn new(
        id: ExceptionPeriodId,
        owner: UserId,
        name: &str,
        kind: ExceptionKind,
        start: Date,
        end: Date,
    ) -> Result<Self, ValidationError> {
        let name = check_text("name", name, 1, 100)?;
        if end < start {
            return Err(ValidationError::new(
                "end",
                codes::INVERTED_RANGE,
                "must be on or after start",
            ));
        }
        let days = crate::schedule::civil::day_of(end) - crate::schedule::civil::day_of(start) + 1;
        if days > MAX_EXCEPTION_DAYS {
            return Err(ValidationError::new(
                "end",
                codes::OUT_OF_RANGE,
                format!("the period spans {days} days; at most {MAX_EXCEPTION_DAYS} are allowed"),
            ));
        }
        Ok(Self {
            id,
            owner,
            name,
            kind,
            start,
            end,
        })
    }

    /// The id.
    pub fn id(&self) -> ExceptionPeriodId {
        self.id
    }
    /// The owning user.
    pub fn owner(&self) -> UserId {
        self.owner
    }
    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The kind.
    pub fn kind(&self) -> ExceptionKind {
        self.kind
    }
    /// First suppressed local date.
    pub fn start(&self) -> Date {
        self.start
    }
    /// Last suppressed local date (inclusive).
    pub fn end(&self) -> Date {
        self.end
    }
    /// Whether `date` is inside the period.
    pub fn contains(&self, date: Date) -> bool {
        (self.start..=self.end).contains(&date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn ranges_are_checked() {
        let (id, owner) = (ExceptionPeriodId::generate(), UserId::generate());
        let ok = ExceptionPeriod::new(
            id,
            owner,
            "Trip",
            ExceptionKind::Travel,
            date(2024, 1, 1),
            date(2024, 12, 31),
        );
        assert!(ok.is_ok(), "2024 has 366 days");
        let long = ExceptionPeriod::new(
            id,
            owner,
            "Trip",
            ExceptionKind::Travel,
            date(2023, 1, 1),
            date(2024, 1, 2),
        );
        assert_eq!(long.unwrap_err().code(), codes::OUT_OF_RANGE);
        let inverted = ExceptionPeriod::new(
            id,
            owner,
            "Trip",
            ExceptionKind::Travel,
            date(2024, 1, 2),
            date(2024, 1, 1),
        );
        assert_eq!(inverted.unwrap_err().field(), "end");
        let one = ExceptionPeriod::new(
            id,
            owner,
            "Day",
            ExceptionKind::Custom,
            date(2024, 1, 2),
            date(2024, 1, 2),
        )
        .unwrap();
        assert!(one.contains(date(2024, 1, 2)) && !one.contains(date(2024, 1, 3)));
    }

    #[test]
    fn kinds_round_trip() {
        for (kind, name) in KINDS {
            assert_eq!(ExceptionKind::parse(name).unwrap(), kind);
            assert_eq!(kind.as_str(), name);
        }
        assert_eq!(
            ExceptionKind::parse("sabbatical").unwrap_err().field(),
            "type"
        );
    }
}
