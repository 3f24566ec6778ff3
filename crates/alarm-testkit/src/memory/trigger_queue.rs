//! The three queue ports over the in-memory state: claims and leases with fire outcomes ([`TriggerClaims`]), ringing occurrences ([`RingingStore`]) and the engine right ([`EngineRight`]).

use alarm_domain::ids::{AlarmId, UserId};
use alarm_domain::jiff::{SignedDuration, Timestamp};
use alarm_domain::model::AlarmEvent;
use alarm_domain::ports::{
    ChangeSet, EngineRight, FireOutcome, RingingOp, RingingStore, StoreError, TriggerClaims,
    TriggerPlan,
};
use alarm_domain::trigger::{
    Claimed, Delivery, LeaseToken, Ringing, RingingChange, Trigger, TriggerKind,
};
use async_trait::async_trait;

use super::{InMemory, State, TriggerKey};
use alarm_domain::firing::{stale_preparation, visible};

impl State {
    /// Writes a fired trigger's outcome; call only after its checks passed.
    fn apply_outcome(&mut self, outcome: FireOutcome) {
        self.fan_out(
            &outcome.deliveries.iter().collect::<Vec<_>>(),
            &outcome.events,
            true,
        );
        for e in &outcome.events {
            self.effective.insert(e.id, e.at);
        }
        self.append_events(outcome.events);
        self.deliveries.extend(outcome.deliveries);
        if let Some(follow_up) = outcome.follow_up {
            self.upsert_trigger(follow_up);
        }
        if let Some(plan) = outcome.next {
            self.apply_plan(plan);
        }
        match outcome.ringing {
            RingingChange::None => {}
            RingingChange::Upsert(r) => {
                self.ringing.insert((r.alarm, r.occurrence.at), r);
            }
            RingingChange::End { alarm, occurrence } => {
                self.ringing.remove(&(alarm, occurrence));
            }
        }
    }

    /// Puts the trigger back unleased when its outcome is a stale
    /// preparation ([`stale_preparation`]); says whether it did.
    fn put_back_if_stale(&mut self, key: TriggerKey, outcome: &FireOutcome) -> bool {
        let now = self.store_now();
        let stored = self.alarms.get(&key.0).map(|a| a.version().get());
        let Some(t) = self.triggers.get_mut(&key) else {
            return false;
        };
        if !stale_preparation(outcome, stored, t.trigger.due_at > now) {
            return false;
        }
        t.lease = None;
        true
    }

    fn find_lease(&self, token: LeaseToken) -> Option<TriggerKey> {
        self.triggers
            .iter()
            .find(|(_, t)| t.lease.is_some_and(|(tok, _)| tok == token))
            .map(|(k, _)| *k)
    }
}

#[async_trait]
impl TriggerClaims for InMemory {
    async fn claim(
        &self,
        now: Timestamp,
        limit: u32,
        lease: SignedDuration,
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut s = self.lock();
        let mut due: Vec<TriggerKey> = s
            .triggers
            .iter()
            .filter(|(_, t)| t.lease.is_none() && t.trigger.due_at <= now)
            .map(|(k, _)| *k)
            .collect();
        due.sort_by_key(|k| (s.triggers[k].trigger.due_at, *k));
        due.truncate(limit as usize);
        let until = now.checked_add(lease).unwrap_or(Timestamp::MAX);
        let mut claimed = Vec::with_capacity(due.len());
        for key in due {
            s.leases_issued += 1;
            let token = LeaseToken::from_uuid(uuid::Uuid::from_u64_pair(
                0x7e57_0000_0000_0000,
                s.leases_issued,
            ));
            if let Some(t) = s.triggers.get_mut(&key) {
                t.lease = Some((token, until));
                claimed.push(Claimed {
                    trigger: t.trigger.clone(),
                    token,
                    lease_until: until,
                });
            }
        }
        Ok(claimed)
    }

    async fn complete(&self, token: LeaseToken, outcome: FireOutcome) -> Result<(), StoreError> {
        let mut s = self.lock();
        let key = s.find_lease(token).ok_or(StoreError::LeaseLost)?;
        if s.put_back_if_stale(key, &outcome) {
            return Err(StoreError::LeaseLost);
        }
        s.check_events(&outcome.events)?;
        s.triggers.remove(&key);
        s.apply_outcome(outcome);
        Ok(())
    }

    async fn complete_many(
        &self,
        items: Vec<(LeaseToken, FireOutcome)>,
    ) -> Result<Vec<LeaseToken>, StoreError> {
        let mut s = self.lock();
        let mut lost = Vec::new();
        let mut keep = Vec::new();
        for (token, outcome) in items {
            match s.find_lease(token) {
                Some(key) if s.put_back_if_stale(key, &outcome) => lost.push(token),
                Some(key) if !keep.iter().any(|(k, _)| *k == key) => keep.push((key, outcome)),
                _ => lost.push(token),
            }
        }
        let all_events: Vec<AlarmEvent> = keep.iter().flat_map(|(_, o)| o.events.clone()).collect();
        s.check_events(&all_events)?;
        for (key, outcome) in keep {
            s.triggers.remove(&key);
            s.apply_outcome(outcome);
        }
        Ok(lost)
    }

    async fn release(&self, token: LeaseToken) -> Result<(), StoreError> {
        let mut s = self.lock();
        let key = s.find_lease(token).ok_or(StoreError::LeaseLost)?;
        if let Some(t) = s.triggers.get_mut(&key) {
            t.lease = None;
        }
        Ok(())
    }

