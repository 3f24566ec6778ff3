//! The alarm aggregate: name, zone, schedules, snooze and escalation policies, channels, version.

use std::fmt;

use jiff::Timestamp;

use crate::error::{ValidationError, check_text, codes};
use crate::ids::{AlarmId, BlobId, UserId};
use crate::schedule::{self, Calendar, OccurrenceQuery, Preview, RecurrenceRule, Schedule};
use crate::tz::TimeZoneName;

/// An alarm's name: 1..=100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlarmName(String);

impl AlarmName {
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

/// The most characters an alarm's description may have.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// An alarm's description: at most [`MAX_DESCRIPTION_CHARS`] characters (may be empty), stored in NFC.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Description(String);

impl Description {
    /// # Errors
    /// `description` with `too-long` or `invalid-format` (control characters
    /// other than line breaks and tabs).
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let trimmed = value.trim();
        let len = trimmed.chars().count();
        if len > MAX_DESCRIPTION_CHARS {
            return Err(ValidationError::new(
                "description",
                codes::TOO_LONG,
                format!("must have at most {MAX_DESCRIPTION_CHARS} characters, got {len}"),
            ));
        }
        if trimmed
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(ValidationError::new(
                "description",
                codes::INVALID_FORMAT,
                "must not contain control characters",
            ));
        }
        crate::error::check_bidi("description", trimmed)?;
        Ok(Self(crate::error::nfc(trimmed)))
    }
    /// The trimmed text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn in_range(field: &'static str, value: u32, min: u32, max: u32) -> Result<u32, ValidationError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ValidationError::new(
            field,
            codes::OUT_OF_RANGE,
            format!("must be {min}..={max}, got {value}"),
        ))
    }
}

/// How snoozing works for an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SnoozePolicy {
    minutes: u8,
    max_snoozes: u8,
}

impl Default for SnoozePolicy {
    fn default() -> Self {
        Self {
            minutes: 5,
            max_snoozes: 3,
        }
    }
}

impl SnoozePolicy {
    /// Snooze length 1..=60 minutes; at most 0..=10 snoozes per occurrence.
    ///
    /// # Errors
    /// `snooze.minutes` or `snooze.max_snoozes` with `out-of-range`.
    pub fn new(minutes: u32, max_snoozes: u32) -> Result<Self, ValidationError> {
        let minutes = in_range("minutes", minutes, 1, 60).map_err(|e| e.within("snooze"))?;
        let max = in_range("max_snoozes", max_snoozes, 0, 10).map_err(|e| e.within("snooze"))?;
        Ok(Self {
            minutes: minutes as u8,
            max_snoozes: max as u8,
        })
    }
    /// Minutes until a snoozed alarm rings again.
    pub fn minutes(&self) -> u8 {
        self.minutes
    }
    /// How many times one occurrence may be snoozed.
    pub fn max_snoozes(&self) -> u8 {
        self.max_snoozes
    }
}

/// How an unanswered alarm re-notifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EscalationPolicy {
    max_level: u8,
    first_delay_minutes: u16,
    repeat_delay_minutes: u16,
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        Self {
            max_level: 3,
            first_delay_minutes: 5,
            repeat_delay_minutes: 10,
        }
    }
}

impl EscalationPolicy {
    /// Up to `max_level` (0..=3) re-notifications: the first after
    /// `first_delay_minutes`, the next ones every `repeat_delay_minutes`
    /// (both 1..=1440).
    ///
    /// # Errors
    /// `escalation.*` with `out-of-range`.
    pub fn new(
        max_level: u32,
        first_delay_minutes: u32,
        repeat_delay_minutes: u32,
    ) -> Result<Self, ValidationError> {
        let wrap = |e: ValidationError| e.within("escalation");
        let max_level = in_range("max_level", max_level, 0, 3).map_err(wrap)?;
        let first = in_range("first_delay_minutes", first_delay_minutes, 1, 1440).map_err(wrap)?;
        let repeat =
            in_range("repeat_delay_minutes", repeat_delay_minutes, 1, 1440).map_err(wrap)?;
        Ok(Self {
            max_level: max_level as u8,
            first_delay_minutes: first as u16,
            repeat_delay_minutes: repeat as u16,
        })
    }
    /// The highest escalation level (0 = never escalate).
    pub fn max_level(&self) -> u8 {
        self.max_level
    }
    /// Minutes from the fire to level 1.
    pub fn first_delay_minutes(&self) -> u16 {
        self.first_delay_minutes
    }
    /// Minutes between later levels.
    pub fn repeat_delay_minutes(&self) -> u16 {
        self.repeat_delay_minutes
    }
    /// Minutes after the fire at which `level` (1..=max) is due.
    pub fn delay_for_level(&self, level: u8) -> Option<u32> {
        (1..=self.max_level).contains(&level).then(|| {
            u32::from(self.first_delay_minutes)
                + u32::from(level - 1) * u32::from(self.repeat_delay_minutes)
        })
    }
}

