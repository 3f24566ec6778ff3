//! HTTP shapes (snake_case JSON) and their conversions to and from the domain; nothing here leaves the crate's API surface.
//!
//! Answers never carry `null`: every response shape with an optional member
//! is `#[oai(skip_serializing_if_is_none)]`, so a member without a value is
//! left out, which is what the spec's optional (not required, not nullable)
//! properties promise a generated client. OpenAPI 3.0's `nullable` was the
//! other way, but on a `$ref` member it sits beside an `allOf`, where tools
//! disagree on what it means.

use alarm_domain::error::ValidationError;
use alarm_domain::jiff::Timestamp;
use alarm_domain::jiff::civil::{Date, DateTime, Time};
use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::model::{
    Alarm, AlarmDraft, AlarmEvent, AlarmName, Channel, ChannelSet, Description, EscalationPolicy,
    Schedules, SnoozePolicy, User, WebhookEvent, WebhookEventSet, WebhookRegistration, WebhookUrl,
};
use alarm_domain::ports::{OutboxItem, SendStatus};
use alarm_domain::schedule::{Occurrence, RecurrenceRule, Schedule, WallTime, WeekdaySet};
use alarm_domain::services::NewWebhook;
use alarm_domain::tz::TimeZoneName;
use poem_openapi::{Object, Union};
use secrecy::ExposeSecret;
use serde::Deserialize;

/// `HH:MM`, or `HH:MM:SS` when the seconds are not zero.
pub(crate) fn wall(t: Time) -> String {
    if t.second() == 0 {
        format!("{:02}:{:02}", t.hour(), t.minute())
    } else {
        format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
    }
}

fn local_date_time(dt: DateTime) -> String {
    format!("{}T{}", dt.date(), wall(dt.time()))
}

/// A one-off alarm on a local date.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnceSchedule {
    /// Local date `YYYY-MM-DD`.
    pub date: String,
    /// Local wall time `HH:MM[:SS]`.
    pub time: String,
}

/// Every day at a local wall time.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DailySchedule {
    /// Local wall time `HH:MM[:SS]`.
    pub time: String,
}

/// On some weekdays at a local wall time.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklySchedule {
    /// Days: `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`.
    pub days: Vec<String>,
    /// Local wall time `HH:MM[:SS]`.
    pub time: String,
}

/// An RFC 5545 recurrence rule from a local start.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSchedule {
    /// The rule, e.g. `FREQ=MONTHLY;BYDAY=-1FR`.
    pub rrule: String,
    /// Local start `YYYY-MM-DDTHH:MM[:SS]`.
    pub dtstart: String,
}

/// When an alarm rings, in its zone's local time.
///
/// The `kind` member picks the variant. Unknown members are refused per
/// variant by serde (which consumes `kind` before the variant sees the
/// object), not by poem-openapi, whose `deny_unknown_fields` on a variant
/// would also refuse `kind` itself.
#[derive(Debug, Clone, Union, Deserialize)]
#[oai(discriminator_name = "kind")]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScheduleDto {
    /// Once.
    #[oai(mapping = "once")]
    Once(OnceSchedule),
    /// Daily.
    #[oai(mapping = "daily")]
    Daily(DailySchedule),
    /// Weekly.
    #[oai(mapping = "weekly")]
    Weekly(WeeklySchedule),
    /// A recurrence rule.
    #[oai(mapping = "rule")]
    Rule(RuleSchedule),
}

impl ScheduleDto {
    fn to_domain(&self) -> Result<Schedule, ValidationError> {
        Ok(match self {
            ScheduleDto::Once(s) => Schedule::Once {
                date: s.date.trim().parse::<Date>().map_err(|_| {
                    ValidationError::new(
                        "date",
                        alarm_domain::error::codes::INVALID_FORMAT,
                        format!("`{}` is not a date YYYY-MM-DD", s.date),
                    )
                })?,
                time: WallTime::parse(&s.time)?,
            },
            ScheduleDto::Daily(s) => Schedule::Daily {
                time: WallTime::parse(&s.time)?,
            },
            ScheduleDto::Weekly(s) => Schedule::Weekly {
                days: WeekdaySet::parse(&s.days)?,
                time: WallTime::parse(&s.time)?,
            },
            ScheduleDto::Rule(s) => {
                Schedule::Rule(Box::new(RecurrenceRule::parse(&s.rrule, &s.dtstart)?))
            }
        })
    }

