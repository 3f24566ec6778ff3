//! Fire-time policy in one place: what a due trigger leaves behind (ring, missed, expired, skipped, the follow-up, the next fire, the routines it starts) and the keys of the deliveries it makes.
//!
//! Everything here is a pure function of the trigger, the alarm and
//! calendar as stored now, the occurrence's ringing record, the moment and
//! a [`FirePolicy`]. The trigger engine (`alarm-runner`) only claims,
//! loads, batches, calls [`judge`] and commits what it answers; the
//! services plan each alarm's next fire by the same rule.

mod decide;
mod delivery;
mod judge;
mod prepared;
mod routines;

pub(crate) use decide::next_fire;
pub use decide::{FireDecision, SkipReason, decide_fire, next_fire_plan, replan_after_edit};
pub use delivery::delivery_key;
pub use judge::{FirePolicy, Verdict, judge};
pub use prepared::{effective_at, judge_claim, stale_preparation, visible};
pub use routines::{routine_detail, start_routines, starts_routines};

#[cfg(test)]
mod tests;