/// Where an alarm is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// Rings in the app (the ringing API).
    InApp,
    /// Sends an email.
    Email,
    /// Calls the owner's webhooks.
    Webhook,
    /// Sends a push notification.
    Push,
}

const CHANNELS: [(Channel, &str); 4] = [
    (Channel::InApp, "in-app"),
    (Channel::Email, "email"),
    (Channel::Webhook, "webhook"),
    (Channel::Push, "push"),
];

impl Channel {
    /// Stable name: `in-app`, `email`, `webhook`, `push`.
    pub fn as_str(self) -> &'static str {
        CHANNELS
            .iter()
            .find(|(c, _)| *c == self)
            .map_or("in-app", |(_, n)| n)
    }
    /// Whether the product delivers on this channel today. `push` has no
    /// sender yet: new alarms may not ask for it (stored ones stay readable).
    pub fn is_delivered(self) -> bool {
        !matches!(self, Self::Push)
    }
    /// # Errors
    /// `channels` with `unknown-value`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        CHANNELS
            .iter()
            .find(|(_, n)| *n == value)
            .map(|(c, _)| *c)
            .ok_or_else(|| {
                ValidationError::new(
                    "channels",
                    codes::UNKNOWN_VALUE,
                    format!("`{value}` is not one of in-app, email, webhook, push"),
                )
            })
    }
}

/// A non-empty set of channels; defaults to in-app only.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelSet(u8);

impl Default for ChannelSet {
    fn default() -> Self {
        Self(1 << Channel::InApp as u8)
    }
}

impl ChannelSet {
    /// # Errors
    /// `channels` with `bad-count` when empty, `channels[i]` with `duplicate`.
    pub fn new(channels: &[Channel]) -> Result<Self, ValidationError> {
        if channels.is_empty() {
            return Err(ValidationError::new(
                "channels",
                codes::BAD_COUNT,
                "must name at least one channel",
            ));
        }
        let mut bits = 0u8;
        for (i, c) in channels.iter().enumerate() {
            let bit = 1 << *c as u8;
            if bits & bit != 0 {
                return Err(ValidationError::new(
                    format!("channels[{i}]"),
                    codes::DUPLICATE,
                    format!("`{}` is listed twice", c.as_str()),
                ));
            }
            bits |= bit;
        }
        Ok(Self(bits))
    }
    /// The channels of the set the product does not deliver on yet.
    pub fn undelivered(&self) -> Vec<Channel> {
        self.iter().filter(|c| !c.is_delivered()).collect()
    }
    /// Refuses a set that asks for a channel nothing delivers on, so a
    /// client is told instead of the channel being dropped at fire time.
    ///
    /// # Errors
    /// `channels` with `not-supported`, naming the channel.
    pub fn require_delivered(&self) -> Result<(), ValidationError> {
        match self.undelivered().first() {
            None => Ok(()),
            Some(channel) => Err(ValidationError::new(
                "channels",
                codes::NOT_SUPPORTED,
                format!(
                    "`{}` is not delivered yet; use in-app, email or webhook",
                    channel.as_str()
                ),
            )),
        }
    }
    /// Whether `channel` is in the set.
    pub fn contains(&self, channel: Channel) -> bool {
        self.0 & (1 << channel as u8) != 0
    }
    /// The channels in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = Channel> + '_ {
        CHANNELS
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| self.contains(*c))
    }
}

