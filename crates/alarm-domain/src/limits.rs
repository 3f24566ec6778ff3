//! Per-account quotas and the bound on how often one alarm may ring: the operator's numbers, and the one rule that applies each of them.
//!
//! Counts that two requests could race past (alarms, webhooks, exception
//! periods, routines per account) travel to the store inside the create
//! operation as a [`Quota`]; the store counts the owner's rows under the
//! owner's lock, in the insert's own transaction, and asks
//! [`Quota::admit`]. Bounds on one input (schedules per alarm, rings per
//! day) are judged here, before anything is stored.

use crate::error::{ValidationError, codes};
use crate::model::{MAX_SCHEDULES, Schedules};
use crate::ports::StoreError;

/// How many of one kind of thing an owner may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The quota's stable name, as the API reports it (`alarms_per_user`).
    pub name: &'static str,
    /// The most the owner may hold.
    pub limit: u32,
}

impl Quota {
    /// A quota of `limit` named `name`.
    pub const fn new(name: &'static str, limit: u32) -> Self {
        Self { name, limit }
    }

    /// No cap (fixtures and stores' own tests that are not about quotas).
    pub const fn unlimited(name: &'static str) -> Self {
        Self {
            name,
            limit: u32::MAX,
        }
    }

    /// Whether a replacement may be added while the one it replaces is
    /// still among the `held` (a rotated API key, until its overlap ends).
    ///
    /// # Errors
    /// [`StoreError::OverQuota`] when the others already reach the limit.
    pub fn admit_replacing(&self, held: u64) -> Result<(), StoreError> {
        self.admit(held.saturating_sub(1))
    }

    /// Whether one more may be added to the `held` the owner has now.
    ///
    /// # Errors
    /// [`StoreError::OverQuota`] when `held` already reaches the limit.
    pub fn admit(&self, held: u64) -> Result<(), StoreError> {
        if held >= u64::from(self.limit) {
            return Err(StoreError::OverQuota {
                quota: self.name,
                limit: self.limit,
            });
        }
        Ok(())
    }
}

/// The operator's limits. [`Limits::default`] holds the values a hosted
/// product would pick; the apps read each from a setting (`QUOTA_*`,
/// `MAX_FIRES_PER_DAY`), so benchmarks that need 100,000 alarms raise them
/// there, not through anything a user can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Alarms one account may hold.
    pub alarms_per_user: u32,
    /// Schedules one alarm may have (at most [`MAX_SCHEDULES`]).
    pub schedules_per_alarm: u32,
    /// Wall times one alarm's schedules may yield on one local day, all
    /// schedules together. A rule's wall times are minute-granular, so no
    /// rule rings twice in a minute; this caps the rest.
    pub fires_per_day: u32,
    /// Webhook registrations one account may hold.
    pub webhooks_per_user: u32,
    /// Exception periods one account may hold.
    pub exception_periods_per_user: u32,
    /// Routines one account may hold.
    pub routines_per_user: u32,
    /// API keys one account may hold.
    pub api_keys_per_user: u32,
    /// Resumable uploads one account may have open at once.
    pub uploads_per_user: u32,
    /// Sounds one account may keep.
    pub sounds_per_user: u32,
    /// Mebibytes of sounds one account may keep, all together.
    pub sound_megabytes_per_user: u32,
    /// Seconds a webhook's rotated-out secret keeps signing beside the new
    /// one (0: it stops at once).
    pub webhook_secret_overlap_seconds: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            alarms_per_user: 200,
            schedules_per_alarm: MAX_SCHEDULES as u32,
            // Every 15 minutes around the clock.
            fires_per_day: 96,
            webhooks_per_user: 20,
            exception_periods_per_user: 100,
            routines_per_user: 100,
            api_keys_per_user: 20,
            uploads_per_user: 5,
            sounds_per_user: 50,
            // Five files at the 100 MB upload limit.
            sound_megabytes_per_user: 500,
            // A day: receivers deploy the new secret within it.
            webhook_secret_overlap_seconds: 86_400,
        }
    }
}

impl Limits {
    /// The alarm quota.
    pub fn alarms(&self) -> Quota {
        Quota::new("alarms_per_user", self.alarms_per_user)
    }

    /// The webhook-registration quota.
    pub fn webhooks(&self) -> Quota {
        Quota::new("webhooks_per_user", self.webhooks_per_user)
    }

    /// The exception-period quota.
    pub fn exception_periods(&self) -> Quota {
        Quota::new(
            "exception_periods_per_user",
            self.exception_periods_per_user,
        )
    }

