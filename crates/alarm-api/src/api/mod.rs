//! The operations, one `#[OpenApi]` struct per resource, composed into one service with the tags below.

pub(crate) mod accounts;
pub(crate) mod alarms;
pub(crate) mod api_keys;
pub(crate) mod calendar;
pub(crate) mod health;
pub(crate) mod keys;
pub(crate) mod ringing;
pub(crate) mod routines;
pub(crate) mod sounds;
pub(crate) mod uploads;
pub(crate) mod webhooks;

use poem_openapi::Tags;

/// Groups of operations in the docs.
#[derive(Tags)]
pub(crate) enum ApiTags {
    /// Registration, login, token refresh and logout.
    Auth,
    /// Alarms: schedules, occurrences, history.
    Alarms,
    /// The in-app channel: what is ringing now, snooze and dismiss.
    Ringing,
    /// Exception periods, holidays and holiday preferences: the days alarms stay silent or move.
    Calendar,
    /// Routines: named, ordered actions that start when an alarm they are attached to rings.
    Routines,
    /// Webhook endpoints: signed deliveries of alarm events, their secrets and delivery history.
    Webhooks,
    /// API keys for the webhook endpoints: issue, list, delete, rotate.
    ApiKeys,
    /// Resumable uploads (tus 1.0) of alarm sounds, up to 100 MB.
    Uploads,
    /// Sounds: the audio files uploads became, for alarms to ring with.
    Sounds,
    /// Liveness, readiness and dependency health for operators.
    Operations,
}