impl fmt::Debug for ChannelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Channel::as_str))
            .finish()
    }
}

/// The most schedules one alarm may have.
pub const MAX_SCHEDULES: usize = 16;

/// 1..=16 schedules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedules(Vec<Schedule>);

impl Schedules {
    /// # Errors
    /// `schedules` with `bad-count`.
    pub fn new(schedules: Vec<Schedule>) -> Result<Self, ValidationError> {
        if schedules.is_empty() || schedules.len() > MAX_SCHEDULES {
            return Err(ValidationError::new(
                "schedules",
                codes::BAD_COUNT,
                format!(
                    "must hold 1..={MAX_SCHEDULES} schedules, got {}",
                    schedules.len()
                ),
            ));
        }
        Ok(Self(schedules))
    }
    /// The schedules, in the order given.
    pub fn as_slice(&self) -> &[Schedule] {
        &self.0
    }
}

/// Optimistic-concurrency version: 1 on creation, +1 on every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlarmVersion(u64);

impl AlarmVersion {
    /// The first version.
    pub const INITIAL: AlarmVersion = AlarmVersion(1);
    /// A stored version.
    ///
    /// # Errors
    /// `version` with `out-of-range` for 0.
    pub fn new(value: u64) -> Result<Self, ValidationError> {
        if value == 0 {
            return Err(ValidationError::new(
                "version",
                codes::OUT_OF_RANGE,
                "must be at least 1",
            ));
        }
        Ok(Self(value))
    }
    /// The number.
    pub fn get(&self) -> u64 {
        self.0
    }
    /// The version after this one.
    #[must_use]
    pub fn next(&self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

/// The editable part of an alarm, as a client submits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmDraft {
    /// The name.
    pub name: AlarmName,
    /// The description.
    pub description: Description,
    /// Whether it rings.
    pub enabled: bool,
    /// The zone its wall times are in.
    pub time_zone: TimeZoneName,
    /// When it rings.
    pub schedules: Schedules,
    /// Snoozing.
    pub snooze: SnoozePolicy,
    /// Escalation.
    pub escalation: EscalationPolicy,
    /// Delivery channels.
    pub channels: ChannelSet,
    /// An uploaded sound.
    pub sound: Option<BlobId>,
}

impl AlarmDraft {
    /// The names (as in the API) of the fields that differ from `before`,
    /// in a fixed order: what an `alarm.updated` webhook says changed.
    pub fn changed_fields(&self, before: &AlarmDraft) -> Vec<&'static str> {
        [
            ("name", self.name != before.name),
            ("description", self.description != before.description),
            ("enabled", self.enabled != before.enabled),
            ("time_zone", self.time_zone != before.time_zone),
            ("schedules", self.schedules != before.schedules),
            ("snooze", self.snooze != before.snooze),
            ("escalation", self.escalation != before.escalation),
            ("channels", self.channels != before.channels),
            ("sound_id", self.sound != before.sound),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
    }
}

/// An alarm owned by one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    id: AlarmId,
    owner: UserId,
    draft: AlarmDraft,
    version: AlarmVersion,
    created_at: Timestamp,
    updated_at: Timestamp,
}

/// Checks what depends on the zone or the clock, for every schedule not
/// already in `previous`: a `Once` must lie after `now`, and a rule must
/// produce at least one occurrence in the alarm's zone (parsing alone cannot
/// judge a UTC `UNTIL` exactly, since the zone was not known then).
fn check_schedules(
    draft: &AlarmDraft,
    previous: Option<&AlarmDraft>,
    now: Timestamp,
) -> Result<(), ValidationError> {
    for (i, s) in draft.schedules.as_slice().iter().enumerate() {
        // An unchanged one-off schedule (same zone) may have fired already;
        // it must not block editing the rest of the alarm.
        let unchanged = previous
            .is_some_and(|p| p.time_zone == draft.time_zone && p.schedules.as_slice().contains(s));
        if unchanged {
            continue;
        }
        let Schedule::Once { date, time } = s else {
            if let Schedule::Rule(rule) = s {
                check_rule_fires(rule, draft).map_err(|e| e.within(&format!("schedules[{i}]")))?;
            }
            continue;
        };
        let at = date
            .to_datetime(time.as_civil())
            .to_zoned(draft.time_zone.zone().clone())
            .map(|z| z.timestamp());
        if !at.is_ok_and(|at| at > now) {
            return Err(ValidationError::new(
                format!("schedules[{i}]"),
                codes::IN_THE_PAST,
                "a one-off schedule must be in the future",
            ));
        }
    }
    Ok(())
}