    fn from_domain(s: &Schedule) -> Self {
        match s {
            Schedule::Once { date, time } => ScheduleDto::Once(OnceSchedule {
                date: date.to_string(),
                time: wall(time.as_civil()),
            }),
            Schedule::Daily { time } => ScheduleDto::Daily(DailySchedule {
                time: wall(time.as_civil()),
            }),
            Schedule::Weekly { days, time } => ScheduleDto::Weekly(WeeklySchedule {
                days: days.names().into_iter().map(str::to_owned).collect(),
                time: wall(time.as_civil()),
            }),
            Schedule::Rule(r) => ScheduleDto::Rule(RuleSchedule {
                rrule: r.as_str().to_owned(),
                dtstart: local_date_time(r.dtstart()),
            }),
        }
    }
}

/// Snooze settings.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnoozeDto {
    /// Minutes until the alarm rings again (1..=60, default 5).
    #[serde(default = "default_snooze_minutes")]
    #[oai(default = "default_snooze_minutes")]
    pub minutes: u32,
    /// Snoozes allowed per occurrence (0..=10, default 3).
    #[serde(default = "default_max_snoozes")]
    #[oai(default = "default_max_snoozes")]
    pub max_snoozes: u32,
}

fn default_snooze_minutes() -> u32 {
    5
}
fn default_max_snoozes() -> u32 {
    3
}

/// Escalation when an occurrence is not answered.
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationDto {
    /// Highest escalation level (0..=3, default 3; 0 turns escalation off).
    #[serde(default = "default_max_level")]
    #[oai(default = "default_max_level")]
    pub max_level: u32,
    /// Minutes from the ring to level 1 (1..=1440, default 5).
    #[serde(default = "default_first_delay")]
    #[oai(default = "default_first_delay")]
    pub first_delay_minutes: u32,
    /// Minutes between further levels (1..=1440, default 10).
    #[serde(default = "default_repeat_delay")]
    #[oai(default = "default_repeat_delay")]
    pub repeat_delay_minutes: u32,
}

fn default_max_level() -> u32 {
    3
}
fn default_first_delay() -> u32 {
    5
}
fn default_repeat_delay() -> u32 {
    10
}

/// An alarm as written by the client (create and full replacement).
#[derive(Debug, Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmInput {
    /// 1..=100 characters.
    pub name: String,
    /// Up to 1000 characters (default empty).
    #[serde(default)]
    pub description: Option<String>,
    /// Default `true`.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// IANA zone name, e.g. `America/Sao_Paulo`.
    pub time_zone: String,
    /// 1..=16 schedules.
    pub schedules: Vec<ScheduleDto>,
    /// Default 5 minutes, 3 snoozes.
    #[serde(default)]
    pub snooze: Option<SnoozeDto>,
    /// Default 3 levels after 5 and then every 10 minutes.
    #[serde(default)]
    pub escalation: Option<EscalationDto>,
    /// `in-app`, `email`, `webhook`, `push` (default `["in-app"]`).
    #[serde(default)]
    pub channels: Option<Vec<String>>,
}

