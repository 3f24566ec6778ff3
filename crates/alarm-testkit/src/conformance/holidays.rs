//! Conformance checks of [`alarm_domain::ports::HolidayStore`].

use super::*;

/// [`alarm_domain::ports::HolidayStore`], holidays and preferences.
async fn holiday_store(new_ports: Fresh) {
    let ports = new_ports().await;
    let admin = fixtures::user(&ports, "admin@example.com").await;
    let br = Country::parse("BR").expect("BR");
    let xmas = Holiday::new(
        HolidayId::generate(),
        HolidayName::parse("Natal").expect("name"),
        HolidayDate::recurring(12, 25).expect("date"),
        br,
        None,
        false,
    );
    let create = |h: &Holiday| ChangeSet {
        op: HolidayOp::Create(h.clone()),
        audit: audit(&ports, Some(admin.id()), "holiday.create", h.id().as_uuid()),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports.holidays.commit(create(&xmas)).await.expect("create");
    assert_eq!(ports.holidays.get(xmas.id()).await.expect("get"), xmas);
    assert_eq!(
        ports.holidays.list(br).await.expect("list"),
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
    let twin = Holiday::new(
        HolidayId::generate(),
        HolidayName::parse("Natal").expect("name"),
        HolidayDate::recurring(12, 25).expect("date"),
        br,
        None,
        false,
    );
    is(
        ports.holidays.commit(create(&twin)).await,
        conflict,
        "the same holiday twice",
    );
    is(
        ports.holidays.commit(create(&xmas)).await,
        conflict,
        "an existing holiday id",
    );

    assert_eq!(
        ports.holidays.preferences(admin.id()).await.expect("prefs"),
        HolidayPreferences::default(),
        "never set: fire, no overrides"
    );
    let prefs = HolidayPreferences {
        default: HolidayPreference::Skip,
        overrides: vec![(
            xmas.id(),
            HolidayPreference::Delay(DelayMinutes::new(30).expect("delay")),
        )],
    };
    let set = |p: HolidayPreferences| ChangeSet {
        op: PreferenceOp::Set {
            owner: admin.id(),
            preferences: p,
        },
        audit: audit(
            &ports,
            Some(admin.id()),
            "holiday_preferences.set",
            admin.id().as_uuid(),
        ),
        events: Vec::new(),
        triggers: Vec::new(),
    };
    ports
        .holidays
        .commit_preferences(set(prefs.clone()))
        .await
        .expect("set prefs");
    assert_eq!(
        ports.holidays.preferences(admin.id()).await.expect("prefs"),
        prefs
    );
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
    let unknown = HolidayPreferences {
        default: HolidayPreference::Fire,
        overrides: vec![(HolidayId::generate(), HolidayPreference::Skip)],
    };
    is(
        ports.holidays.commit_preferences(set(unknown)).await,
        not_found,
        "an override naming a missing holiday",
    );
    assert_eq!(
        ports.holidays.preferences(admin.id()).await.expect("prefs"),
        prefs,
        "a refused change leaves the preferences as they were"
    );

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
        .commit(delete(xmas.id()))
        .await
        .expect("delete");
    is(ports.holidays.get(xmas.id()).await, not_found, "deleted");
    is(
        ports.holidays.commit(delete(xmas.id())).await,
        not_found,
        "deleting a missing holiday",
    );
}

/// The checks of this module, in the order they are listed.
pub(super) fn checks() -> Vec<Check> {
    checks!(Ports: holiday_store)
}
