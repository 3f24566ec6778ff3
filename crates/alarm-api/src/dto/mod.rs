//! HTTP shapes (snake_case JSON) and their conversions to and from the domain, one module per resource; nothing here leaves the crate's API surface.
//!
//! Answers never carry `null`: every response shape with an optional member
//! is `#[oai(skip_serializing_if_is_none)]`, so a member without a value is
//! left out, which is what the spec's optional (not required, not nullable)
//! properties promise a generated client. OpenAPI 3.0's `nullable` was the
//! other way, but on a `$ref` member it sits beside an `allOf`, where tools
//! disagree on what it means.

use alarm_domain::error::{ValidationError, codes};
use alarm_domain::jiff::civil::Date;

mod accounts;
mod alarms;
mod api_keys;
mod calendar;
mod deliveries;
mod event_types;
mod events;
mod occurrences;
mod ringing;
mod routines;
mod schedules;
mod sounds;
mod webhooks;

pub use accounts::{
    AccountDeletionInput, LoginInput, PasswordChangeInput, ProfileInput, RefreshInput,
    RegisterInput, ResetConfirmInput, ResetRequestInput, TokenView, UserView, VerifyInput,
};
pub use alarms::{
    AlarmInput, AlarmPage, AlarmView, EscalationDto, EscalationView, SnoozeDto, SnoozeView,
};
pub use api_keys::{ApiKeyInput, ApiKeyList, ApiKeyRotation, ApiKeyView, NewApiKeyView};
pub use calendar::{
    ExceptionPeriodInput, ExceptionPeriodList, ExceptionPeriodView, HolidayInput, HolidayList,
    HolidayPreferencesDto, HolidayView, PreferenceDto, PreferenceOverrideDto, StoredHolidayView,
};
pub use deliveries::{DeliveryPage, DeliveryView};
pub use event_types::{
    WebhookEventBody, WebhookEventData, WebhookEventTypeList, WebhookEventTypeView, catalogue,
};
pub use events::{EventPage, EventView, StartedRoutineView};
pub use occurrences::{AdjustmentView, OccurrenceList, OccurrenceView};
pub use ringing::{RingingList, RingingView};
pub use routines::{AlarmRoutinesInput, RoutineInput, RoutineList, RoutineView};
pub use schedules::{DailySchedule, OnceSchedule, RuleSchedule, ScheduleDto, WeeklySchedule};
pub use sounds::{SoundList, SoundView};
pub(crate) use webhooks::alarm_filter;
pub use webhooks::{WebhookInput, WebhookList, WebhookSecretView, WebhookUpdate, WebhookView};

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