impl AlarmInput {
    /// The domain draft; every error names its field path.
    pub(crate) fn to_draft(&self, tzdb: &TimeZoneDatabase) -> Result<AlarmDraft, ValidationError> {
        let schedules = self
            .schedules
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.to_domain()
                    .map_err(|e| e.within(&format!("schedules[{i}]")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let channels = match &self.channels {
            None => ChannelSet::default(),
            Some(names) => {
                let parsed = names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        Channel::parse(n).map_err(|e| {
                            ValidationError::new(
                                format!("channels[{i}]"),
                                e.code(),
                                e.message().to_owned(),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                ChannelSet::new(&parsed)?
            }
        };
        let snooze = match &self.snooze {
            None => SnoozePolicy::default(),
            Some(s) => SnoozePolicy::new(s.minutes, s.max_snoozes)?,
        };
        let escalation = match &self.escalation {
            None => EscalationPolicy::default(),
            Some(e) => {
                EscalationPolicy::new(e.max_level, e.first_delay_minutes, e.repeat_delay_minutes)?
            }
        };
        Ok(AlarmDraft {
            name: AlarmName::parse(&self.name)?,
            description: Description::parse(self.description.as_deref().unwrap_or(""))?,
            enabled: self.enabled.unwrap_or(true),
            time_zone: TimeZoneName::resolve(&self.time_zone, tzdb)?,
            schedules: Schedules::new(schedules)?,
            snooze,
            escalation,
            channels,
            sound: None,
        })
    }
}

/// Snooze settings as stored.
#[derive(Debug, Clone, Object)]
pub struct SnoozeView {
    /// Minutes.
    pub minutes: u32,
    /// Snoozes per occurrence.
    pub max_snoozes: u32,
}

/// Escalation settings as stored.
#[derive(Debug, Clone, Object)]
pub struct EscalationView {
    /// Highest level.
    pub max_level: u32,
    /// Minutes to level 1.
    pub first_delay_minutes: u32,
    /// Minutes between levels.
    pub repeat_delay_minutes: u32,
}

/// An alarm.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AlarmView {
    /// Id (UUID v7).
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Whether it rings.
    pub enabled: bool,
    /// IANA zone.
    pub time_zone: String,
    /// Schedules.
    pub schedules: Vec<ScheduleDto>,
    /// Snooze settings.
    pub snooze: SnoozeView,
    /// Escalation settings.
    pub escalation: EscalationView,
    /// Channels.
    pub channels: Vec<String>,
    /// Version (also the ETag).
    pub version: u64,
    /// Creation instant (UTC).
    pub created_at: String,
    /// Last change (UTC).
    pub updated_at: String,
    /// When it rings next (UTC); absent when it never rings again or is disabled.
    pub next_fire_at: Option<String>,
}

impl AlarmView {
    pub(crate) fn new(a: &Alarm, next_fire_at: Option<Timestamp>) -> Self {
        let d = a.draft();
        Self {
            id: a.id().to_string(),
            name: d.name.as_str().to_owned(),
            description: d.description.as_str().to_owned(),
            enabled: d.enabled,
            time_zone: d.time_zone.as_str().to_owned(),
            schedules: a.schedules().iter().map(ScheduleDto::from_domain).collect(),
            snooze: SnoozeView {
                minutes: u32::from(d.snooze.minutes()),
                max_snoozes: u32::from(d.snooze.max_snoozes()),
            },
            escalation: EscalationView {
                max_level: u32::from(d.escalation.max_level()),
                first_delay_minutes: u32::from(d.escalation.first_delay_minutes()),
                repeat_delay_minutes: u32::from(d.escalation.repeat_delay_minutes()),
            },
            channels: d.channels.iter().map(|c| c.as_str().to_owned()).collect(),
            version: a.version().get(),
            created_at: a.created_at().to_string(),
            updated_at: a.updated_at().to_string(),
            next_fire_at: next_fire_at.map(|t| t.to_string()),
        }
    }
}

/// A page of alarms.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AlarmPage {
    /// The alarms, oldest first.
    pub items: Vec<AlarmView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// How an occurrence's instant differs from its nominal wall time.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AdjustmentView {
    /// The wall time fell in a daylight-saving gap and fires this many
    /// seconds later on the clock.
    pub dst_gap_shift_seconds: Option<i64>,
    /// A holiday preference delayed the fire by this many minutes.
    pub holiday_delay_minutes: Option<u32>,
    /// The holiday behind the delay.
    pub holiday: Option<String>,
    /// A delayed occurrence reached this one and was merged into it.
    pub absorbed_delayed: bool,
}

/// One time the alarm rings (or would, when suppressed).
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OccurrenceView {
    /// Nominal local date.
    pub local_date: String,
    /// Nominal local wall time.
    pub local_time: String,
    /// The instant it rings (UTC, RFC 3339 with `Z`).
    pub fire_at: String,
    /// Which schedules (0-based) produced it.
    pub schedule_indexes: Vec<u32>,
    /// Absent when the instant is the nominal wall time.
    pub adjustment: Option<AdjustmentView>,
    /// Whether it is suppressed (listed only with `include_suppressed=true`).
    pub suppressed: bool,
    /// Why it is suppressed: `disabled`, `exception-period`, `holiday-skip`.
    pub reason: Option<String>,
    /// The exception period or holiday behind `reason`.
    pub reason_detail: Option<String>,
}

impl OccurrenceView {
    pub(crate) fn new(o: &Occurrence) -> Self {
        use alarm_domain::schedule::SuppressionReason as R;
        let local = o.local();
        let adj = o.adjustment();
        let adjustment = (!adj.is_none()).then(|| AdjustmentView {
            dst_gap_shift_seconds: adj.gap_shift.map(|d| d.as_secs()),
            holiday_delay_minutes: adj.holiday_delay.as_ref().map(|h| u32::from(h.minutes)),
            holiday: adj.holiday_delay.as_ref().map(|h| h.holiday.clone()),
            absorbed_delayed: adj.absorbed_delayed,
        });
        let (reason, reason_detail) = match o.suppressed() {
            None => (None, None),
            Some(r) => (
                Some(r.code().to_owned()),
                match r {
                    R::Disabled => None,
                    R::ExceptionPeriod { name, .. } => Some(name.clone()),
                    R::HolidaySkip { holiday } => Some(holiday.clone()),
                },
            ),
        };
        Self {
            local_date: local.date().to_string(),
            local_time: wall(local.time()),
            fire_at: o.fire_at().to_string(),
            schedule_indexes: o
                .schedules()
                .indexes()
                .into_iter()
                .map(|i| i as u32)
                .collect(),
            adjustment,
            suppressed: o.suppressed().is_some(),
            reason,
            reason_detail,
        }
    }
}

/// Upcoming occurrences.
#[derive(Debug, Clone, Object)]
pub struct OccurrenceList {
    /// In time order.
    pub items: Vec<OccurrenceView>,
    /// False when the search budget ran out before `limit` items were found
    /// (more may exist further ahead).
    pub complete: bool,
}

/// Something that happened to an alarm.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct EventView {
    /// Id.
    pub id: String,
    /// `created`, `updated`, `enabled`, `disabled`, `triggered`, `snoozed`,
    /// `dismissed`, `escalated`, `missed`, `expired`, `deleted`.
    pub kind: String,
    /// When (UTC).
    pub at: String,
    /// The occurrence it concerns (UTC), if any.
    pub occurrence: Option<String>,
    /// Extra detail.
    pub detail: Option<String>,
}

impl EventView {
    pub(crate) fn new(e: &AlarmEvent) -> Self {
        Self {
            id: e.id.to_string(),
            kind: e.kind.as_str().to_owned(),
            at: e.at.to_string(),
            occurrence: e.occurrence.map(|t| t.to_string()),
            detail: e.detail.clone(),
        }
    }
}

/// A page of events.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct EventPage {
    /// Oldest first.
    pub items: Vec<EventView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Registration.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    /// Login email.
    pub email: String,
    /// 12..=256 characters.
    pub password: String,
    /// 1..=100 characters.
    pub display_name: String,
    /// IANA zone for new alarms (default `UTC`).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// ISO 3166-1 alpha-2 country, for holidays.
    #[serde(default)]
    pub country: Option<String>,
    /// State or province code (needs `country`).
    #[serde(default)]
    pub state: Option<String>,
}

/// Login.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    /// Login email.
    pub email: String,
    /// Password.
    pub password: String,
}