fn check_rule_fires(rule: &RecurrenceRule, draft: &AlarmDraft) -> Result<(), ValidationError> {
    let zone = draft.time_zone.zone();
    // Start a little before DTSTART's earliest possible instant.
    let after = rule
        .dtstart()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp() - jiff::SignedDuration::from_hours(48))
        .unwrap_or(Timestamp::MIN);
    let query = OccurrenceQuery {
        after,
        limit: 1,
        include_suppressed: false,
    };
    let preview = schedule::occurrences(
        std::slice::from_ref(&Schedule::Rule(Box::new(rule.clone()))),
        zone,
        true,
        &Calendar::default(),
        &query,
    );
    if preview.items.is_empty() && preview.complete {
        return Err(ValidationError::new(
            "rrule",
            codes::RULE_NEVER_FIRES,
            format!(
                "the rule has no occurrence in {} before its UNTIL",
                draft.time_zone
            ),
        ));
    }
    Ok(())
}

impl Alarm {
    /// Creates version 1 of a new alarm at `now`.
    ///
    /// # Errors
    /// `schedules[i]` with `in-the-past` for a `Once` schedule not after
    /// `now`; `schedules[i].rrule` with `rule-never-fires` for a rule with no
    /// occurrence in the alarm's zone.
    pub fn create(
        id: AlarmId,
        owner: UserId,
        draft: AlarmDraft,
        now: Timestamp,
    ) -> Result<Self, ValidationError> {
        check_schedules(&draft, None, now)?;
        Ok(Self {
            id,
            owner,
            draft,
            version: AlarmVersion::INITIAL,
            created_at: now,
            updated_at: now,
        })
    }

    /// The next version of this alarm with `draft` applied at `now`.
    ///
    /// # Errors
    /// `schedules[i]` with `in-the-past` for a new or changed `Once` schedule
    /// not after `now`.
    pub fn revise(&self, draft: AlarmDraft, now: Timestamp) -> Result<Self, ValidationError> {
        check_schedules(&draft, Some(&self.draft), now)?;
        Ok(Self {
            draft,
            version: self.version.next(),
            updated_at: now,
            ..self.clone()
        })
    }

    /// Rebuilds a stored alarm without re-judging time-dependent rules.
    pub fn restore(
        id: AlarmId,
        owner: UserId,
        draft: AlarmDraft,
        version: AlarmVersion,
        created_at: Timestamp,
        updated_at: Timestamp,
    ) -> Self {
        Self {
            id,
            owner,
            draft,
            version,
            created_at,
            updated_at,
        }
    }

    /// The id.
    pub fn id(&self) -> AlarmId {
        self.id
    }
    /// The owner.
    pub fn owner(&self) -> UserId {
        self.owner
    }
    /// The editable fields.
    pub fn draft(&self) -> &AlarmDraft {
        &self.draft
    }
    /// The name.
    pub fn name(&self) -> &AlarmName {
        &self.draft.name
    }
    /// Whether it rings.
    pub fn enabled(&self) -> bool {
        self.draft.enabled
    }
    /// Its zone.
    pub fn time_zone(&self) -> &TimeZoneName {
        &self.draft.time_zone
    }
    /// Its schedules.
    pub fn schedules(&self) -> &[Schedule] {
        self.draft.schedules.as_slice()
    }
    /// The version.
    pub fn version(&self) -> AlarmVersion {
        self.version
    }
    /// Creation instant.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }
    /// Last change instant.
    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }

    /// Occurrences after `query.after`, judged against `calendar`.
    pub fn occurrences(&self, calendar: &Calendar, query: &OccurrenceQuery) -> Preview {
        schedule::occurrences(
            self.schedules(),
            self.time_zone().zone(),
            self.enabled(),
            calendar,
            query,
        )
    }
}
