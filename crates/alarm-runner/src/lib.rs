//! Smart Alarm's trigger engine: rings every due occurrence once, on the database's clock, and survives crashes of the process that runs it.
//!
//! The engine works on the domain's ports only; the apps wire it to a
//! database (`alarm-worker` as a separate process, `alarm-http` in-process
//! in its embedded default).
//!
//! # How it rings on time
//! [`Engine::run`] sleeps until the earliest of: the next trigger's instant
//! minus [`RunnerConfig::prefetch`], one [`RunnerConfig::idle_poll`], or a
//! wake-up ([`EngineWake`], fed by the API in-process and by the database's
//! `NOTIFY` across processes). It then reads the database's clock, claims
//! the triggers due within the prefetch under a lease, waits for each
//! instant on the monotonic clock and fires all that are due in one batch.
//!
//! # What a fire commits
//! What [`alarm_domain::firing::judge`] decided (the fire policy is the
//! domain's; the engine loads, batches and applies), in one transaction
//! per batch ([`alarm_domain::ports::TriggerClaims::complete_many`]):
//! the `triggered` event, one delivery per channel (its id is
//! [`delivery_key`], the same on every retry), the alarm's next occurrence,
//! and only the next follow-up (the next escalation level, or the expiry
//! after the last). A claim whose lease was rescued by another engine is
//! fenced: its completion stores nothing.
//!
//! # Lateness
//! A trigger found more than [`RunnerConfig::grace`] after its instant is
//! recorded `missed` and does not ring; for a `fire` only the newest missed
//! occurrence is reported and the alarm resumes with its next one.

mod config;
mod engine;
mod health;

pub use config::RunnerConfig;
pub use engine::{Engine, EnginePorts, EngineWake, TickReport};
pub use health::EngineHealth;
// The fire policy is the domain's; these names stay here for the callers
// (apps, tests, benches) written against the runner.
pub use alarm_domain::firing::{Verdict, delivery_key};