/// Refresh.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshInput {
    /// The current refresh token.
    pub refresh_token: String,
}

/// Issued tokens.
#[derive(Clone, Object)]
pub struct TokenView {
    /// JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Single-use token for `POST /auth/refresh`.
    pub refresh_token: String,
}

/// An account.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UserView {
    /// Id.
    pub id: String,
    /// Email as registered.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// `user` or `admin`.
    pub role: String,
    /// Default zone.
    pub time_zone: String,
    /// Country, if set.
    pub country: Option<String>,
    /// State, if set.
    pub state: Option<String>,
}

impl UserView {
    pub(crate) fn new(u: &User) -> Self {
        Self {
            id: u.id().to_string(),
            email: u.email().as_str().to_owned(),
            display_name: u.display_name().as_str().to_owned(),
            role: u.role().as_str().to_owned(),
            time_zone: u.time_zone().as_str().to_owned(),
            country: u.locale().map(|l| l.country().as_str().to_owned()),
            state: u
                .locale()
                .and_then(|l| l.state().map(|s| s.as_str().to_owned())),
        }
    }
}

// Credentials pass through these shapes as plain strings (poem-openapi needs
// them for the schema); their `Debug` never shows them, so a stray `{:?}`
// in a log line cannot leak a password or a token.
impl std::fmt::Debug for RegisterInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterInput")
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .field("display_name", &self.display_name)
            .field("time_zone", &self.time_zone)
            .field("country", &self.country)
            .field("state", &self.state)
            .finish()
    }
}

