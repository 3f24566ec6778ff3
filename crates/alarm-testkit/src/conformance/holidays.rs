//! Conformance checks of [`alarm_domain::ports::HolidayStore`].

use super::*;

fn br() -> Country {
    Country::parse("BR").expect("BR")
}

/// Christmas in Brazil, recurring, with an id of its own (not stored).
fn natal() -> Holiday {
    Holiday::new(
        HolidayId::generate(),
        HolidayName::parse("Natal").expect("name"),
        HolidayDate::recurring(12, 25).expect("date"),
        br(),
        None,
        false,
    )
}

fn create(ports: &Ports, admin: &User, h: &Holiday) -> ChangeSet<HolidayOp> {
    ChangeSet {
        op: HolidayOp::Create(h.clone()),
        audit: audit(ports, Some(admin.id()), "holiday.create", h.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    }
}

/// An admin and the stored Christmas holiday.
async fn admin_with_xmas(ports: &Ports) -> (User, Holiday) {
    let admin = fixtures::user(ports, "admin@example.com").await;
    let xmas = natal();
    ports
        .holidays
        .commit(create(ports, &admin, &xmas), vec![])
        .await
        .expect("create");
    (admin, xmas)
}

/// Skip by default, Christmas delayed by 30 minutes.
fn prefs(xmas: &Holiday) -> HolidayPreferences {
    HolidayPreferences {
        default: HolidayPreference::Skip,
        overrides: vec![(
            xmas.id(),
            HolidayPreference::Delay(DelayMinutes::new(30).expect("delay")),
        )],
    }
}

fn set(ports: &Ports, admin: &User, p: HolidayPreferences) -> ChangeSet<PreferenceOp> {
    ChangeSet {
        op: PreferenceOp::Set {
            owner: admin.id(),
            preferences: p,
        },
        audit: audit(
            ports,
            Some(admin.id()),
            "holiday_preferences.set",
            admin.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    }
}

/// The admin with Christmas stored and [`prefs`] set.
async fn admin_with_prefs(ports: &Ports) -> (User, Holiday, HolidayPreferences) {
    let (admin, xmas) = admin_with_xmas(ports).await;
    let prefs = prefs(&xmas);
    ports
        .holidays
        .commit_preferences(set(ports, &admin, prefs.clone()))
        .await
        .expect("set prefs");
    (admin, xmas, prefs)
}

/// A created holiday is read back by id and listed by its country only.
async fn created_holiday_is_read_back_and_listed_by_country(new_ports: Fresh) {
    let ports = new_ports().await;
    let (_, xmas) = admin_with_xmas(&ports).await;
    assert_eq!(ports.holidays.get(xmas.id()).await.expect("get"), xmas);
    assert_eq!(
        ports.holidays.list(br()).await.expect("list"),
        std::slice::from_ref(&xmas)
    );
    assert!(
        ports
            .holidays
            .list(Country::parse("PT").expect("PT"))
            .await
            .expect("list")
            .is_empty(),
        "listed by country"
    );
}

/// An update replaces the stored holiday under its id; a missing id is
/// not found, and an update that would make a twin of another conflicts.
async fn update_replaces_a_holiday_by_id(new_ports: Fresh) {
    let ports = new_ports().await;
    let (admin, xmas) = admin_with_xmas(&ports).await;
    let update = |h: &Holiday| ChangeSet {
        op: HolidayOp::Update(h.clone()),
        audit: audit(&ports, Some(admin.id()), "holiday.update", h.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    let eve = Holiday::new(
        xmas.id(),
        HolidayName::parse("Véspera de Natal").expect("name"),
        HolidayDate::recurring(12, 24).expect("date"),
        br(),
        Some(alarm_domain::model::StateCode::parse("SP").expect("state")),
        true,
    );
    ports
        .holidays
        .commit(update(&eve), vec![])
        .await
        .expect("update");
    assert_eq!(ports.holidays.get(xmas.id()).await.expect("get"), eve);
    assert_eq!(ports.holidays.list(br()).await.expect("list").len(), 1);
    let stranger = natal();
    is(
        ports.holidays.commit(update(&stranger), vec![]).await,
        not_found,
        "an id that was never stored",
    );
    assert_eq!(ports.holidays.get(stranger.id()).await.ok(), None);
    let other = natal();
    ports
        .holidays
        .commit(create(&ports, &admin, &other), vec![])
        .await
        .expect("create");
    let twin = Holiday::new(
        other.id(),
        HolidayName::parse("Véspera de Natal").expect("name"),
        HolidayDate::recurring(12, 24).expect("date"),
        br(),
        Some(alarm_domain::model::StateCode::parse("SP").expect("state")),
        true,
    );
    is(
        ports.holidays.commit(update(&twin), vec![]).await,
        conflict,
        "a twin of another holiday",
    );
    assert_eq!(ports.holidays.get(other.id()).await.expect("get"), other);
}

/// An override may name a built-in holiday (it has no row); deleting a
/// custom holiday removes every user's override of it.
async fn overrides_name_builtin_holidays_and_go_with_a_deleted_one(new_ports: Fresh) {
    let ports = new_ports().await;
    let (admin, xmas) = admin_with_xmas(&ports).await;
    let carnival = alarm_domain::model::brazil::national_holidays(2030)
        .into_iter()
        .find(|h| h.key == "carnaval-terca")
        .expect("carnival")
        .id();
    let prefs = HolidayPreferences {
        default: HolidayPreference::Skip,
        overrides: vec![
            (carnival, HolidayPreference::Fire),
            (xmas.id(), HolidayPreference::Fire),
        ],
    };
    ports
        .holidays
        .commit_preferences(set(&ports, &admin, prefs.clone()))
        .await
        .expect("a built-in holiday's override is kept");
    let mut stored = ports.holidays.preferences(admin.id()).await.expect("prefs");
    stored.overrides.sort_by_key(|(id, _)| *id);
    let mut want = prefs.clone();
    want.overrides.sort_by_key(|(id, _)| *id);
    assert_eq!(stored, want);
    ports
        .holidays
        .commit(
            ChangeSet {
                op: HolidayOp::Delete(xmas.id()),
                audit: audit(
                    &ports,
                    Some(admin.id()),
                    "holiday.delete",
                    xmas.id().as_uuid(),
                ),
                events: Vec::new(),
                triggers: Vec::new(),
            },
            vec![],
        )
        .await
        .expect("delete");
    assert_eq!(
        ports
            .holidays
            .preferences(admin.id())
            .await
            .expect("prefs")
            .overrides,
        vec![(carnival, HolidayPreference::Fire)],
        "the deleted holiday's override went with it"
    );
}

/// The same holiday under another id, or an existing id, conflicts.
async fn the_same_holiday_or_id_twice_conflicts(new_ports: Fresh) {
    let ports = new_ports().await;
    let (admin, xmas) = admin_with_xmas(&ports).await;
    let twin = natal();
    is(
        ports
            .holidays
            .commit(create(&ports, &admin, &twin), vec![])
            .await,
        conflict,
        "the same holiday twice",
    );
    is(
        ports
            .holidays
            .commit(create(&ports, &admin, &xmas), vec![])
            .await,
        conflict,
        "an existing holiday id",
    );
}

/// Preferences never set are the default: fire, no overrides.
async fn preferences_never_set_are_the_default(new_ports: Fresh) {
    let ports = new_ports().await;
    let (admin, _) = admin_with_xmas(&ports).await;
    assert_eq!(
        ports.holidays.preferences(admin.id()).await.expect("prefs"),
        HolidayPreferences::default(),
        "never set: fire, no overrides"
    );
}

/// Preferences set are read back as they were set.
async fn preferences_set_are_read_back(new_ports: Fresh) {
    let ports = new_ports().await;
    let (admin, _, prefs) = admin_with_prefs(&ports).await;
    assert_eq!(
        ports.holidays.preferences(admin.id()).await.expect("prefs"),
        prefs
    );
}

/// `preferences_many` returns the stored ones, and the default for whoever never set any.
async fn preferences_many_defaults_whoever_never_set_any(new_ports: Fresh) {
    let ports = new_ports().await;
    let (admin, _, prefs) = admin_with_prefs(&ports).await;
    let other = fixtures::user(&ports, "never-set@example.com").await;
    let mut many = ports
        .holidays
        .preferences_many(vec![other.id(), admin.id()])
        .await
        .expect("preferences_many");
    many.sort_by_key(|(o, _)| *o != admin.id());
    assert_eq!(
        many,
        [
            (admin.id(), prefs.clone()),
            (other.id(), HolidayPreferences::default())
        ],
        "preferences_many: the stored ones, and the default for whoever never set any"
    );
}

/// An override naming a missing holiday is not found, and the preferences stay as they were.
async fn override_naming_a_missing_holiday_is_refused(new_ports: Fresh) {
    let ports = new_ports().await;
    let (admin, _, prefs) = admin_with_prefs(&ports).await;
    let unknown = HolidayPreferences {
        default: HolidayPreference::Fire,
        overrides: vec![(HolidayId::generate(), HolidayPreference::Skip)],
    };
    is(
        ports
            .holidays
            .commit_preferences(set(&ports, &admin, unknown))
            .await,
        not_found,
        "an override naming a missing holiday",
    );
    assert_eq!(
        ports.holidays.preferences(admin.id()).await.expect("prefs"),
        prefs,
        "a refused change leaves the preferences as they were"
    );
}

/// A deletion removes the holiday (even one named in preferences), and deleting it again is not found.
async fn delete_removes_the_holiday_once(new_ports: Fresh) {
    let ports = new_ports().await;
    let (admin, xmas, _) = admin_with_prefs(&ports).await;
    let delete = |id| ChangeSet {
        op: HolidayOp::Delete(id),
        audit: audit(
            &ports,
            Some(admin.id()),
            "holiday.delete",
            xmas.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports
        .holidays
        .commit(delete(xmas.id()), vec![])
        .await
        .expect("delete");
    is(ports.holidays.get(xmas.id()).await, not_found, "deleted");
    is(
        ports.holidays.commit(delete(xmas.id()), vec![]).await,
        not_found,
        "deleting a missing holiday",
    );
}

/// A holiday write (re)starts one re-plan job per country it names; the
/// job walks that country's users in id order, advances only from the
/// generation and step it was read at, applies its plans with the cursor,
/// and is gone after its last batch.
async fn holiday_writes_leave_replan_jobs_walked_in_batches(new_ports: Fresh) {
    let ports = new_ports().await;
    assert_eq!(ports.holidays.replan_job().await.expect("job"), None);
    let admin = fixtures::user(&ports, "admin@example.com").await;
    let mut br_users = vec![admin.id()];
    for n in 0..3 {
        br_users.push(
            fixtures::user(&ports, &format!("br{n}@example.com"))
                .await
                .id(),
        );
    }
    br_users.sort();
    let pt = fixtures::user(&ports, "pt@example.com").await;
    let moved = User::new(
        pt.id(),
        pt.email().clone(),
        pt.display_name().clone(),
        pt.role(),
        pt.time_zone().clone(),
        Some(alarm_domain::model::Locale::new(
            Country::parse("PT").expect("PT"),
            None,
        )),
    );
    ports
        .users
        .commit(ChangeSet {
            op: UserOp::Update(moved),
            audit: audit(&ports, Some(pt.id()), "user.update", pt.id().as_uuid()),
            events: Vec::new(),
            triggers: Vec::new(),
        })
        .await
        .expect("move to Portugal");
    let xmas = natal();
    ports
        .holidays
        .commit(create(&ports, &admin, &xmas), vec![br()])
        .await
        .expect("create");
    let job = ports
        .holidays
        .replan_job()
        .await
        .expect("job")
        .expect("a job for BR");
    assert_eq!(
        (job.country, job.step, job.after),
        (br(), 0, None),
        "a new job starts before the first user"
    );
    let first = ports.holidays.replan_users(&job, 2).await.expect("users");
    assert_eq!(
        first,
        br_users[..2],
        "BR's users in id order, PT's left out"
    );
    let alarm = fixtures::alarm(&ports, admin.id(), "Wake", None).await;
    let plan = TriggerPlan::Reschedule {
        alarm: alarm.id(),
        version: alarm.version(),
        next: Some(trigger(&alarm, at(500), TriggerKind::Fire)),
    };
    assert!(
        ports
            .holidays
            .replan_advance(&job, Some(first[1]), vec![plan])
            .await
            .expect("advance"),
        "the job as read advances"
    );
    assert_eq!(
        ports
            .queue
            .pending(alarm.id())
            .await
            .expect("pending")
            .len(),
        1,
        "the batch's plans are applied with the cursor"
    );
    assert!(
        !ports
            .holidays
            .replan_advance(&job, Some(first[1]), vec![])
            .await
            .expect("advance"),
        "a batch read at an old step writes nothing"
    );
    let job = ports
        .holidays
        .replan_job()
        .await
        .expect("job")
        .expect("still pending");
    assert_eq!((job.step, job.after), (1, Some(first[1])));
    assert_eq!(
        ports.holidays.replan_users(&job, 10).await.expect("users"),
        br_users[2..],
        "the rest, after the cursor"
    );
    ports
        .holidays
        .commit(
            create(
                &ports,
                &admin,
                &Holiday::new(
                    HolidayId::generate(),
                    HolidayName::parse("Ano Novo").expect("name"),
                    HolidayDate::recurring(1, 1).expect("date"),
                    br(),
                    None,
                    false,
                ),
            ),
            vec![br()],
        )
        .await
        .expect("a second write");
    assert!(
        !ports
            .holidays
            .replan_advance(&job, None, vec![])
            .await
            .expect("advance"),
        "a newer write restarted the job"
    );
    let restarted = ports
        .holidays
        .replan_job()
        .await
        .expect("job")
        .expect("pending");
    assert_eq!(
        (
            restarted.generation > job.generation,
            restarted.step,
            restarted.after
        ),
        (true, 0, None),
        "restarted from the first user"
    );
    assert!(
        ports
            .holidays
            .replan_advance(&restarted, None, vec![])
            .await
            .expect("finish")
    );
    assert_eq!(
        ports.holidays.replan_job().await.expect("job"),
        None,
        "a finished job is removed"
    );
    ports
        .holidays
        .commit(
            create(
                &ports,
                &admin,
                &Holiday::new(
                    HolidayId::generate(),
                    HolidayName::parse("Tiradentes").expect("name"),
                    HolidayDate::recurring(4, 21).expect("date"),
                    br(),
                    None,
                    false,
                ),
            ),
            vec![br()],
        )
        .await
        .expect("a write after the job finished");
    let fresh = ports
        .holidays
        .replan_job()
        .await
        .expect("job")
        .expect("pending");
    assert!(
        fresh.generation > restarted.generation,
        "a generation is never reused"
    );
    assert!(
        !ports
            .holidays
            .replan_advance(&restarted, None, vec![])
            .await
            .expect("advance"),
        "a batch of the finished job cannot advance the new one"
    );
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports:
        created_holiday_is_read_back_and_listed_by_country,
        the_same_holiday_or_id_twice_conflicts,
        update_replaces_a_holiday_by_id,
        overrides_name_builtin_holidays_and_go_with_a_deleted_one,
        preferences_never_set_are_the_default,
        preferences_set_are_read_back,
        preferences_many_defaults_whoever_never_set_any,
        override_naming_a_missing_holiday_is_refused,
        delete_removes_the_holiday_once,
        holiday_writes_leave_replan_jobs_walked_in_batches,
    )
}
