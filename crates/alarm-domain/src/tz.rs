//! IANA time zones, resolved against a time-zone database the application hands in.
//!
//! The domain never reads `/usr/share/zoneinfo` itself: the app chooses the
//! database (the system copy, else jiff's bundled one) and reports its version.

use std::fmt;

use jiff::tz::{TimeZone, TimeZoneDatabase};

use crate::error::{ValidationError, codes};

/// A validated IANA zone name together with its resolved rules.
///
/// Equality is by name: two values resolved from different database versions
/// still name the same zone.
#[derive(Clone)]
pub struct TimeZoneName {
    name: String,
    zone: TimeZone,
}

impl TimeZoneName {
    /// Looks `name` up in `db`, case-insensitively, keeping the database's
    /// canonical spelling (`america/sao_paulo` → `America/Sao_Paulo`).
    ///
    /// # Errors
    /// `time_zone` with `unknown-time-zone` when the database does not know the
    /// name (fixed offsets such as `+03:00` and POSIX strings are not names).
    pub fn resolve(name: &str, db: &TimeZoneDatabase) -> Result<Self, ValidationError> {
        let trimmed = name.trim();
        let unknown = || {
            ValidationError::new(
                "time_zone",
                codes::UNKNOWN_TIME_ZONE,
                format!(
                    "`{trimmed}` is not an IANA time zone name known to the time-zone database"
                ),
            )
        };
        if trimmed.is_empty() || trimmed.len() > 64 {
            return Err(unknown());
        }
        let zone = db.get(trimmed).map_err(|_| unknown())?;
        let name = zone.iana_name().unwrap_or(trimmed).to_owned();
        Ok(Self { name, zone })
    }

    /// Coordinated Universal Time, which every database has.
    pub fn utc() -> Self {
        Self {
            name: "UTC".to_owned(),
            zone: TimeZone::UTC,
        }
    }

    /// The canonical name.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The zone's rules, for the schedule engine.
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }
}

impl PartialEq for TimeZoneName {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for TimeZoneName {}

impl fmt::Debug for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimeZoneName({})", self.name)
    }
}

impl fmt::Display for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_case_insensitively_to_the_canonical_name() {
        let db = TimeZoneDatabase::bundled();
        let tz = TimeZoneName::resolve(" america/sao_paulo ", &db).unwrap();
        assert_eq!(tz.as_str(), "America/Sao_Paulo");
        assert_eq!(tz, TimeZoneName::resolve("America/Sao_Paulo", &db).unwrap());
    }

    #[test]
    fn rejects_unknown_names_and_offsets() {
        let db = TimeZoneDatabase::bundled();
        for bad in ["Mars/Olympus", "+03:00", "", "EST5EDT,M3.2.0,M11.1.0"] {
            let err = TimeZoneName::resolve(bad, &db).unwrap_err();
            assert_eq!(err.code(), codes::UNKNOWN_TIME_ZONE, "{bad}");
            assert_eq!(err.field(), "time_zone");
        }
    }
}
