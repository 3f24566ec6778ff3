//! Alarm shapes: the input of create and replace, the stored alarm with its snooze and escalation settings, and a page of alarms.

use alarm_domain::error::ValidationError;
use alarm_domain::jiff::Timestamp;
use alarm_domain::jiff::tz::TimeZoneDatabase;
use alarm_domain::limits::Limits;
use alarm_domain::model::{
    Alarm, AlarmDraft, AlarmName, Channel, ChannelSet, Description, EscalationPolicy, Schedules,
    SnoozePolicy,
};
use alarm_domain::tz::TimeZoneName;
use poem_openapi::Object;
use serde::Deserialize;

use super::schedules::ScheduleDto;

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
    /// Up to 1000 characters (default empty); stored in Unicode NFC;
    /// bidirectional override and isolate characters are refused.
    #[serde(default)]
    pub description: Option<String>,
    /// Default `true`.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// IANA zone name, e.g. `America/Sao_Paulo`. Left out: on create, the
    /// caller's default zone (`PATCH /auth/me`); on replace, the alarm's own.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// 1..=16 schedules (the operator may allow fewer: `QUOTA_SCHEDULES_PER_ALARM`),
    /// ringing at most `MAX_FIRES_PER_DAY` (default 96) wall times a day
    /// together; a rule yields BYHOUR × BYMINUTE wall times a day.
    pub schedules: Vec<ScheduleDto>,
    /// Default 5 minutes, 3 snoozes.
    #[serde(default)]
    pub snooze: Option<SnoozeDto>,
    /// Default 3 levels after 5 and then every 10 minutes.
    #[serde(default)]
    pub escalation: Option<EscalationDto>,
    /// `in-app`, `email`, `webhook`, `push` (default `["in-app"]`).
    /// Webhooks follow the registrations' subscriptions, whatever the alarm
    /// lists: `webhook` is a kept alias with no effect; `push` is refused
    /// (not delivered yet).
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// The id of one of your sounds (`/api/v1/sounds`) to ring with; left
    /// out: none (the client's own tone). Another user's sound is unknown
    /// (422). A sound an alarm names cannot be deleted.
    #[serde(default)]
    pub sound_id: Option<String>,
}

impl AlarmInput {
    /// The domain draft, in `default_zone` when the body names none; every
    /// error names its field path.
    pub(crate) fn to_draft(
        &self,
        tzdb: &TimeZoneDatabase,
        default_zone: &TimeZoneName,
        limits: &Limits,
    ) -> Result<AlarmDraft, ValidationError> {
        // Counted before any schedule is parsed: parsing a rule costs work.
        limits.check_schedule_count(self.schedules.len())?;
        let schedules = self
            .schedules
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.to_domain(limits.fires_per_day)
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
            time_zone: match &self.time_zone {
                Some(zone) => TimeZoneName::resolve(zone, tzdb)?,
                None => default_zone.clone(),
            },
            schedules: Schedules::new(schedules)?,
            snooze,
            escalation,
            channels,
            sound: match &self.sound_id {
                None => None,
                Some(id) => Some(id.parse().map_err(|_| {
                    ValidationError::new(
                        "sound_id",
                        alarm_domain::error::codes::INVALID_FORMAT,
                        "a sound id is a UUID",
                    )
                })?),
            },
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
    /// The sound it rings with; absent: none.
    pub sound_id: Option<String>,
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
            sound_id: d.sound.map(|s| s.to_string()),
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
