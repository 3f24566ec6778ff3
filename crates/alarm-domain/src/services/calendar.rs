//! Exception periods, holidays and holiday preferences, and the per-owner calendar the engine judges by.

use jiff::Timestamp;
use jiff::civil::Date;

use super::{Actor, Basics, Ports, ServiceError};
use crate::error::{ValidationError, codes};
use crate::firing::next_fire;
use crate::ids::{AlarmId, ExceptionPeriodId, HolidayId, UserId};
use crate::model::brazil;
use crate::model::{
    Country, ExceptionKind, ExceptionPeriod, Holiday, HolidayDate, HolidayName, Locale, Role,
    StateCode, User,
};
use crate::ports::{
    ChangeSet, ExceptionOp, HolidayOp, HolidayPreferences, PageRequest, PreferenceOp, StoreError,
    TriggerPlan,
};
use crate::schedule::Calendar;

super::service_ports! {
    /// The ports [`CalendarService`] takes.
    CalendarPorts {
        /// Owners' country and state (their holidays).
        users: dyn UserStore = users,
        /// The owners' alarms, re-planned when their calendar changes.
        alarms: dyn AlarmStore = alarms,
        /// Exception periods.
        exceptions: dyn ExceptionPeriodStore = exceptions,
        /// Holidays and preferences.
        holidays: dyn HolidayStore = holidays,
        /// The clock.
        clock: dyn Clock = clock,
        /// Ids.
        ids: dyn IdSource = ids,
        /// Told about new triggers.
        wake: dyn TriggerWake = wake,
    }
}

use crate::ports::{
    AlarmStore, Clock, ExceptionPeriodStore, HolidayStore, IdSource, TriggerWake, UserStore,
};

/// What the audit log keeps of a holiday.
fn holiday_summary(h: &Holiday) -> String {
    format!("name={:?} country={}", h.name(), h.country())
}

/// One day of a holiday list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedHoliday {
    /// The holiday's id (built-in ones have the same id every year).
    pub id: HolidayId,
    /// Its name.
    pub name: String,
    /// Its date in the year asked for.
    pub date: Date,
    /// National holiday, optional point or state holiday.
    pub observance: brazil::Observance,
    /// The state of a state holiday.
    pub state: Option<String>,
    /// Part of the built-in calendar (not stored, not editable).
    pub builtin: bool,
}

/// How many years after the current one the built-in calendar is applied
/// (previews and next fires further out than that see no built-in holiday).
pub const BUILTIN_YEARS_AHEAD: i32 = 5;

/// The built-in holidays that apply to someone living in `locale`, dated
/// for last year to [`BUILTIN_YEARS_AHEAD`] years after `now`'s (the
/// built-in calendar is Brazil's; other countries have none).
fn builtin_holidays(locale: &Locale, now: Timestamp) -> Vec<Holiday> {
    if locale.country() != brazil::brazil() {
        return Vec::new();
    }
    let year = i32::from(now.to_zoned(jiff::tz::TimeZone::UTC).year());
    (year - 1..=year + BUILTIN_YEARS_AHEAD)
        .flat_map(|y| brazil::holidays(y, locale.state().map(StateCode::as_str)))
        .map(|h| h.to_holiday())
        .collect()
}

/// What one [`CalendarService::replan_step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplanStep {
    /// No job is pending.
    Idle,
    /// The job changed under this batch (restarted by a newer holiday
    /// write, or advanced by another engine); nothing was written.
    Raced,
    /// A batch was re-planned.
    Worked {
        /// The job's country.
        country: Country,
        /// Users re-planned in this batch.
        users: usize,
        /// Whether that was the job's last batch.
        finished: bool,
    },
}

/// The most custom holidays one country may have (each calendar of the
/// country loads them all).
pub const MAX_CUSTOM_HOLIDAYS_PER_COUNTRY: usize = 500;

/// The most per-holiday preferences one user may keep.
pub const MAX_HOLIDAY_OVERRIDES: usize = 100;

/// The most exception periods one user may keep whatever the operator
/// sets: every fire of every alarm of the owner checks the list.
pub const MAX_EXCEPTION_PERIODS_PER_USER: usize = 1000;

/// Exception periods, holidays and preferences.
#[derive(Clone)]
pub struct CalendarService {
    ports: CalendarPorts,
    quota: crate::limits::Quota,
}

