//! Conversions between domain values and columns: schedules as JSON, enums as stable text, sets as bit masks.

use alarm_domain::jiff::civil::{Date, DateTime};
use alarm_domain::model::{
    Channel, ChannelSet, DelayMinutes, HolidayPreference, WebhookEvent, WebhookEventSet,
};
use alarm_domain::ports::StoreError;
use alarm_domain::schedule::{RecurrenceRule, Schedule, WallTime, WeekdaySet};
use alarm_domain::trigger::TriggerKind;
use serde_json::{Value as Json, json};

use crate::db::{corrupt, narrow};

pub(crate) fn schedules_to_json(schedules: &[Schedule]) -> String {
    let list: Vec<Json> = schedules
        .iter()
        .map(|s| match s {
            Schedule::Once { date, time } => json!({"kind": "once", "date": date.to_string(), "time": time.to_string()}),
            Schedule::Daily { time } => json!({"kind": "daily", "time": time.to_string()}),
            Schedule::Weekly { days, time } => json!({"kind": "weekly", "days": days.names(), "time": time.to_string()}),
            Schedule::Rule(rule) => json!({"kind": "rule", "rrule": rule.as_str(), "dtstart": rule.dtstart().strftime("%Y-%m-%dT%H:%M:%S").to_string()}),
        })
        .collect();
    Json::Array(list).to_string()
}

pub(crate) fn schedules_from_json(text: &str) -> Result<Vec<Schedule>, StoreError> {
    let bad = |e: &dyn std::fmt::Display| corrupt("schedules", e);
    let list: Vec<Json> = serde_json::from_str(text).map_err(|e| bad(&e))?;
    let s = |v: &Json, k: &str| {
        v.get(k)
            .and_then(Json::as_str)
            .map(str::to_owned)
            .ok_or_else(|| bad(&format!("missing {k}")))
    };
    list.iter()
        .map(|v| {
            let time = || WallTime::parse(&s(v, "time")?).map_err(|e| bad(&e));
            Ok(match s(v, "kind")?.as_str() {
                "once" => Schedule::Once {
                    date: s(v, "date")?.parse::<Date>().map_err(|e| bad(&e))?,
                    time: time()?,
                },
                "daily" => Schedule::Daily { time: time()? },
                "weekly" => {
                    let days: Vec<String> = v
                        .get("days")
                        .and_then(Json::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Json::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default();
                    Schedule::Weekly {
                        days: WeekdaySet::parse(&days).map_err(|e| bad(&e))?,
                        time: time()?,
                    }
                }
                "rule" => Schedule::Rule(Box::new(
                    RecurrenceRule::parse_stored(&s(v, "rrule")?, &s(v, "dtstart")?)
                        .map_err(|e| bad(&e))?,
                )),
                other => return Err(bad(&format!("unknown kind {other}"))),
            })
        })
        .collect()
}

pub(crate) fn channels_to_bits(set: ChannelSet) -> i16 {
    set.iter().fold(0i16, |bits, c| bits | (1 << c as u8))
}

const ALL_CHANNELS: [Channel; 4] = [
    Channel::InApp,
    Channel::Email,
    Channel::Webhook,
    Channel::Push,
];

/// The stored bits of the channels nothing delivers on and of the events
/// nothing emits, as the domain judges them.
pub(crate) fn unsupported_masks() -> (i16, i32) {
    let channels = ALL_CHANNELS
        .into_iter()
        .filter(|c| !c.is_delivered())
        .fold(0i16, |bits, c| bits | (1 << c as u8));
    let events = WebhookEvent::all()
        .filter(|e| !e.is_emitted())
        .fold(0i32, |bits, e| bits | (1 << e as u16));
    (channels, events)
}

pub(crate) fn channels_from_bits(bits: i16) -> Result<ChannelSet, StoreError> {
    let list: Vec<Channel> = ALL_CHANNELS
        .into_iter()
        .filter(|c| bits & (1 << *c as u8) != 0)
        .collect();
    ChannelSet::new(&list).map_err(|e| corrupt("channels", e))
}

pub(crate) fn events_to_bits(set: WebhookEventSet) -> i32 {
    set.iter().fold(0i32, |bits, e| bits | (1 << e as u16))
}

pub(crate) fn events_from_bits(bits: i32) -> Result<WebhookEventSet, StoreError> {
    let list: Vec<WebhookEvent> = WebhookEvent::all()
        .filter(|e| bits & (1 << *e as u16) != 0)
        .collect();
    WebhookEventSet::new(&list).map_err(|e| corrupt("webhook events", e))
}

pub(crate) fn kind_to_text(kind: TriggerKind) -> String {
    kind.code()
}

pub(crate) fn kind_from_text(text: &str) -> Result<TriggerKind, StoreError> {
    let level = |n: &str| n.parse::<u8>().map_err(|e| corrupt("trigger kind", e));
    match text.split_once(':') {
        None if text == "fire" => Ok(TriggerKind::Fire),
        None if text == "expire" => Ok(TriggerKind::Expire),
        Some(("snooze", n)) => Ok(TriggerKind::Snooze(level(n)?)),
        Some(("escalate", n)) => Ok(TriggerKind::Escalate(level(n)?)),
        _ => Err(corrupt("trigger kind", text)),
    }
}

pub(crate) fn local_to_text(dt: DateTime) -> String {
    dt.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

pub(crate) fn local_from_text(text: &str) -> Result<DateTime, StoreError> {
    text.parse().map_err(|e| corrupt("local date-time", e))
}

pub(crate) fn date_from_text(text: &str) -> Result<Date, StoreError> {
    text.parse().map_err(|e| corrupt("date", e))
}

pub(crate) fn preference_to_columns(p: HolidayPreference) -> (String, Option<i16>) {
    match p {
        HolidayPreference::Delay(m) => ("delay".to_owned(), Some(m.get() as i16)),
        other => (other.as_str().to_owned(), None),
    }
}

pub(crate) fn preference_from_columns(
    kind: &str,
    delay: Option<i16>,
) -> Result<HolidayPreference, StoreError> {
    match (kind, delay) {
        ("fire", _) => Ok(HolidayPreference::Fire),
        ("skip", _) => Ok(HolidayPreference::Skip),
        ("delay", Some(m)) => Ok(HolidayPreference::Delay(
            DelayMinutes::new(narrow(m, "delay")?).map_err(|e| corrupt("delay", e))?,
        )),
        _ => Err(corrupt("holiday preference", kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_round_trip() {
        let list = vec![
            Schedule::Once {
                date: "2030-01-02".parse().unwrap(),
                time: WallTime::parse("07:05").unwrap(),
            },
            Schedule::Daily {
                time: WallTime::parse("06:00:30").unwrap(),
            },
            Schedule::Weekly {
                days: WeekdaySet::WEEKDAYS,
                time: WallTime::parse("08:00").unwrap(),
            },
            Schedule::Rule(Box::new(
                RecurrenceRule::parse("FREQ=MONTHLY;BYDAY=-1FR", "2026-01-01T09:00").unwrap(),
            )),
        ];
        assert_eq!(
            schedules_from_json(&schedules_to_json(&list)).unwrap(),
            list
        );
        for k in [
            TriggerKind::Fire,
            TriggerKind::Snooze(3),
            TriggerKind::Escalate(2),
        ] {
            assert_eq!(kind_from_text(&kind_to_text(k)).unwrap(), k);
        }
        let set = ChannelSet::new(&[Channel::Email, Channel::InApp]).unwrap();
        assert_eq!(channels_from_bits(channels_to_bits(set)).unwrap(), set);
    }
}