    /// The routine quota.
    pub fn routines(&self) -> Quota {
        Quota::new("routines_per_user", self.routines_per_user)
    }

    /// The API-key quota.
    pub fn api_keys(&self) -> Quota {
        Quota::new("api_keys_per_user", self.api_keys_per_user)
    }

    /// The open-upload quota.
    pub fn uploads(&self) -> Quota {
        Quota::new("uploads_per_user", self.uploads_per_user)
    }

    /// The sound quotas.
    pub fn sounds(&self) -> crate::model::SoundQuota {
        crate::model::SoundQuota {
            count: self.sounds_per_user,
            megabytes: self.sound_megabytes_per_user,
        }
    }

    /// The schedule count, judged before any schedule is parsed.
    ///
    /// # Errors
    /// `schedules` with `bad-count`.
    pub fn check_schedule_count(&self, count: usize) -> Result<(), ValidationError> {
        let most = (self.schedules_per_alarm as usize).min(MAX_SCHEDULES);
        if count == 0 || count > most {
            return Err(ValidationError::new(
                "schedules",
                codes::BAD_COUNT,
                format!("must hold 1..={most} schedules, got {count}"),
            ));
        }
        Ok(())
    }

    /// The schedule count and how often the schedules may ring: the sum
    /// of each schedule's wall times per day must stay within
    /// [`Limits::fires_per_day`]. Judged on the parsed schedules, before
    /// any of them is expanded.
    ///
    /// # Errors
    /// `schedules` with `bad-count` or `too-frequent`.
    pub fn check_schedules(&self, schedules: &Schedules) -> Result<(), ValidationError> {
        self.check_schedule_count(schedules.as_slice().len())?;
        let per_day = schedules
            .as_slice()
            .iter()
            .fold(0u32, |sum, s| sum.saturating_add(s.wall_times_per_day()));
        if per_day > self.fires_per_day {
            return Err(ValidationError::new(
                "schedules",
                codes::TOO_FREQUENT,
                format!(
                    "these schedules may ring {per_day} times a day; at most {} are allowed \
                     (each rule rings at BYHOUR × BYMINUTE wall times a day)",
                    self.fires_per_day
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{RecurrenceRule, Schedule, WallTime};

    fn rule(text: &str) -> Schedule {
        Schedule::Rule(Box::new(
            RecurrenceRule::parse(text, "2026-01-01T00:00").expect("rule"),
        ))
    }

    #[test]
    fn a_quota_admits_below_its_limit_only() {
        let q = Quota::new("alarms_per_user", 2);
        assert!(q.admit(0).is_ok());
        assert!(q.admit(1).is_ok());
        assert!(matches!(
            q.admit(2),
            Err(StoreError::OverQuota {
                quota: "alarms_per_user",
                limit: 2
            })
        ));
        assert!(Quota::unlimited("x").admit(u64::from(u32::MAX) - 1).is_ok());
    }

    #[test]
    fn rings_per_day_are_summed_over_schedules() {
        let limits = Limits::default();
        let every_quarter_hour = rule(
            "FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;BYMINUTE=0,15,30,45",
        );
        assert_eq!(every_quarter_hour.wall_times_per_day(), 96);
        let one = Schedules::new(vec![every_quarter_hour.clone()]).expect("schedules");
        assert!(limits.check_schedules(&one).is_ok(), "exactly the limit");
        let over = Schedules::new(vec![
            every_quarter_hour,
            Schedule::Daily {
                time: WallTime::parse("07:00").expect("time"),
            },
        ])
        .expect("schedules");
        let e = limits.check_schedules(&over).expect_err("97 a day");
        assert_eq!((e.field(), e.code()), ("schedules", codes::TOO_FREQUENT));
        let every_minute = rule(
            "FREQ=YEARLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;BYMINUTE=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59",
        );
        assert_eq!(every_minute.wall_times_per_day(), 1440);
        assert!(
            limits
                .check_schedules(&Schedules::new(vec![every_minute]).expect("schedules"))
                .is_err()
        );
    }

    #[test]
    fn the_schedule_count_is_capped_by_the_setting_and_the_model() {
        let limits = Limits {
            schedules_per_alarm: 3,
            ..Limits::default()
        };
        assert!(limits.check_schedule_count(3).is_ok());
        assert_eq!(
            limits.check_schedule_count(4).expect_err("4").code(),
            codes::BAD_COUNT
        );
        assert!(limits.check_schedule_count(0).is_err());
        let loose = Limits {
            schedules_per_alarm: 1000,
            ..Limits::default()
        };
        assert!(loose.check_schedule_count(MAX_SCHEDULES + 1).is_err());
    }
}