fn summary(p: &ExceptionPeriod) -> String {
    format!(
        "name={:?} type={} {}..={}",
        p.name(),
        p.kind().as_str(),
        p.start(),
        p.end()
    )
}

impl CalendarService {
    /// A service over `ports`.
    pub fn new(ports: Ports) -> Self {
        Self {
            quota: ports.limits.exception_periods(),
            ports: ports.into(),
        }
    }

    /// The calendar the engine judges `owner`'s alarms by: their exception
    /// periods, and the holidays of their country and state with their
    /// preference for each.
    ///
    /// # Errors
    /// Store failures; [`ServiceError::NotFound`] for an unknown owner.
    pub async fn calendar_for(&self, owner: UserId) -> Result<Calendar, ServiceError> {
        self.calendar_with(owner, |_| {}, None).await
    }

    /// The calendars of many owners at once, in five queries whatever their
    /// number (plus one per country): what the trigger engine judges a
    /// batch by. Unknown owners are left out.
    ///
    /// # Errors
    /// Store failures.
    pub async fn calendars_for(
        &self,
        owners: Vec<UserId>,
    ) -> Result<std::collections::HashMap<UserId, Calendar>, ServiceError> {
        use std::collections::HashMap;
        let now = self.ports.clock.now();
        let users = self.ports.users.get_many(owners.clone()).await?;
        let mut exceptions: HashMap<UserId, Vec<ExceptionPeriod>> = HashMap::new();
        for p in self.ports.exceptions.list_many(owners.clone()).await? {
            exceptions.entry(p.owner()).or_default().push(p);
        }
        let prefs: HashMap<UserId, HolidayPreferences> = self
            .ports
            .holidays
            .preferences_many(owners)
            .await?
            .into_iter()
            .collect();
        let mut by_country: HashMap<Country, Vec<Holiday>> = HashMap::new();
        let mut builtin_by_locale: HashMap<Locale, Vec<Holiday>> = HashMap::new();
        let mut out = HashMap::with_capacity(users.len());
        for user in users {
            let periods = exceptions.remove(&user.id()).unwrap_or_default();
            let Some(locale) = user.locale() else {
                out.insert(user.id(), Calendar::new(&periods, []));
                continue;
            };
            if let std::collections::hash_map::Entry::Vacant(slot) =
                by_country.entry(locale.country())
            {
                slot.insert(self.ports.holidays.list(locale.country()).await?);
            }
            let default = HolidayPreferences::default();
            let pref = prefs.get(&user.id()).unwrap_or(&default);
            // Computed once per locale of the batch, not once per user.
            let builtin = builtin_by_locale
                .entry(locale.clone())
                .or_insert_with(|| builtin_holidays(locale, now));
            let holidays = by_country[&locale.country()]
                .iter()
                .filter(|h| h.applies_to(locale.country(), locale.state()))
                .chain(builtin.iter());
            out.insert(
                user.id(),
                Calendar::new(&periods, holidays.map(|h| (h, pref.for_holiday(h.id())))),
            );
        }
        Ok(out)
    }

    /// The owner's calendar with `edit` applied to the stored exception
    /// periods and `prefs` (when given) instead of the stored preferences:
    /// how it will be once a pending change commits.
    async fn calendar_with(
        &self,
        owner: UserId,
        edit: impl FnOnce(&mut Vec<ExceptionPeriod>),
        prefs: Option<&HolidayPreferences>,
    ) -> Result<Calendar, ServiceError> {
        let user = self.ports.users.get(owner).await?;
        self.calendar_of(&user, edit, prefs).await
    }

    /// [`Self::calendar_with`] for `user` as given (a profile change not
    /// committed yet).
    async fn calendar_of(
        &self,
        user: &User,
        edit: impl FnOnce(&mut Vec<ExceptionPeriod>),
        prefs: Option<&HolidayPreferences>,
    ) -> Result<Calendar, ServiceError> {
        let owner = user.id();
        let mut exceptions = self.ports.exceptions.list(owner).await?;
        edit(&mut exceptions);
        let Some(locale) = user.locale() else {
            return Ok(Calendar::new(&exceptions, []));
        };
        let holidays: Vec<Holiday> = self
            .ports
            .holidays
            .list(locale.country())
            .await?
            .into_iter()
            .filter(|h| h.applies_to(locale.country(), locale.state()))
            .chain(builtin_holidays(locale, self.ports.clock.now()))
            .collect();
        let stored;
        let prefs = match prefs {
            Some(p) => p,
            None => {
                stored = self.ports.holidays.preferences(owner).await?;
                &stored
            }
        };
        Ok(Calendar::new(
            &exceptions,
            holidays.iter().map(|h| (h, prefs.for_holiday(h.id()))),
        ))
    }

