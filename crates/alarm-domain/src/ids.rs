//! Typed identifiers: UUID v7 newtypes, so an alarm id can never be passed where a user id is due.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::error::{ValidationError, codes};

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh id from the system clock and the OS random source.
            ///
            /// v7 ids sort by creation time, which keeps B-tree inserts local
            /// and makes cursor pagination by id follow creation order.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// An id from a given Unix time in milliseconds and 10 random
            /// bytes; lets an id source port stay deterministic in tests.
            pub fn from_parts(unix_millis: u64, random: [u8; 10]) -> Self {
                Self(uuid::Builder::from_unix_timestamp_millis(unix_millis, &random).into_uuid())
            }

            /// Accepts a stored or client-supplied UUID.
            ///
            /// # Errors
            /// A UUID that is not version 7 is rejected with `invalid-format`.
            pub fn from_uuid(uuid: Uuid) -> Result<Self, ValidationError> {
                if uuid.get_version_num() == 7 {
                    Ok(Self(uuid))
                } else {
                    Err(ValidationError::new(
                        $field,
                        codes::INVALID_FORMAT,
                        "must be a UUID version 7",
                    ))
                }
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let uuid = Uuid::parse_str(s).map_err(|_| {
                    ValidationError::new($field, codes::INVALID_FORMAT, "must be a UUID")
                })?;
                Self::from_uuid(uuid)
            }
        }
    };
}

define_id!(
    /// Identifies a user account.
    UserId, "user_id"
);
define_id!(
    /// Identifies an alarm.
    AlarmId, "alarm_id"
);
define_id!(
    /// Identifies an exception period.
    ExceptionPeriodId, "exception_period_id"
);
define_id!(
    /// Identifies a holiday.
    HolidayId, "holiday_id"
);
define_id!(
    /// Identifies a routine.
    RoutineId, "routine_id"
);
define_id!(
    /// Identifies a webhook registration.
    WebhookId, "webhook_id"
);
define_id!(
    /// Identifies an alarm event.
    EventId, "event_id"
);
define_id!(
    /// Identifies an audit record.
    AuditId, "audit_id"
);
define_id!(
    /// Identifies a stored blob (an alarm sound, an upload).
    BlobId, "blob_id"
);
define_id!(
    /// Identifies an API key.
    ApiKeyId, "api_key_id"
);
define_id!(
    /// Identifies a resumable upload (the blob it becomes has the same UUID).
    UploadId, "upload_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_v7_and_ordered_by_time() {
        let a = AlarmId::from_parts(1_000, [0; 10]);
        let b = AlarmId::from_parts(2_000, [0; 10]);
        assert!(a < b);
        assert_eq!(AlarmId::generate().as_uuid().get_version_num(), 7);
    }

    #[test]
    fn non_v7_uuids_are_rejected_with_the_field() {
        let v4 = "550e8400-e29b-41d4-a716-446655440000";
        let err = v4.parse::<UserId>().unwrap_err();
        assert_eq!(err.field(), "user_id");
        assert_eq!(err.code(), codes::INVALID_FORMAT);
        assert!("not-a-uuid".parse::<UserId>().is_err());
        let id = UserId::generate();
        assert_eq!(id.to_string().parse::<UserId>().unwrap(), id);
    }
}