impl std::fmt::Debug for LoginInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginInput")
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .finish()
    }
}

impl std::fmt::Debug for RefreshInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshInput")
            .field("refresh_token", &"[redacted]")
            .finish()
    }
}

impl std::fmt::Debug for TokenView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenView")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show_in_debug() {
        let login = LoginInput {
            email: "a@example.com".to_owned(),
            password: "hunter2-hunter2".to_owned(),
        };
        let tokens = TokenView {
            access_token: "eyJ-secret".to_owned(),
            token_type: "Bearer".to_owned(),
            expires_in: 900,
            refresh_token: "rt_secret".to_owned(),
        };
        let shown = format!(
            "{login:?} {tokens:?} {:?}",
            RefreshInput {
                refresh_token: "rt_secret".to_owned()
            }
        );
        assert!(
            !shown.contains("hunter2") && !shown.contains("secret"),
            "{shown}"
        );
        assert!(shown.contains("a@example.com"));
    }
}

/// An occurrence that rang and is waiting for an answer.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RingingView {
    /// The alarm.
    pub alarm_id: String,
    /// Its name.
    pub alarm_name: String,
    /// The occurrence's instant (UTC).
    pub occurrence_at: String,
    /// The occurrence's nominal local date and time in the alarm's zone.
    pub local_time: String,
    /// When it first rang (UTC).
    pub ringing_since: String,
    /// Snoozes used.
    pub snoozes: u8,
    /// Snoozes allowed.
    pub max_snoozes: u8,
    /// Escalation level reached (0 = not escalated).
    pub escalation_level: u8,
    /// Snoozed: silent until `rings_again_at`.
    pub snoozed: bool,
    /// When a snoozed occurrence rings again (UTC); absent otherwise.
    pub rings_again_at: Option<String>,
}

impl RingingView {
    pub(crate) fn new(
        r: &alarm_domain::trigger::Ringing,
        alarm: &alarm_domain::model::Alarm,
        rings_again_at: Option<alarm_domain::jiff::Timestamp>,
    ) -> Self {
        Self {
            alarm_id: r.alarm.to_string(),
            alarm_name: alarm.draft().name.as_str().to_owned(),
            occurrence_at: r.occurrence.at.to_string(),
            local_time: r.occurrence.local.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
            ringing_since: r.since.to_string(),
            snoozes: r.snoozes,
            max_snoozes: alarm.draft().snooze.max_snoozes(),
            escalation_level: r.level,
            snoozed: r.snoozed,
            rings_again_at: rings_again_at.map(|t| t.to_string()),
        }
    }
}

/// The caller's ringing occurrences.
#[derive(Debug, Clone, Object)]
pub struct RingingList {
    /// Oldest first; snoozed occurrences are not listed.
    pub items: Vec<RingingView>,
}

/// A webhook endpoint as registered by the client.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Absolute `http` or `https` URL (at most 2048 characters, no
    /// credentials, no `#fragment`) that receives signed `POST`s.
    pub url: String,
    /// Events to send, e.g. `alarm.triggered`; at least one, none twice.
    pub events: Vec<String>,
}