    /// Trigger plans that reschedule every alarm of `owner` under `calendar`.
    pub(crate) async fn plans_for_owner(
        &self,
        owner: UserId,
        calendar: &Calendar,
        now: Timestamp,
    ) -> Result<Vec<TriggerPlan>, ServiceError> {
        let mut plans = Vec::new();
        let mut after: Option<AlarmId> = None;
        loop {
            let page = self
                .ports
                .alarms
                .list(owner, None, PageRequest::new(after, 100)?)
                .await?;
            for alarm in &page.items {
                plans.push(TriggerPlan::Reschedule {
                    alarm: alarm.id(),
                    version: alarm.version(),
                    next: next_fire(alarm, calendar, now),
                });
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(plans),
            }
        }
    }

    /// Trigger plans for every alarm of `user` as the user will be once a
    /// pending profile change (a new country or state) commits.
    pub(crate) async fn plans_for_user(
        &self,
        user: &User,
        now: Timestamp,
    ) -> Result<Vec<TriggerPlan>, ServiceError> {
        let calendar = self.calendar_of(user, |_| {}, None).await?;
        self.plans_for_owner(user.id(), &calendar, now).await
    }

    /// Recomputes the owner's triggers as they will be once a change to the
    /// exception list (`edit`) or the preferences (`prefs`) commits.
    async fn plans_after(
        &self,
        owner: UserId,
        now: Timestamp,
        edit: impl FnOnce(&mut Vec<ExceptionPeriod>),
        prefs: Option<&HolidayPreferences>,
    ) -> Result<Vec<TriggerPlan>, ServiceError> {
        let calendar = self.calendar_with(owner, edit, prefs).await?;
        self.plans_for_owner(owner, &calendar, now).await
    }

