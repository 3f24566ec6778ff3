//! Entities and value types: alarms, exception periods, holidays, routines, webhooks, events, audit.

mod alarm;
mod api_key;
mod audit;
pub mod brazil;
mod erasure;
mod exception;
mod holiday;
mod routine;
mod sound;
mod upload;
mod user;
mod webhook;

pub use alarm::{
    Alarm, AlarmDraft, AlarmName, AlarmVersion, Channel, ChannelSet, Description, EscalationPolicy,
    MAX_DESCRIPTION_CHARS, MAX_SCHEDULES, Schedules, SnoozePolicy,
};
pub use api_key::{ApiKey, ApiKeyName, ApiKeyScope, ApiKeyScopes, DEAD_KEY_KEPT};
pub use audit::{AlarmEvent, AlarmEventKind, AuditRecord};
pub use erasure::{Owned, Treatment};
pub use exception::{ExceptionKind, ExceptionPeriod, MAX_EXCEPTION_DAYS};
pub use holiday::{DelayMinutes, Holiday, HolidayDate, HolidayName, HolidayPreference};
pub use routine::{MAX_ROUTINE_ACTIONS, Routine, RoutineAction, RoutineName};
pub use sound::{Sound, SoundQuota, SoundUsage, sound_deletable, sound_present};
pub use upload::{
    MAX_FILENAME_CHARS, MAX_MEDIA_TYPE_CHARS, MAX_UPLOAD_BYTES, MAX_UPLOAD_PARTS, SNIFF_BYTES,
    UPLOAD_PART_BYTES, Upload, UploadFile, UploadPart, UploadProgress, UploadRefused, audio_type,
};
pub use user::{Country, DisplayName, Email, Locale, Role, StateCode, User, login_key};
pub use webhook::{
    MAX_WEBHOOK_ALARM_FILTER, PreviousSecret, WebhookEvent, WebhookEventSet, WebhookRegistration,
    WebhookUrl,
};