/// A webhook endpoint as replaced by the client (every member is required:
/// `PUT` replaces the whole registration).
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookUpdate {
    /// Absolute `http` or `https` URL (at most 2048 characters, no
    /// credentials, no `#fragment`).
    pub url: String,
    /// Events to send; at least one, none twice.
    pub events: Vec<String>,
    /// Whether deliveries are made; re-activating resets `consecutive_failures`.
    pub active: bool,
}

/// The domain URL and event set of a webhook body; every error names its
/// field (`url`, `events`, `events[1]`).
fn webhook_parts(
    url: &str,
    events: &[String],
) -> Result<(WebhookUrl, WebhookEventSet), ValidationError> {
    let url = WebhookUrl::parse(url)?;
    let parsed = events
        .iter()
        .enumerate()
        .map(|(i, name)| {
            // The domain names the list; the client needs the item.
            WebhookEvent::parse(name).map_err(|e| {
                ValidationError::new(format!("events[{i}]"), e.code(), e.message().to_owned())
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((url, WebhookEventSet::new(&parsed)?))
}

impl WebhookInput {
    /// The domain URL and event set.
    pub(crate) fn to_domain(&self) -> Result<(WebhookUrl, WebhookEventSet), ValidationError> {
        webhook_parts(&self.url, &self.events)
    }
}

impl WebhookUpdate {
    /// The domain URL and event set (`active` is taken as is).
    pub(crate) fn to_domain(&self) -> Result<(WebhookUrl, WebhookEventSet), ValidationError> {
        webhook_parts(&self.url, &self.events)
    }
}

/// A registered webhook endpoint (its signing secret is never shown here).
#[derive(Clone, Object)]
pub struct WebhookView {
    /// Id (UUID v7).
    pub id: String,
    /// The endpoint.
    pub url: String,
    /// Subscribed events, in a fixed order.
    pub events: Vec<String>,
    /// Whether deliveries are made (false after too many consecutive failures).
    pub active: bool,
    /// Deliveries given up on in a row since the last success.
    pub consecutive_failures: u32,
}

impl WebhookView {
    pub(crate) fn new(w: &WebhookRegistration) -> Self {
        Self {
            id: w.id().to_string(),
            url: w.url().as_str().to_owned(),
            events: w.events().iter().map(|e| e.as_str().to_owned()).collect(),
            active: w.active(),
            consecutive_failures: w.failure_count(),
        }
    }
}

/// A webhook endpoint with its signing secret: answered only by create and
/// rotate-secret, the two moments the secret exists outside the store.
#[derive(Clone, Object)]
pub struct WebhookSecretView {
    /// The registration.
    #[oai(flatten)]
    pub webhook: WebhookView,
    /// The Standard Webhooks signing key (`whsec_` + base64); store it now,
    /// it is never shown again.
    pub secret: String,
}

impl WebhookSecretView {
    pub(crate) fn new(created: &NewWebhook) -> Self {
        Self {
            webhook: WebhookView::new(&created.registration),
            secret: created.secret.expose_secret().to_owned(),
        }
    }
}

/// The caller's webhook endpoints.
#[derive(Clone, Object)]
pub struct WebhookList {
    /// Oldest first (at most 20).
    pub items: Vec<WebhookView>,
}

/// One message to a webhook endpoint and how sending it went.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DeliveryView {
    /// The message id (sent as `webhook-id`; the same on every attempt).
    pub id: String,
    /// `alarm.triggered`, `alarm.escalated`, …, or `webhook.test`.
    pub event: String,
    /// `pending`, `delivered` or `dead` (given up).
    pub status: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The HTTP status of the last attempt, if one came back.
    pub last_response_code: Option<u16>,
    /// How long the last attempt took (milliseconds).
    pub latency_ms: Option<u64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the next attempt is due (UTC); absent unless pending.
    pub next_attempt_at: Option<String>,
    /// The alarm the event is about; absent for `webhook.test`.
    pub alarm_id: Option<String>,
    /// The occurrence the event is about (UTC); absent for `webhook.test`.
    pub occurrence_at: Option<String>,
    /// When the message was queued (UTC).
    pub created_at: String,
    /// When it last changed (UTC).
    pub updated_at: String,
}

/// An instant at the stores' precision (microseconds, RFC 3339 UTC with
/// `Z`), so the answer to `test` or `retry` shows the times that the
/// delivery list will show for the same row.
fn stored_instant(t: Timestamp) -> String {
    Timestamp::from_microsecond(t.as_microsecond())
        .unwrap_or(t)
        .to_string()
}

impl DeliveryView {
    pub(crate) fn new(d: &OutboxItem) -> Self {
        Self {
            id: d.message.to_string(),
            event: d.topic.as_str().to_owned(),
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            last_response_code: d.last_code,
            latency_ms: d.latency_ms,
            last_error: d.last_error.clone(),
            next_attempt_at: (d.status == SendStatus::Pending).then(|| stored_instant(d.due)),
            alarm_id: d.alarm.map(|(a, _)| a.to_string()),
            occurrence_at: d.alarm.map(|(_, o)| stored_instant(o.at)),
            created_at: stored_instant(d.created_at),
            updated_at: stored_instant(d.updated_at),
        }
    }
}

/// A page of deliveries.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DeliveryPage {
    /// Newest first.
    pub items: Vec<DeliveryView>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<String>,
}

/// Scheme, host and port of a URL the client sent: receivers often carry a
/// credential in the path or query, which must not reach a log line through
/// a stray `{:?}` (the domain's `WebhookUrl` redacts the same way).
fn redacted_url(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Credentials, should a client send them, sit before the `@`.
    let host = authority.rsplit('@').next().unwrap_or("");
    format!("{scheme}://{host}/…")
}

impl std::fmt::Debug for WebhookInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookInput")
            .field("url", &redacted_url(&self.url))
            .field("events", &self.events)
            .finish()
    }
}