    /// The actor's exception periods.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_exceptions(
        &self,
        actor: &Actor,
    ) -> Result<Vec<ExceptionPeriod>, ServiceError> {
        Ok(self.ports.exceptions.list(actor.user).await?)
    }

    /// One of the actor's exception periods.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] for a missing or another owner's period.
    pub async fn get_exception(
        &self,
        actor: &Actor,
        id: ExceptionPeriodId,
    ) -> Result<ExceptionPeriod, ServiceError> {
        self.ports
            .exceptions
            .list(actor.user)
            .await?
            .into_iter()
            .find(|p| p.id() == id)
            .ok_or(ServiceError::NotFound)
    }

    /// Creates an exception period and reschedules the actor's alarms.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] for a bad name or range;
    /// [`ServiceError::OverQuota`] (`exception_periods_per_user`), judged by
    /// the store under the owner's lock.
    pub async fn create_exception(
        &self,
        actor: &Actor,
        name: &str,
        kind: ExceptionKind,
        start: Date,
        end: Date,
    ) -> Result<ExceptionPeriod, ServiceError> {
        let now = self.ports.clock.now();
        let id = self
            .ports
            .new_id(ExceptionPeriodId::from_uuid, ExceptionPeriodId::generate);
        let period = ExceptionPeriod::new(id, actor.user, name, kind, start, end)?;
        let added = period.clone();
        let triggers = self
            .plans_after(actor.user, now, |list| list.push(added), None)
            .await?;
        let audit = self.ports.audit(
            actor,
            "exception_period.create",
            id.as_uuid(),
            None,
            Some(summary(&period)),
            now,
        );
        self.ports
            .exceptions
            .commit(ChangeSet {
                op: ExceptionOp::Create(period.clone(), self.quota),
                audit,
                events: Vec::new(),
                triggers: triggers.clone(),
            })
            .await?;
        super::woke(self.ports.wake.as_ref(), &triggers);
        Ok(period)
    }

    /// Replaces one of the actor's exception periods.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] for a missing or another owner's period.
    pub async fn update_exception(
        &self,
        actor: &Actor,
        id: ExceptionPeriodId,
        name: &str,
        kind: ExceptionKind,
        start: Date,
        end: Date,
    ) -> Result<ExceptionPeriod, ServiceError> {
        let now = self.ports.clock.now();
        let before = self.ports.exceptions.get(actor.user, id).await?;
        let period = ExceptionPeriod::new(id, actor.user, name, kind, start, end)?;
        let replaced = period.clone();
        let triggers = self
            .plans_after(
                actor.user,
                now,
                |list| {
                    list.retain(|p| p.id() != id);
                    list.push(replaced);
                },
                None,
            )
            .await?;
        let audit = self.ports.audit(
            actor,
            "exception_period.update",
            id.as_uuid(),
            Some(summary(&before)),
            Some(summary(&period)),
            now,
        );
        self.ports
            .exceptions
            .commit(ChangeSet {
                op: ExceptionOp::Update(period.clone()),
                audit,
                events: Vec::new(),
                triggers: triggers.clone(),
            })
            .await?;
        super::woke(self.ports.wake.as_ref(), &triggers);
        Ok(period)
    }

    /// Deletes one of the actor's exception periods.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] for a missing or another owner's period.
    pub async fn delete_exception(
        &self,
        actor: &Actor,
        id: ExceptionPeriodId,
    ) -> Result<(), ServiceError> {
        let now = self.ports.clock.now();
        let before = self.ports.exceptions.get(actor.user, id).await?;
        let triggers = self
            .plans_after(actor.user, now, |list| list.retain(|p| p.id() != id), None)
            .await?;
        let audit = self.ports.audit(
            actor,
            "exception_period.delete",
            id.as_uuid(),
            Some(summary(&before)),
            None,
            now,
        );
        self.ports
            .exceptions
            .commit(ChangeSet {
                op: ExceptionOp::Delete {
                    owner: actor.user,
                    id,
                },
                audit,
                events: Vec::new(),
                triggers: triggers.clone(),
            })
            .await?;
        super::woke(self.ports.wake.as_ref(), &triggers);
        Ok(())
    }

    /// Holidays of a country.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_holidays(&self, country: Country) -> Result<Vec<Holiday>, ServiceError> {
        Ok(self.ports.holidays.list(country).await?)
    }

    /// Creates a holiday (administrators only).
    ///
    /// Triggers of affected users are re-planned afterwards by the
    /// country's re-plan job ([`Self::replan_step`]); until a user's turn
    /// comes, the engine re-checks suppressions at fire time, so a new
    /// holiday is honoured from the moment it commits.
    ///
    /// # Errors
    /// [`ServiceError::Forbidden`] for non-admins; [`ServiceError::Conflict`]
    /// for a duplicate.
    pub async fn create_holiday(
        &self,
        actor: &Actor,
        name: &str,
        date: HolidayDate,
        country: Country,
        state: Option<StateCode>,
        optional: bool,
    ) -> Result<Holiday, ServiceError> {
        if actor.role != Role::Admin {
            return Err(ServiceError::Forbidden);
        }
        // Bounded: every calendar of the country loads them all.
        if self.ports.holidays.list(country).await?.len() >= MAX_CUSTOM_HOLIDAYS_PER_COUNTRY {
            return Err(ValidationError::new(
                "holidays",
                codes::BAD_COUNT,
                format!("at most {MAX_CUSTOM_HOLIDAYS_PER_COUNTRY} custom holidays per country"),
            )
            .into());
        }
        let id = self.ports.new_id(HolidayId::from_uuid, HolidayId::generate);
        let holiday = Holiday::new(
            id,
            HolidayName::parse(name)?,
            date,
            country,
            state,
            optional,
        );
        self.write_holiday(actor, HolidayOp::Create(holiday.clone()), None)
            .await?;
        Ok(holiday)
    }

    /// Deletes a holiday (administrators only).
    ///
    /// # Errors
    /// [`ServiceError::Forbidden`] for non-admins; [`ServiceError::NotFound`].
    pub async fn delete_holiday(&self, actor: &Actor, id: HolidayId) -> Result<(), ServiceError> {
        if actor.role != Role::Admin {
            return Err(ServiceError::Forbidden);
        }
        let before = self.ports.holidays.get(id).await?;
        self.write_holiday(actor, HolidayOp::Delete(id), Some(&before))
            .await?;
        Ok(())
    }

    /// A stored custom holiday (built-in ones have no row).
    ///
    /// # Errors
    /// [`ServiceError::NotFound`].
    pub async fn get_holiday(&self, id: HolidayId) -> Result<Holiday, ServiceError> {
        Ok(self.ports.holidays.get(id).await?)
    }

    /// Replaces a holiday (administrators only); its id stays, so users'
    /// preferences for it stay. Affected users' triggers are re-planned
    /// afterwards by the country's re-plan job; the fire-time re-check
    /// honours the change in between.
    ///
    /// # Errors
    /// [`ServiceError::Forbidden`] for non-admins; [`ServiceError::NotFound`]
    /// for a missing (or built-in) holiday; [`ServiceError::Conflict`] when
    /// it would duplicate another.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_holiday(
        &self,
        actor: &Actor,
        id: HolidayId,
        name: &str,
        date: HolidayDate,
        country: Country,
        state: Option<StateCode>,
        optional: bool,
    ) -> Result<Holiday, ServiceError> {
        if actor.role != Role::Admin {
            return Err(ServiceError::Forbidden);
        }
        let before = self.ports.holidays.get(id).await?;
        let holiday = Holiday::new(
            id,
            HolidayName::parse(name)?,
            date,
            country,
            state,
            optional,
        );
        self.write_holiday(actor, HolidayOp::Update(holiday.clone()), Some(&before))
            .await?;
        Ok(holiday)
    }

    /// The holidays of `year` for someone in `country` and `state`: the
    /// built-in calendar's (Brazil's national holidays, optional points
    /// and the state's holidays) and the stored custom ones that fall in
    /// that year, by date.
    ///
    /// # Errors
    /// `year` with `out-of-range` outside 1900..=2200; store failures.
    pub async fn holidays_of_year(
        &self,
        year: i32,
        country: Country,
        state: Option<&StateCode>,
    ) -> Result<Vec<ListedHoliday>, ServiceError> {
        if !(1900..=2200).contains(&year) {
            return Err(ValidationError::new(
                "year",
                codes::OUT_OF_RANGE,
                format!("must be 1900..=2200, got {year}"),
            )
            .into());
        }
        let mut out: Vec<ListedHoliday> = Vec::new();
        if country == brazil::brazil() {
            out.extend(
                brazil::holidays(year, state.map(StateCode::as_str))
                    .iter()
                    .map(|h| ListedHoliday {
                        id: h.id(),
                        name: h.name.to_owned(),
                        date: h.date,
                        observance: h.observance(),
                        state: h.state.map(str::to_owned),
                        builtin: true,
                    }),
            );
        }
        for h in self.ports.holidays.list(country).await? {
            if !h.applies_to(country, state) {
                continue;
            }
            let date = match h.date() {
                HolidayDate::Fixed(d) if i32::from(d.year()) == year => Some(d),
                HolidayDate::Fixed(_) => None,
                // 29 February falls only in leap years.
                HolidayDate::Recurring { month, day } => i16::try_from(year)
                    .ok()
                    .and_then(|y| Date::new(y, month as i8, day as i8).ok()),
            };
            let Some(date) = date else { continue };
            out.push(ListedHoliday {
                id: h.id(),
                name: h.name().to_owned(),
                date,
                observance: match (h.state(), h.is_optional()) {
                    (Some(_), _) => brazil::Observance::State,
                    (None, true) => brazil::Observance::Optional,
                    (None, false) => brazil::Observance::National,
                },
                state: h.state().map(|s| s.as_str().to_owned()),
                builtin: false,
            });
        }
        out.sort_by(|a, b| (a.date, !a.builtin, &a.name).cmp(&(b.date, !b.builtin, &b.name)));
        Ok(out)
    }

    /// Commits an administrator's holiday write with its audit record
    /// (`holiday.create|update|delete`) and the re-plan job of every
    /// country whose calendar it changes (the old and the new one of a
    /// moved holiday). The users' triggers are re-planned by
    /// [`Self::replan_step`] afterwards, in bounded batches, not in this
    /// commit: one write can touch every user of a country.
    async fn write_holiday(
        &self,
        actor: &Actor,
        op: HolidayOp,
        before: Option<&Holiday>,
    ) -> Result<(), ServiceError> {
        let (action, id, after) = match &op {
            HolidayOp::Create(h) => ("holiday.create", h.id(), Some(h)),
            HolidayOp::Update(h) => ("holiday.update", h.id(), Some(h)),
            HolidayOp::Delete(id) => ("holiday.delete", *id, None),
        };
        let mut replan: Vec<Country> = before
            .iter()
            .chain(after.iter())
            .map(|h| h.country())
            .collect();
        // Sorted: two writes moving holidays between the same countries
        // lock the job rows in one order.
        replan.sort();
        replan.dedup();
        let now = self.ports.clock.now();
        let audit = self.ports.audit(
            actor,
            action,
            id.as_uuid(),
            before.map(holiday_summary),
            after.map(holiday_summary),
            now,
        );
        self.ports
            .holidays
            .commit(ChangeSet::audited(op, audit), replan)
            .await?;
        self.ports.wake.replan();
        Ok(())
    }

    /// Works one batch of the oldest pending re-plan job: the next `batch`
    /// users of its country (id order) get every alarm re-planned under
    /// the holidays as stored now, and the job's cursor moves past them in
    /// the same commit (the job ends with its last, short batch). Costs
    /// five calendar queries, one alarm page per 100 alarms of each user
    /// and one commit.
    ///
    /// # Errors
    /// Store failures (the batch is retried from the same cursor).
    pub async fn replan_step(&self, batch: usize) -> Result<ReplanStep, ServiceError> {
        let Some(job) = self.ports.holidays.replan_job().await? else {
            return Ok(ReplanStep::Idle);
        };
        let batch = batch.max(1);
        let users = self.ports.holidays.replan_users(&job, batch).await?;
        let now = self.ports.clock.now();
        let calendars = self.calendars_for(users.clone()).await?;
        let mut plans = Vec::new();
        for user in &users {
            if let Some(calendar) = calendars.get(user) {
                plans.extend(self.plans_for_owner(*user, calendar, now).await?);
            }
        }
        // In alarm order, the order the engine locks alarms in, so a batch
        // and a fire never wait on each other in a cycle.
        plans.sort_by_key(TriggerPlan::alarm);
        let next = if users.len() < batch {
            None
        } else {
            users.last().copied()
        };
        if !self
            .ports
            .holidays
            .replan_advance(&job, next, plans.clone())
            .await?
        {
            // Restarted by a newer write, or taken by another engine.
            return Ok(ReplanStep::Raced);
        }
        super::woke(self.ports.wake.as_ref(), &plans);
        Ok(ReplanStep::Worked {
            country: job.country,
            users: users.len(),
            finished: next.is_none(),
        })
    }

    /// The actor's holiday preferences.
    ///
    /// # Errors
    /// Store failures.
    pub async fn preferences(&self, actor: &Actor) -> Result<HolidayPreferences, ServiceError> {
        Ok(self.ports.holidays.preferences(actor.user).await?)
    }

    /// Replaces the actor's holiday preferences and reschedules their alarms.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] when an override names a missing holiday.
    pub async fn set_preferences(
        &self,
        actor: &Actor,
        preferences: HolidayPreferences,
    ) -> Result<(), ServiceError> {
        let now = self.ports.clock.now();
        if preferences.overrides.len() > MAX_HOLIDAY_OVERRIDES {
            return Err(ValidationError::new(
                "overrides",
                codes::BAD_COUNT,
                format!("at most {MAX_HOLIDAY_OVERRIDES} overrides"),
            )
            .into());
        }
        let mut seen = std::collections::HashSet::new();
        for (i, (id, _)) in preferences.overrides.iter().enumerate() {
            let field = format!("overrides[{i}].holiday_id");
            if !seen.insert(*id) {
                return Err(ValidationError::new(field, codes::DUPLICATE, "listed twice").into());
            }
            if brazil::is_builtin(*id) {
                continue;
            }
            match self.ports.holidays.get(*id).await {
                Ok(_) => {}
                Err(StoreError::NotFound) => {
                    return Err(ValidationError::new(
                        field,
                        codes::UNKNOWN_VALUE,
                        "no holiday has this id",
                    )
                    .into());
                }
                Err(e) => return Err(e.into()),
            }
        }
        let triggers = self
            .plans_after(actor.user, now, |_| {}, Some(&preferences))
            .await?;
        let audit = self.ports.audit(
            actor,
            "user.set_holiday_preferences",
            actor.user.as_uuid(),
            None,
            Some(format!(
                "default={} overrides={}",
                preferences.default.as_str(),
                preferences.overrides.len()
            )),
            now,
        );
        let op = PreferenceOp::Set {
            owner: actor.user,
            preferences,
        };
        self.ports
            .holidays
            .commit_preferences(ChangeSet {
                op,
                audit,
                events: Vec::new(),
                triggers: triggers.clone(),
            })
            .await?;
        super::woke(self.ports.wake.as_ref(), &triggers);
        Ok(())
    }
}