    async fn rescue(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut s = self.lock();
        let mut rescued = 0;
        for t in s.triggers.values_mut() {
            if t.lease.is_some_and(|(_, until)| until <= now) {
                t.lease = None;
                rescued += 1;
            }
        }
        Ok(rescued)
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(self
            .lock()
            .triggers
            .values()
            .filter(|t| t.lease.is_none())
            .map(|t| t.trigger.due_at)
            .min())
    }

    async fn due_count(&self, now: Timestamp) -> Result<u64, StoreError> {
        Ok(self
            .lock()
            .triggers
            .values()
            .filter(|t| t.lease.is_none() && t.trigger.due_at <= now)
            .count() as u64)
    }

    async fn pending(&self, alarm: AlarmId) -> Result<Vec<Trigger>, StoreError> {
        let s = self.lock();
        let mut list: Vec<Trigger> = s
            .triggers
            .values()
            .filter(|t| t.trigger.alarm == alarm)
            .map(|t| t.trigger.clone())
            .collect();
        list.sort_by_key(|t| (t.due_at, t.key()));
        Ok(list)
    }

    async fn reschedule(&self, plans: Vec<TriggerPlan>) -> Result<(), StoreError> {
        let mut s = self.lock();
        for plan in plans {
            s.replan(plan);
        }
        Ok(())
    }

    async fn renew(
        &self,
        tokens: Vec<LeaseToken>,
        until: Timestamp,
    ) -> Result<Vec<LeaseToken>, StoreError> {
        let mut s = self.lock();
        let mut lost = Vec::new();
        for token in tokens {
            match s.find_lease(token) {
                Some(key) => {
                    if let Some(t) = s.triggers.get_mut(&key) {
                        t.lease = Some((token, until));
                    }
                }
                None => lost.push(token),
            }
        }
        Ok(lost)
    }
}

#[async_trait]
impl RingingStore for InMemory {
    async fn ringing(&self, owner: UserId, alarm: AlarmId) -> Result<Vec<Ringing>, StoreError> {
        let s = self.lock();
        let now = s.store_now();
        Ok(s.ringing
            .range((alarm, Timestamp::MIN)..=(alarm, Timestamp::MAX))
            .map(|(_, r)| r.clone())
            .filter(|r| r.owner == owner && visible(r.since, now))
            .collect())
    }

    async fn commit_ringing(&self, change: ChangeSet<RingingOp>) -> Result<(), StoreError> {
        let mut s = self.lock();
        s.check_common(&change)?;
        match change.op.clone() {
            RingingOp::Snooze { ringing, trigger } => {
                let key = (ringing.alarm, ringing.occurrence.at);
                let now = s.store_now();
                let stored = s
                    .ringing
                    .get(&key)
                    .filter(|r| r.owner == ringing.owner && visible(r.since, now))
                    .ok_or(StoreError::NotFound)?;
                alarm_domain::ports::check_snooze(stored, &ringing, &trigger)?;
                let occurrence = ringing.occurrence.at;
                // Leased escalations go too: their tokens die, so a runner
                // mid-escalation cannot ring over the user's snooze.
                s.triggers.retain(|(a, at, kind), _| {
                    !(*a == ringing.alarm
                        && *at == occurrence
                        && matches!(kind, TriggerKind::Escalate(_) | TriggerKind::Expire))
                });
                s.upsert_trigger(trigger);
                s.ringing.insert(key, ringing);
            }
            RingingOp::Dismiss { owner, alarm } => {
                // An occurrence prepared to ring later is not ringing yet.
                let now = s.store_now();
                let occurrences: Vec<Timestamp> = s
                    .ringing
                    .values()
                    .filter(|r| r.alarm == alarm && r.owner == owner && visible(r.since, now))
                    .map(|r| r.occurrence.at)
                    .collect();
                if occurrences.is_empty() {
                    return Err(StoreError::NotFound);
                }
                s.ringing
                    .retain(|(a, at), _| !(*a == alarm && occurrences.contains(at)));
                s.triggers.retain(|(a, at, kind), _| {
                    !(*a == alarm && occurrences.contains(at) && *kind != TriggerKind::Fire)
                });
            }
        }
        s.apply_common(change);
        Ok(())
    }

    async fn ringing_of(&self, owner: UserId) -> Result<Vec<Ringing>, StoreError> {
        let s = self.lock();
        let now = s.store_now();
        let mut list: Vec<Ringing> = s
            .ringing
            .values()
            .filter(|r| r.owner == owner && visible(r.since, now))
            .cloned()
            .collect();
        list.sort_by_key(|r| (r.occurrence.at, r.alarm));
        Ok(list)
    }

    async fn deliveries(&self, owner: UserId) -> Result<Vec<Delivery>, StoreError> {
        let s = self.lock();
        let now = s.store_now();
        Ok(s.deliveries
            .iter()
            .filter(|d| d.owner == owner && visible(d.created_at, now))
            .cloned()
            .collect())
    }
}

#[async_trait]
impl EngineRight for InMemory {
    async fn store_time(&self) -> Result<Timestamp, StoreError> {
        // The fake lives in one process: its clock is the machine's (or
        // the one a test pinned).
        Ok(self.lock().store_now())
    }

    async fn engine_lease(
        &self,
        holder: uuid::Uuid,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        match s.engine_lease {
            Some((other, expires)) if other != holder && expires > now => Ok(false),
            _ => {
                s.engine_lease = Some((holder, until));
                Ok(true)
            }
        }
    }

    async fn engine_unlease(&self, holder: uuid::Uuid) -> Result<(), StoreError> {
        let mut s = self.lock();
        if s.engine_lease.is_some_and(|(h, _)| h == holder) {
            s.engine_lease = None;
        }
        Ok(())
    }
}