impl std::fmt::Debug for WebhookUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookUpdate")
            .field("url", &redacted_url(&self.url))
            .field("events", &self.events)
            .field("active", &self.active)
            .finish()
    }
}

impl std::fmt::Debug for WebhookView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookView")
            .field("id", &self.id)
            .field("url", &redacted_url(&self.url))
            .field("events", &self.events)
            .field("active", &self.active)
            .field("consecutive_failures", &self.consecutive_failures)
            .finish()
    }
}

impl std::fmt::Debug for WebhookSecretView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecretView")
            .field("webhook", &self.webhook)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl std::fmt::Debug for WebhookList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookList")
            .field("items", &self.items)
            .finish()
    }
}

#[cfg(test)]
mod webhook_tests {
    use super::*;

    #[test]
    fn webhook_shapes_never_show_the_secret_or_the_url_path_in_debug() {
        let view = WebhookView {
            id: "0190".to_owned(),
            url: "https://u:pw@hooks.example.com:8443/services/T0/B0/XXXX?token=abc".to_owned(),
            events: vec!["alarm.triggered".to_owned()],
            active: true,
            consecutive_failures: 0,
        };
        let shown = format!(
            "{:?} {:?}",
            WebhookSecretView {
                webhook: view.clone(),
                secret: "whsec_c2VjcmV0".to_owned(),
            },
            WebhookUpdate {
                url: view.url.clone(),
                events: Vec::new(),
                active: false,
            }
        );
        for hidden in ["whsec_", "XXXX", "token", "pw"] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
        assert!(
            shown.contains("https://hooks.example.com:8443/…"),
            "{shown}"
        );
    }

    #[test]
    fn event_errors_name_the_item() {
        let field = |events: &[&str]| {
            let events: Vec<String> = events.iter().map(|&e| e.to_owned()).collect();
            webhook_parts("https://example.com/h", &events)
                .expect_err("invalid")
                .field()
                .to_owned()
        };
        assert_eq!(field(&[]), "events");
        assert_eq!(field(&["alarm.triggered", "alarm.exploded"]), "events[1]");
        assert_eq!(field(&["alarm.missed", "alarm.missed"]), "events[1]");
    }
}
