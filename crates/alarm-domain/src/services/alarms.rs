//! Alarm use cases: create, read, update, delete, enable/disable, preview, snooze and dismiss.

use jiff::{SignedDuration, Timestamp};

use super::{Actor, Basics, CalendarService, Ports, ServiceError};
use crate::firing::next_fire;
use crate::ids::AlarmId;
use crate::model::{Alarm, AlarmDraft, AlarmEventKind, AlarmVersion};
use crate::ports::{AlarmOp, ChangeSet, Page, PageRequest, RingingOp, TriggerPlan};
use crate::schedule::{OccurrenceQuery, Preview};
use crate::sending::EventChange;
use crate::trigger::{Ringing, Trigger, TriggerKind};

super::service_ports! {
    /// The ports [`AlarmService`] takes.
    AlarmPorts {
        /// Alarms and their trigger plans.
        alarms: dyn AlarmStore = alarms,
        /// Ringing occurrences, snoozes and dismissals.
        ringing: dyn RingingStore = queue,
        /// Sounds an alarm may name.
        sounds: dyn SoundStore = sounds,
        /// The clock.
        clock: dyn Clock = clock,
        /// Ids and webhook secrets.
        ids: dyn IdSource = ids,
        /// Told about new triggers.
        wake: dyn TriggerWake = wake,
    }
}

use crate::ports::{AlarmStore, Clock, IdSource, RingingStore, SoundStore, TriggerWake};

/// Alarm use cases.
#[derive(Clone)]
pub struct AlarmService {
    ports: AlarmPorts,
    calendar: CalendarService,
    limits: crate::limits::Limits,
}

fn summary(a: &Alarm) -> String {
    format!(
        "name={:?} enabled={} zone={} schedules={} version={}",
        a.name().as_str(),
        a.enabled(),
        a.time_zone(),
        a.schedules().len(),
        a.version().get()
    )
}

impl AlarmService {
    /// A service over `ports`.
    pub fn new(ports: Ports) -> Self {
        Self {
            calendar: CalendarService::new(ports.clone()),
            limits: ports.limits,
            ports: ports.into(),
        }
    }

    /// The draft's sound is one of the actor's (the store checks again in
    /// the save's transaction, against a delete racing this one).
    async fn check_sound(&self, actor: &Actor, draft: &AlarmDraft) -> Result<(), ServiceError> {
        let Some(sound) = draft.sound else {
            return Ok(());
        };
        match self.ports.sounds.get(actor.user, sound).await {
            Ok(_) => Ok(()),
            Err(crate::ports::StoreError::NotFound) => Err(crate::error::ValidationError::new(
                "sound_id",
                crate::error::codes::UNKNOWN_VALUE,
                "no sound of yours has this id (upload one at /api/v1/uploads)",
            )
            .into()),
            Err(e) => Err(e.into()),
        }
    }

    /// The actor's alarm.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] when missing or another owner's.
    pub async fn get(&self, actor: &Actor, id: AlarmId) -> Result<Alarm, ServiceError> {
        Ok(self.ports.alarms.get(actor.user, id).await?)
    }

