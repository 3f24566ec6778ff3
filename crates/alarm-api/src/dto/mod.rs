//! HTTP shapes (snake_case JSON) and their conversions to and from the domain, one module per resource; nothing here leaves the crate's API surface.
//!
//! Answers never carry `null`: every response shape with an optional member
//! is `#[oai(skip_serializing_if_is_none)]`, so a member without a value is
//! left out, which is what the spec's optional (not required, not nullable)
//! properties promise a generated client. OpenAPI 3.0's `nullable` was the
//! other way, but on a `$ref` member it sits beside an `allOf`, where tools
//! disagree on what it means.

mod accounts;
mod alarms;
mod calendar;
mod deliveries;
mod events;
mod occurrences;
mod ringing;
mod schedules;
mod webhooks;

pub use accounts::{
    LoginInput, PasswordChangeInput, ProfileInput, RefreshInput, RegisterInput, TokenView, UserView,
};
pub use alarms::{
    AlarmInput, AlarmPage, AlarmView, EscalationDto, EscalationView, SnoozeDto, SnoozeView,
};
pub(crate) use calendar::date;
pub use calendar::{
    ExceptionPeriodInput, ExceptionPeriodList, ExceptionPeriodView, HolidayInput, HolidayList,
    HolidayPreferencesDto, HolidayView, PreferenceDto, PreferenceOverrideDto, StoredHolidayView,
};
pub use deliveries::{DeliveryPage, DeliveryView};
pub use events::{EventPage, EventView};
pub use occurrences::{AdjustmentView, OccurrenceList, OccurrenceView};
pub use ringing::{RingingList, RingingView};
pub use schedules::{DailySchedule, OnceSchedule, RuleSchedule, ScheduleDto, WeeklySchedule};
pub use webhooks::{WebhookInput, WebhookList, WebhookSecretView, WebhookUpdate, WebhookView};
