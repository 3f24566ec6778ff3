//! Test support for code that embeds the Smart Alarm domain: in-memory fakes of every port, a manual clock, deterministic ids, and the conformance suites every adapter must pass.
//!
//! * [`InMemory`]: every store port and the trigger queue over one shared
//!   state, safe to use from many tasks at once. Change sets are applied
//!   all-or-nothing under one lock.
//! * [`InMemoryBlobs`], [`InMemoryParts`], [`StaticSecrets`], [`RecordingNotifier`]: the ports
//!   to outside services (the notifier records deliveries and fails on cue).
//! * [`ManualClock`] and [`SequentialIds`]: time and ids that only change
//!   when the test says so.
//! * [`conformance`]: one async suite per port, taking a factory for fresh
//!   ports. The fakes pass them in this crate's tests; the SQL adapter runs
//!   the very same suites against PostgreSQL and SQLite.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//!
//! use alarm_domain::jiff::tz::TimeZoneDatabase;
//! use alarm_domain::jiff::SignedDuration;
//! use alarm_domain::model::*;
//! use alarm_domain::ports::PageRequest;
//! use alarm_domain::schedule::{Schedule, WallTime};
//! use alarm_domain::services::{Actor, AlarmService, NewUser, UserService};
//! use alarm_domain::tz::TimeZoneName;
//! use alarm_testkit::{InMemory, ManualClock, SequentialIds};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = Arc::new(ManualClock::new("2026-11-22T08:00:00Z".parse().unwrap()));
//! let ports = InMemory::new().ports(clock.clone(), Arc::new(SequentialIds::new()));
//! let db = TimeZoneDatabase::bundled();
//! let berlin = TimeZoneName::resolve("Europe/Berlin", &db).unwrap();
//!
//! let users = UserService::new(ports.clone(), vec![]);
//! let user = users
//!     .register(
//!         NewUser {
//!             email: Email::parse("ana@example.com").unwrap(),
//!             display_name: DisplayName::parse("Ana").unwrap(),
//!             password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
//!             time_zone: berlin.clone(),
//!             locale: None,
//!         },
//!         "req-1",
//!     )
//!     .await
//!     .unwrap();
//! let actor = Actor { user: user.id(), role: user.role(), correlation_id: "req-2".into() };
//!
//! let alarms = AlarmService::new(ports.clone());
//! let draft = AlarmDraft {
//!     name: AlarmName::parse("Wake up").unwrap(),
//!     description: Description::default(),
//!     enabled: true,
//!     time_zone: berlin,
//!     schedules: Schedules::new(vec![Schedule::weekdays(WallTime::parse("07:00").unwrap())]).unwrap(),
//!     snooze: SnoozePolicy::default(),
//!     escalation: EscalationPolicy::default(),
//!     channels: ChannelSet::default(),
//!     sound: None,
//! };
//! let alarm = alarms.create(&actor, draft).await.unwrap();
//!
//! // The first fire was scheduled in the same commit: Monday 07:00 in Berlin.
//! let pending = ports.queue.pending(alarm.id()).await.unwrap();
//! assert_eq!(pending[0].due_at.to_string(), "2026-11-23T06:00:00Z");
//!
//! // Time moves only when the test says so.
//! clock.advance(SignedDuration::from_hours(22));
//! let due = ports.queue.claim(clock.now(), 10, SignedDuration::from_secs(30)).await.unwrap();
//! assert_eq!(due.len(), 1);
//! # use alarm_domain::ports::Clock;
//! # let _ = PageRequest::<alarm_domain::ids::AlarmId>::first();
//! # });
//! ```

mod clock;
pub mod conformance;
pub mod fixtures;
mod memory;
mod outside;

pub use clock::{ManualClock, SequentialIds};
pub use memory::InMemory;
pub use outside::{
    FakeSealer, InMemoryBlobs, InMemoryParts, RecordingNotifier, Scripted, StaticSecrets,
};