    /// The actor's alarms, a page at a time.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list(
        &self,
        actor: &Actor,
        enabled: Option<bool>,
        page: PageRequest<AlarmId>,
    ) -> Result<Page<Alarm, AlarmId>, ServiceError> {
        Ok(self.ports.alarms.list(actor.user, enabled, page).await?)
    }

    /// When the alarm rings next (`None`: never again, or disabled).
    ///
    /// # Errors
    /// Store failures.
    pub async fn next_fire_at(&self, alarm: &Alarm) -> Result<Option<Timestamp>, ServiceError> {
        let calendar = self.calendar.calendar_for(alarm.owner()).await?;
        Ok(next_fire(alarm, &calendar, self.ports.clock.now()).map(|t| t.due_at))
    }

    /// When each of the actor's `alarms` rings next, reading the actor's
    /// calendar once (a page of alarms costs one calendar read, not one per alarm).
    ///
    /// # Errors
    /// Store failures.
    pub async fn next_fire_at_all(
        &self,
        actor: &Actor,
        alarms: &[Alarm],
    ) -> Result<Vec<Option<Timestamp>>, ServiceError> {
        if alarms.is_empty() {
            return Ok(Vec::new());
        }
        let calendar = self.calendar.calendar_for(actor.user).await?;
        let now = self.ports.clock.now();
        Ok(alarms
            .iter()
            .map(|a| next_fire(a, &calendar, now).map(|t| t.due_at))
            .collect())
    }

    /// Creates an alarm for the actor and schedules its first fire.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] for a `Once` in the past, a rule that
    /// never fires in the alarm's zone, or schedules over the operator's
    /// bounds; [`ServiceError::OverQuota`] (`alarms_per_user`), judged by
    /// the store under the owner's lock.
    pub async fn create(&self, actor: &Actor, draft: AlarmDraft) -> Result<Alarm, ServiceError> {
        draft.channels.require_delivered()?;
        self.limits.check_schedules(&draft.schedules)?;
        self.check_sound(actor, &draft).await?;
        let now = self.ports.clock.now();
        let id = self.ports.new_id(AlarmId::from_uuid, AlarmId::generate);
        let alarm = Alarm::create(id, actor.user, draft, now)?;
        let calendar = self.calendar.calendar_for(actor.user).await?;
        let change = ChangeSet {
            audit: self.ports.audit(
                actor,
                "alarm.create",
                id.as_uuid(),
                None,
                Some(summary(&alarm)),
                now,
            ),
            events: vec![self.ports.event(
                &alarm,
                AlarmEventKind::Created,
                now,
                None,
                None,
                EventChange::Nothing,
            )],
            triggers: vec![TriggerPlan::Reschedule {
                alarm: id,
                version: alarm.version(),
                next: next_fire(&alarm, &calendar, now),
            }],
            op: AlarmOp::Create(alarm.clone(), self.limits.alarms()),
        };
        let plans = change.triggers.clone();
        self.ports.alarms.commit(change).await?;
        super::woke(self.ports.wake.as_ref(), &plans);
        Ok(alarm)
    }

    /// Replaces the editable fields, based on `expected` (optimistic concurrency).
    ///
    /// # Errors
    /// [`ServiceError::NotFound`], [`ServiceError::StaleVersion`] when the
    /// alarm changed since `expected`, [`ServiceError::Invalid`].
    pub async fn update(
        &self,
        actor: &Actor,
        id: AlarmId,
        draft: AlarmDraft,
        expected: AlarmVersion,
    ) -> Result<Alarm, ServiceError> {
        draft.channels.require_delivered()?;
        // A stored alarm over bounds set later keeps ringing as it is; a
        // replacement must meet today's bounds.
        self.limits.check_schedules(&draft.schedules)?;
        let current = self.ports.alarms.get(actor.user, id).await?;
        if current.version() != expected {
            return Err(ServiceError::StaleVersion {
                expected: expected.get(),
                actual: current.version().get(),
            });
        }
        if draft.sound != current.draft().sound {
            self.check_sound(actor, &draft).await?;
        }
        self.revise(
            actor,
            &current,
            draft,
            AlarmEventKind::Updated,
            "alarm.update",
        )
        .await
    }

    /// Turns the alarm on or off (no-op versions are not created), based on
    /// `expected` when given (optimistic concurrency, as for `update`).
    ///
    /// # Errors
    /// [`ServiceError::NotFound`]; [`ServiceError::StaleVersion`] when
    /// `expected` is given and the alarm changed since.
    pub async fn set_enabled(
        &self,
        actor: &Actor,
        id: AlarmId,
        enabled: bool,
        expected: Option<AlarmVersion>,
    ) -> Result<Alarm, ServiceError> {
        let current = self.ports.alarms.get(actor.user, id).await?;
        if let Some(expected) = expected
            && expected != current.version()
        {
            return Err(ServiceError::StaleVersion {
                expected: expected.get(),
                actual: current.version().get(),
            });
        }
        if current.enabled() == enabled {
            return Ok(current);
        }
        let mut draft = current.draft().clone();
        draft.enabled = enabled;
        let (kind, action) = if enabled {
            (AlarmEventKind::Enabled, "alarm.enable")
        } else {
            (AlarmEventKind::Disabled, "alarm.disable")
        };
        self.revise(actor, &current, draft, kind, action).await
    }

    async fn revise(
        &self,
        actor: &Actor,
        current: &Alarm,
        draft: AlarmDraft,
        kind: AlarmEventKind,
        action: &str,
    ) -> Result<Alarm, ServiceError> {
        let now = self.ports.clock.now();
        let alarm = current.revise(draft, now)?;
        let calendar = self.calendar.calendar_for(actor.user).await?;
        let change = ChangeSet {
            audit: self.ports.audit(
                actor,
                action,
                alarm.id().as_uuid(),
                Some(summary(current)),
                Some(summary(&alarm)),
                now,
            ),
            events: vec![self.ports.event(
                &alarm,
                kind,
                now,
                None,
                None,
                EventChange::Fields(&alarm.draft().changed_fields(current.draft())),
            )],
            triggers: vec![TriggerPlan::Reschedule {
                alarm: alarm.id(),
                version: alarm.version(),
                next: next_fire(&alarm, &calendar, now),
            }],
            op: AlarmOp::Update {
                alarm: alarm.clone(),
                expected: current.version(),
            },
        };
        let plans = change.triggers.clone();
        self.ports.alarms.commit(change).await?;
        super::woke(self.ports.wake.as_ref(), &plans);
        Ok(alarm)
    }

    /// Deletes the alarm and everything pending for it; its events stay.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`]; [`ServiceError::StaleVersion`] when
    /// `expected` is given and the alarm changed since.
    pub async fn delete(
        &self,
        actor: &Actor,
        id: AlarmId,
        expected: Option<AlarmVersion>,
    ) -> Result<(), ServiceError> {
        let now = self.ports.clock.now();
        let current = self.ports.alarms.get(actor.user, id).await?;
        if let Some(expected) = expected
            && expected != current.version()
        {
            return Err(ServiceError::StaleVersion {
                expected: expected.get(),
                actual: current.version().get(),
            });
        }
        let change = ChangeSet {
            audit: self.ports.audit(
                actor,
                "alarm.delete",
                id.as_uuid(),
                Some(summary(&current)),
                None,
                now,
            ),
            events: vec![self.ports.event(
                &current,
                AlarmEventKind::Deleted,
                now,
                None,
                None,
                EventChange::Nothing,
            )],
            triggers: vec![TriggerPlan::CancelAll { alarm: id }],
            op: AlarmOp::Delete {
                owner: actor.user,
                id,
                expected: current.version(),
            },
        };
        self.ports.alarms.commit(change).await?;
        Ok(())
    }

    /// The alarm's occurrences after `after` (exclusive), judged against
    /// the actor's calendar.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`].
    pub async fn preview(
        &self,
        actor: &Actor,
        id: AlarmId,
        query: OccurrenceQuery,
    ) -> Result<Preview, ServiceError> {
        let alarm = self.ports.alarms.get(actor.user, id).await?;
        let calendar = self.calendar.calendar_for(actor.user).await?;
        Ok(alarm.occurrences(&calendar, &query))
    }

    /// Snoozes the alarm's most recent ringing (not already snoozed)
    /// occurrence: it rings again after the alarm's snooze minutes.
    ///
    /// # Errors
    /// [`ServiceError::NotRinging`] when nothing rings;
    /// [`ServiceError::SnoozeLimit`] when the occurrence was snoozed as often
    /// as allowed; [`ServiceError::NotFound`].
    pub async fn snooze(&self, actor: &Actor, id: AlarmId) -> Result<Ringing, ServiceError> {
        Ok(self.snooze_until(actor, id).await?.0)
    }

    /// [`AlarmService::snooze`], also telling when the occurrence rings again.
    ///
    /// # Errors
    /// As [`AlarmService::snooze`].
    pub async fn snooze_until(
        &self,
        actor: &Actor,
        id: AlarmId,
    ) -> Result<(Ringing, Timestamp), ServiceError> {
        let now = self.ports.clock.now();
        let alarm = self.ports.alarms.get(actor.user, id).await?;
        let ringing = self.ports.ringing.ringing(actor.user, id).await?;
        let Some(current) = ringing
            .into_iter()
            .filter(|r| !r.snoozed)
            .max_by_key(|r| r.occurrence.at)
        else {
            return Err(ServiceError::NotRinging);
        };
        let policy = alarm.draft().snooze;
        if current.snoozes >= policy.max_snoozes() {
            return Err(ServiceError::SnoozeLimit {
                max: policy.max_snoozes(),
            });
        }
        let n = current.snoozes + 1;
        let updated = Ringing {
            snoozes: n,
            snoozed: true,
            ..current
        };
        let trigger = Trigger {
            alarm: id,
            owner: actor.user,
            occurrence: updated.occurrence,
            kind: TriggerKind::Snooze(n),
            due_at: now + SignedDuration::from_mins(i64::from(policy.minutes())),
            alarm_version: alarm.version(),
        };
        let due = trigger.due_at;
        let detail = format!("snooze {n} of {}", policy.max_snoozes());
        let change = ChangeSet {
            audit: self.ports.audit(
                actor,
                "alarm.snooze",
                id.as_uuid(),
                None,
                Some(detail.clone()),
                now,
            ),
            events: vec![self.ports.event(
                &alarm,
                AlarmEventKind::Snoozed,
                now,
                Some(updated.occurrence.at),
                Some(detail),
                EventChange::Nothing,
            )],
            triggers: Vec::new(),
            op: RingingOp::Snooze {
                ringing: updated.clone(),
                trigger,
            },
        };
        // The record can vanish between the read and the commit (a
        // dismissal, an expiry): that is "not ringing", as for dismiss.
        self.ports
            .ringing
            .commit_ringing(change)
            .await
            .map_err(|e| match ServiceError::from(e) {
                ServiceError::NotFound => ServiceError::NotRinging,
                other => other,
            })?;
        self.ports.wake.due(due);
        Ok((updated, due))
    }

    /// Dismisses every ringing occurrence of the alarm and cancels their
    /// follow-ups (snoozes, escalations).
    ///
    /// # Errors
    /// [`ServiceError::NotRinging`] when nothing rings; [`ServiceError::NotFound`].
    pub async fn dismiss(&self, actor: &Actor, id: AlarmId) -> Result<(), ServiceError> {
        let now = self.ports.clock.now();
        let alarm = self.ports.alarms.get(actor.user, id).await?;
        let ringing = self.ports.ringing.ringing(actor.user, id).await?;
        if ringing.is_empty() {
            return Err(ServiceError::NotRinging);
        }
        let events = ringing
            .iter()
            .map(|r| {
                self.ports.event(
                    &alarm,
                    AlarmEventKind::Dismissed,
                    now,
                    Some(r.occurrence.at),
                    None,
                    EventChange::Nothing,
                )
            })
            .collect();
        let change = ChangeSet {
            audit: self.ports.audit(
                actor,
                "alarm.dismiss",
                id.as_uuid(),
                None,
                Some(format!("{} occurrence(s)", ringing.len())),
                now,
            ),
            events,
            triggers: Vec::new(),
            op: RingingOp::Dismiss {
                owner: actor.user,
                alarm: id,
            },
        };
        self.ports
            .ringing
            .commit_ringing(change)
            .await
            .map_err(|e| match ServiceError::from(e) {
                ServiceError::NotFound => ServiceError::NotRinging,
                other => other,
            })
    }
}
