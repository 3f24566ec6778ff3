//! The calendar over HTTP on both databases: exception periods (owned, filtered, refused with the field named, moving the next fire and the preview at once), holiday preferences and profile changes.

use alarm_domain::jiff::ToSpan;
use alarm_domain::jiff::civil::Date;
use serde_json::json;

use crate::support::Harness;

fn date_of(instant: &str) -> Date {
    instant[..10].parse().expect("a date")
}

async fn next_fire(h: &Harness, alarm: &str, token: &str) -> Date {
    let r = h
        .req("GET", &format!("/api/v1/alarms/{alarm}"))
        .bearer(token)
        .send()
        .await;
    date_of(r.body["next_fire_at"].as_str().expect("next fire"))
}

async fn exception_periods_are_owned_filtered_and_move_the_next_fire(h: &Harness) {
    let ana = h.account("ana@example.com").await;
    let bob = h.account("bob@example.com").await;
    let created = h
        .req("POST", "/api/v1/alarms")
        .bearer(&ana.access)
        .json(json!({"name": "Wake", "time_zone": "UTC", "schedules": [{"kind": "daily", "time": "07:00"}]}))
        .send()
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let alarm = created.body["id"].as_str().expect("id").to_owned();
    let first = date_of(created.body["next_fire_at"].as_str().expect("next fire"));

    // Three silent days from the next fire on: the next fire moves past them.
    let end = first.checked_add(2.days()).expect("end");
    let period = h
        .req("POST", "/api/v1/exception-periods")
        .bearer(&ana.access)
        .json(json!({"name": "Lisbon", "type": "vacation", "start": first.to_string(), "end": end.to_string()}))
        .send()
        .await;
    assert_eq!(period.status, 201, "{}", period.body);
    let period_id = period.body["id"].as_str().expect("id").to_owned();
    assert!(
        period
            .header("location")
            .is_some_and(|l| l.ends_with(&format!("/api/v1/exception-periods/{period_id}"))),
        "{:?}",
        period.headers
    );
    let alarm_now = h
        .req("GET", &format!("/api/v1/alarms/{alarm}"))
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(
        date_of(alarm_now.body["next_fire_at"].as_str().expect("next fire")),
        end.checked_add(1.day()).expect("day after"),
        "the period moved the next fire at once"
    );
    let preview = h
        .req(
            "GET",
            &format!("/api/v1/alarms/{alarm}/occurrences?include_suppressed=true&limit=4"),
        )
        .bearer(&ana.access)
        .send()
        .await;
    let items = preview.body["items"].as_array().expect("items");
    for item in &items[..3] {
        assert_eq!(item["suppressed"], json!(true), "{item}");
        assert_eq!(item["reason"], json!("exception-period"));
        assert_eq!(
            item["reason_detail"],
            json!("Lisbon"),
            "the preview names the period"
        );
    }
    assert_eq!(items[3]["suppressed"], json!(false));

    // Filters.
    let travel = h
        .req("POST", "/api/v1/exception-periods")
        .bearer(&ana.access)
        .json(json!({"name": "Conference", "type": "travel", "start": "2031-01-10", "end": "2031-01-12"}))
        .send()
        .await;
    assert_eq!(travel.status, 201, "{}", travel.body);
    let ids = |body: &serde_json::Value| -> Vec<String> {
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| p["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let list = |query: &str| h.req("GET", &format!("/api/v1/exception-periods{query}"));
    let all = list("").bearer(&ana.access).send().await;
    assert_eq!(ids(&all.body).len(), 2);
    let on = list("?active_on=2031-01-11")
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(
        ids(&on.body),
        vec![travel.body["id"].as_str().expect("id").to_owned()]
    );
    let kind = list("?type=vacation").bearer(&ana.access).send().await;
    assert_eq!(ids(&kind.body), vec![period_id.clone()]);
    let both = list("?type=vacation&active_on=2031-01-11")
        .bearer(&ana.access)
        .send()
        .await;
    assert!(ids(&both.body).is_empty());
    let bad_day = list("?active_on=11/01/2031")
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(bad_day.problem(400, "validation").field(), "active_on");
    let bad_kind = list("?type=sabbatical").bearer(&ana.access).send().await;
    assert_eq!(bad_kind.problem(400, "validation").field(), "type");

    // Refusals name the field and store nothing.
    for (body, field) in [
        (
            json!({"name": "x", "type": "vacation", "start": "2031-13-01", "end": "2031-12-02"}),
            "start",
        ),
        (
            json!({"name": "x", "type": "vacation", "start": "2031-02-01", "end": "2031-01-02"}),
            "end",
        ),
        (
            json!({"name": "x", "type": "vacation", "start": "2031-01-01", "end": "2032-01-03"}),
            "end",
        ),
        (
            json!({"name": "", "type": "vacation", "start": "2031-01-01", "end": "2031-01-03"}),
            "name",
        ),
        (
            json!({"name": "x", "type": "gap-year", "start": "2031-01-01", "end": "2031-01-03"}),
            "type",
        ),
    ] {
        let r = h
            .req("POST", "/api/v1/exception-periods")
            .bearer(&ana.access)
            .json(body.clone())
            .send()
            .await;
        assert_eq!(r.problem(422, "validation").field(), field, "{body}");
    }
    assert_eq!(
        ids(&list("").bearer(&ana.access).send().await.body).len(),
        2
    );

    // Another user sees none of it, and every id of ana's is 404 to him.
    let mine = list("").bearer(&bob.access).send().await;
    assert!(ids(&mine.body).is_empty());
    let path = format!("/api/v1/exception-periods/{period_id}");
    h.req("GET", &path)
        .bearer(&bob.access)
        .send()
        .await
        .problem(404, "not-found");
    h.req("PUT", &path)
        .bearer(&bob.access)
        .json(json!({"name": "Mine", "type": "custom", "start": "2031-01-01", "end": "2031-01-01"}))
        .send()
        .await
        .problem(404, "not-found");
    h.req("DELETE", &path)
        .bearer(&bob.access)
        .send()
        .await
        .problem(404, "not-found");
    h.req("GET", "/api/v1/exception-periods/not-a-uuid")
        .bearer(&ana.access)
        .send()
        .await
        .problem(404, "not-found");

    // Replacing and deleting move the next fire back.
    let replaced = h
        .req("PUT", &path)
        .bearer(&ana.access)
        .json(json!({"name": "Lisbon, short", "type": "vacation", "start": first.to_string(), "end": first.to_string()}))
        .send()
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["name"], json!("Lisbon, short"));
    assert_eq!(
        next_fire(h, &alarm, &ana.access).await,
        first.checked_add(1.day()).expect("day after")
    );
    let deleted = h.req("DELETE", &path).bearer(&ana.access).send().await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        next_fire(h, &alarm, &ana.access).await,
        first,
        "the alarm rings on the first day again"
    );
    h.req("GET", &path)
        .bearer(&ana.access)
        .send()
        .await
        .problem(404, "not-found");
}

/// Registers `email` living in `country`/`state` (holidays come from there).
async fn resident(h: &Harness, email: &str, country: &str, state: Option<&str>) -> String {
    let mut body = json!({"email": email, "password": "correct horse battery staple", "display_name": "R", "country": country});
    if let Some(s) = state {
        body["state"] = json!(s);
    }
    let r = h
        .req("POST", "/api/v1/auth/register")
        .json(body)
        .send()
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    h.login(email, "correct horse battery staple").await.access
}

async fn holiday_preferences_replace_validate_and_reset(h: &Harness) {
    let ana = h.account("ana@example.com").await;
    let prefs = || h.req("GET", "/api/v1/holiday-preferences");
    let fresh = prefs().bearer(&ana.access).send().await;
    assert_eq!(fresh.status, 200);
    assert_eq!(
        fresh.body,
        json!({"default": {"action": "fire"}, "overrides": []}),
        "every holiday rings until told otherwise"
    );
    let put = |body: serde_json::Value| {
        h.req("PUT", "/api/v1/holiday-preferences")
            .bearer(&ana.access)
            .json(body)
    };
    let set = put(json!({"default": {"action": "delay", "minutes": 90}}))
        .send()
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(
        set.body["default"],
        json!({"action": "delay", "minutes": 90})
    );
    assert_eq!(prefs().bearer(&ana.access).send().await.body, set.body);

    for (body, field) in [
        (json!({"default": {"action": "delay"}}), "default.minutes"),
        (
            json!({"default": {"action": "delay", "minutes": 1441}}),
            "default.minutes",
        ),
        (
            json!({"default": {"action": "skip", "minutes": 5}}),
            "default.minutes",
        ),
        (json!({"default": {"action": "ring"}}), "default.action"),
        (
            json!({"default": {"action": "fire"}, "overrides": [{"holiday_id": "nope", "action": "skip"}]}),
            "overrides[0].holiday_id",
        ),
        (
            json!({"default": {"action": "fire"}, "overrides": [{"holiday_id": "0190d0e0-0000-7000-8000-000000000000", "action": "skip"}]}),
            "overrides[0].holiday_id",
        ),
    ] {
        let r = put(body.clone()).send().await;
        assert_eq!(r.problem(422, "validation").field(), field, "{body}");
    }
    let too_many: Vec<serde_json::Value> = (0..101)
        .map(|_| json!({"holiday_id": "0190d0e0-0000-7000-8000-000000000000", "action": "skip"}))
        .collect();
    let r = put(json!({"default": {"action": "fire"}, "overrides": too_many}))
        .send()
        .await;
    assert_eq!(r.problem(422, "validation").field(), "overrides");
    assert_eq!(
        prefs().bearer(&ana.access).send().await.body,
        set.body,
        "a refused change stores nothing"
    );
    let reset = h
        .req("DELETE", "/api/v1/holiday-preferences")
        .bearer(&ana.access)
        .send()
        .await;
    assert_eq!(reset.status, 204);
    assert_eq!(prefs().bearer(&ana.access).send().await.body, fresh.body);
}

async fn the_profile_changes_what_is_sent_and_keeps_the_rest(h: &Harness) {
    let ana = resident(h, "ana@example.com", "BR", Some("SP")).await;
    let me = || h.req("GET", "/api/v1/auth/me").bearer(&ana);
    let patch = |body: serde_json::Value| h.req("PATCH", "/api/v1/auth/me").bearer(&ana).json(body);

    let r = patch(json!({"display_name": "Ana Lima", "time_zone": "America/Sao_Paulo"}))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (
            &r.body["display_name"],
            &r.body["time_zone"],
            &r.body["country"],
            &r.body["state"]
        ),
        (
            &json!("Ana Lima"),
            &json!("America/Sao_Paulo"),
            &json!("BR"),
            &json!("SP")
        ),
        "what was left out stays"
    );
    assert_eq!(me().send().await.body, r.body);
    // The default zone is the zone of new alarms that name none; a
    // replacement that names none keeps the alarm's own.
    let daily = json!({"name": "Wake", "schedules": [{"kind": "daily", "time": "07:00"}]});
    let alarm = h
        .req("POST", "/api/v1/alarms")
        .bearer(&ana)
        .json(daily.clone())
        .send()
        .await;
    assert_eq!(alarm.status, 201, "{}", alarm.body);
    assert_eq!(alarm.body["time_zone"], json!("America/Sao_Paulo"));
    patch(json!({"time_zone": "Europe/Lisbon"})).send().await;
    let id = alarm.body["id"].as_str().expect("id");
    let replaced = h
        .req("PUT", &format!("/api/v1/alarms/{id}"))
        .bearer(&ana)
        .header("If-Match", "*")
        .json(daily)
        .send()
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["time_zone"], json!("America/Sao_Paulo"));
    let r = patch(json!({"state": "RJ"})).send().await;
    assert_eq!(
        (&r.body["country"], &r.body["state"]),
        (&json!("BR"), &json!("RJ"))
    );
    let r = patch(json!({"country": null})).send().await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.get("country").is_none() && r.body.get("state").is_none(),
        "{}",
        r.body
    );

    for (body, field) in [
        (json!({"time_zone": "Mars/Olympus"}), "time_zone"),
        (json!({"display_name": ""}), "display_name"),
        (json!({"display_name": null}), "display_name"),
        (json!({"state": "SP"}), "state"),
        (json!({"country": "Brazil"}), "country"),
    ] {
        let r = patch(body.clone()).send().await;
        assert_eq!(r.problem(422, "validation").field(), field, "{body}");
    }
    let r = patch(json!({"email": "x@example.com"})).send().await;
    assert!(
        r.status == 400 || r.status == 422,
        "unknown members are refused: {}",
        r.status
    );
    assert!(
        me().send().await.body.get("country").is_none(),
        "refusals store nothing"
    );
    h.req("PATCH", "/api/v1/auth/me")
        .json(json!({"display_name": "x"}))
        .send()
        .await
        .problem(401, "unauthorized");
}

/// Easter Sunday by Oudin's algorithm (as Tøndering gives it), written
/// here independently of the domain's Meeus/Jones/Butcher computation.
fn oudin_easter(y: i32) -> Date {
    let g = y % 19;
    let c = y / 100;
    let h = (c - c / 4 - (8 * c + 13) / 25 + 19 * g + 15) % 30;
    let i = h - (h / 28) * (1 - (29 / (h + 1)) * ((21 - g) / 11));
    let j = (y + y / 4 + i + 2 - c + c / 4) % 7;
    let l = i - j;
    let month = 3 + (l + 40) / 44;
    let day = l + 28 - 31 * (month / 4);
    Date::new(y as i16, month as i8, day as i8).expect("easter")
}

async fn holidays(h: &Harness, token: &str, query: &str) -> serde_json::Value {
    let r = h
        .req("GET", &format!("/api/v1/holidays{query}"))
        .bearer(token)
        .send()
        .await;
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    r.body
}

fn day<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|d| d["name"] == json!(name))
        .unwrap_or_else(|| panic!("{name} missing from {list}"))
}

async fn the_brazilian_calendar_is_built_in_and_applied(h: &Harness) {
    let ana = resident(h, "ana@example.com", "BR", Some("SP")).await;
    // The caller's country and state are the defaults.
    let sp = holidays(h, &ana, "?year=2026").await;
    assert_eq!((&sp["country"], &sp["state"]), (&json!("BR"), &json!("SP")));
    let carnival = day(&sp, "Carnaval (terça-feira)");
    assert_eq!(
        (&carnival["date"], &carnival["status"], &carnival["source"]),
        (&json!("2026-02-17"), &json!("optional"), &json!("builtin"))
    );
    assert_eq!(day(&sp, "Sexta-feira Santa")["status"], json!("national"));
    assert_eq!(day(&sp, "Corpus Christi")["date"], json!("2026-06-04"));
    let revolution = day(&sp, "Revolução Constitucionalista de 1932");
    assert_eq!(
        (
            &revolution["date"],
            &revolution["status"],
            &revolution["state"]
        ),
        (&json!("2026-07-09"), &json!("state"), &json!("SP"))
    );
    let rj = holidays(h, &ana, "?year=2026&country=BR&state=RJ").await;
    assert_eq!(day(&rj, "Dia de São Jorge")["date"], json!("2026-04-23"));
    assert!(
        !rj.to_string().contains("Revolução Constitucionalista"),
        "SP's holiday is SP's only"
    );
    let mg = holidays(h, &ana, "?year=2026&country=BR&state=MG").await;
    assert_eq!(
        day(&mg, "Data Magna de Minas Gerais")["status"],
        json!("state")
    );
    let dates: Vec<&str> = sp["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|d| d["date"].as_str().expect("date"))
        .collect();
    let mut sorted = dates.clone();
    sorted.sort_unstable();
    assert_eq!(dates, sorted, "by date");

    // Easter-based days for a range of years, against Oudin's algorithm.
    for year in (1950..=2150).step_by(7) {
        let list = holidays(h, &ana, &format!("?year={year}&country=BR")).await;
        let easter = oudin_easter(year);
        for (name, offset) in [
            ("Carnaval (segunda-feira)", -48),
            ("Carnaval (terça-feira)", -47),
            ("Sexta-feira Santa", -2),
            ("Corpus Christi", 60),
        ] {
            let expected = easter.checked_add(offset.days()).expect("date");
            assert_eq!(
                day(&list, name)["date"],
                json!(expected.to_string()),
                "{name} {year}"
            );
        }
    }
    for (query, field) in [
        ("?year=1800", "year"),
        ("?year=soon", "year"),
        ("?country=Brasil", "country"),
        ("?state=SAO-PAULO", "state"),
    ] {
        let r = h
            .req("GET", &format!("/api/v1/holidays{query}"))
            .bearer(&ana)
            .send()
            .await;
        assert_eq!(r.problem(400, "validation").field(), field, "{query}");
    }
    let nowhere = h.account("bob@example.com").await;
    let r = h
        .req("GET", "/api/v1/holidays")
        .bearer(&nowhere.access)
        .send()
        .await;
    assert_eq!(r.problem(400, "validation").field(), "country");

    // Skipping holidays silences the built-in ones: next year's Carnival
    // (inside the years the built-in calendar is applied to).
    let next_year = alarm_domain::jiff::Timestamp::now()
        .to_zoned(alarm_domain::jiff::tz::TimeZone::UTC)
        .year()
        + 1;
    let next = holidays(h, &ana, &format!("?year={next_year}")).await;
    let monday: Date = day(&next, "Carnaval (segunda-feira)")["date"]
        .as_str()
        .expect("date")
        .parse()
        .expect("date");
    let tuesday_date = monday.checked_add(1.day()).expect("tuesday");
    let wednesday = monday.checked_add(2.days()).expect("wednesday");
    let from = format!("{}T12:00:00Z", monday.checked_sub(1.day()).expect("sunday"));
    let put = h
        .req("PUT", "/api/v1/holiday-preferences")
        .bearer(&ana)
        .json(json!({"default": {"action": "skip"}}))
        .send()
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let alarm = h
        .req("POST", "/api/v1/alarms")
        .bearer(&ana)
        .json(json!({"name": "Wake", "time_zone": "America/Sao_Paulo", "schedules": [{"kind": "daily", "time": "07:00"}]}))
        .send()
        .await;
    assert_eq!(alarm.status, 201, "{}", alarm.body);
    let id = alarm.body["id"].as_str().expect("id");
    let preview = h
        .req(
            "GET",
            &format!("/api/v1/alarms/{id}/occurrences?from={from}&limit=3&include_suppressed=true"),
        )
        .bearer(&ana)
        .send()
        .await;
    let items = preview.body["items"].as_array().expect("items");
    let seen: Vec<(String, bool, Option<&str>)> = items
        .iter()
        .map(|o| {
            (
                o["local_date"].as_str().expect("date").to_owned(),
                o["suppressed"].as_bool().expect("flag"),
                o["reason_detail"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (monday.to_string(), true, Some("Carnaval (segunda-feira)")),
            (
                tuesday_date.to_string(),
                true,
                Some("Carnaval (terça-feira)")
            ),
            (wednesday.to_string(), false, None),
        ]
    );

    // A per-holiday override names a built-in holiday by its id (the same
    // every year): Carnival Tuesday rings after all.
    let tuesday = day(&next, "Carnaval (terça-feira)")["id"].clone();
    assert_eq!(
        tuesday,
        day(&sp, "Carnaval (terça-feira)")["id"],
        "one id every year"
    );
    let put = h
        .req("PUT", "/api/v1/holiday-preferences")
        .bearer(&ana)
        .json(json!({"default": {"action": "skip"}, "overrides": [{"holiday_id": tuesday, "action": "fire"}]}))
        .send()
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["overrides"][0]["holiday_id"], tuesday);
    let preview = h
        .req(
            "GET",
            &format!("/api/v1/alarms/{id}/occurrences?from={from}&limit=2&include_suppressed=true"),
        )
        .bearer(&ana)
        .send()
        .await;
    let flags: Vec<bool> = preview.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["suppressed"].as_bool().expect("flag"))
        .collect();
    assert_eq!(flags, [true, false], "Monday skipped, Tuesday rings");
}

async fn custom_holidays_are_for_administrators_and_move_the_next_fire(h: &Harness) {
    let admin = h.account(crate::support::ADMIN).await.access;
    let ana = resident(h, "ana@example.com", "BR", Some("SP")).await;
    let holiday =
        json!({"name": "Feriado municipal", "date": "2031-03-19", "country": "BR", "state": "RJ"});
    let r = h
        .req("POST", "/api/v1/holidays")
        .bearer(&ana)
        .json(holiday.clone())
        .send()
        .await;
    r.problem(403, "forbidden");
    let created = h
        .req("POST", "/api/v1/holidays")
        .bearer(&admin)
        .json(holiday.clone())
        .send()
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    for (body, field) in [
        (json!({"name": "x", "country": "BR"}), "date"),
        (
            json!({"name": "x", "date": "2031-03-19", "month": 3, "day": 19, "country": "BR"}),
            "date",
        ),
        (
            json!({"name": "x", "month": 2, "day": 30, "country": "BR"}),
            "date",
        ),
        (
            json!({"name": "", "date": "2031-03-19", "country": "BR"}),
            "name",
        ),
        (
            json!({"name": "x", "date": "2031-03-19", "country": "Brasil"}),
            "country",
        ),
    ] {
        let r = h
            .req("POST", "/api/v1/holidays")
            .bearer(&admin)
            .json(body.clone())
            .send()
            .await;
        assert_eq!(r.problem(422, "validation").field(), field, "{body}");
    }
    let rj = holidays(h, &ana, "?year=2031&state=RJ").await;
    let custom = day(&rj, "Feriado municipal");
    assert_eq!(
        (&custom["source"], &custom["id"]),
        (&json!("custom"), &json!(id))
    );
    assert!(
        !holidays(h, &ana, "?year=2031")
            .await
            .to_string()
            .contains("Feriado municipal")
    );

    let path = format!("/api/v1/holidays/{id}");
    let yearly =
        json!({"name": "Feriado municipal", "month": 3, "day": 19, "country": "BR", "state": "RJ"});
    h.req("PUT", &path)
        .bearer(&ana)
        .json(yearly.clone())
        .send()
        .await
        .problem(403, "forbidden");
    let replaced = h.req("PUT", &path).bearer(&admin).json(yearly).send().await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(
        (&replaced.body["month"], &replaced.body["day"]),
        (&json!(3), &json!(19))
    );
    assert_eq!(
        day(
            &holidays(h, &ana, "?year=2032&state=RJ").await,
            "Feriado municipal"
        )["date"],
        json!("2032-03-19")
    );

    // A holiday of RJ on the alarm's next day, which ana skips (and only
    // that one: every other day rings): moving to RJ moves the next fire
    // at once. The alarm rings hours from now, so the test never straddles
    // its instant.
    let (alarm_id, before) = daily_hours_ahead(h, &ana).await;
    let local = h
        .req("POST", "/api/v1/holidays")
        .bearer(&admin)
        .json(json!({"name": "Feriado do Rio", "date": before.to_string(), "country": "BR", "state": "RJ"}))
        .send()
        .await;
    assert_eq!(local.status, 201, "{}", local.body);
    let skip = h
        .req("PUT", "/api/v1/holiday-preferences")
        .bearer(&ana)
        .json(json!({"default": {"action": "fire"}, "overrides": [{"holiday_id": local.body["id"], "action": "skip"}]}))
        .send()
        .await;
    assert_eq!(skip.status, 200, "{}", skip.body);
    assert_eq!(
        next_fire(h, &alarm_id, &ana).await,
        before,
        "not ana's state yet"
    );
    let moved = h
        .req("PATCH", "/api/v1/auth/me")
        .bearer(&ana)
        .json(json!({"state": "RJ"}))
        .send()
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(
        next_fire(h, &alarm_id, &ana).await,
        before.checked_add(1.day()).expect("day after"),
        "RJ's holiday is skipped from the moment ana lives there"
    );

    h.req("DELETE", &path)
        .bearer(&ana)
        .send()
        .await
        .problem(403, "forbidden");
    let deleted = h.req("DELETE", &path).bearer(&admin).send().await;
    assert_eq!(deleted.status, 204);
    h.req("DELETE", &path)
        .bearer(&admin)
        .send()
        .await
        .problem(404, "not-found");
    h.req("PUT", "/api/v1/holidays/not-an-id")
        .bearer(&admin)
        .json(holiday)
        .send()
        .await
        .problem(404, "not-found");
}

/// A daily UTC alarm of `token`'s ringing six hours from now (so a test
/// never straddles its instant), and the day it rings next.
async fn daily_hours_ahead(h: &Harness, token: &str) -> (String, Date) {
    let hour = (alarm_domain::jiff::Timestamp::now()
        .to_zoned(alarm_domain::jiff::tz::TimeZone::UTC)
        .hour()
        + 6)
        % 24;
    let alarm = h
        .req("POST", "/api/v1/alarms")
        .bearer(token)
        .json(json!({"name": "Wake", "time_zone": "UTC", "schedules": [{"kind": "daily", "time": format!("{hour:02}:00")}]}))
        .send()
        .await;
    assert_eq!(alarm.status, 201, "{}", alarm.body);
    let alarm_id = alarm.body["id"].as_str().expect("id").to_owned();
    let before = next_fire(h, &alarm_id, token).await;
    (alarm_id, before)
}

/// The day of the alarm's stored `fire` trigger: what the engine will
/// claim, as opposed to `next_fire_at`, which the API computes afresh.
async fn stored_fire(h: &Harness, alarm: &str) -> Date {
    let id: alarm_domain::ids::AlarmId = alarm.parse().expect("alarm id");
    let pending = h.ports().queue.pending(id).await.expect("pending");
    let fire = pending
        .iter()
        .find(|t| t.kind == alarm_domain::trigger::TriggerKind::Fire)
        .expect("a stored fire trigger");
    date_of(&fire.due_at.to_string())
}

/// Awaits the in-process engine's next finished holiday re-plan job
/// (`seen` is the count before the write); a minute is far beyond the
/// documented window.
async fn replanned(replans: &mut tokio::sync::watch::Receiver<u64>, seen: u64) {
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        replans.wait_for(|n| *n > seen),
    )
    .await
    .expect("the re-plan job finished within a minute")
    .expect("the engine runs");
}

async fn a_holiday_write_replans_its_country_in_the_background(h: &Harness) {
    let admin = h.account(crate::support::ADMIN).await.access;
    let ana = resident(h, "ana@example.com", "BR", Some("RJ")).await;
    let skip = h
        .req("PUT", "/api/v1/holiday-preferences")
        .bearer(&ana)
        .json(json!({"default": {"action": "skip"}, "overrides": []}))
        .send()
        .await;
    assert_eq!(skip.status, 200, "{}", skip.body);
    // Rings hours from now, so the test never straddles its instant.
    let (alarm_id, before) = daily_hours_ahead(h, &ana).await;
    assert_eq!(stored_fire(h, &alarm_id).await, before);

    let mut replans = h.replans();
    let seen = *replans.borrow();
    let created = h
        .req("POST", "/api/v1/holidays")
        .bearer(&admin)
        .json(json!({"name": "Feriado do Rio", "date": before.to_string(), "country": "BR", "state": "RJ"}))
        .send()
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    replanned(&mut replans, seen).await;
    let moved = before.checked_add(1.day()).expect("day after");
    assert_eq!(
        stored_fire(h, &alarm_id).await,
        moved,
        "the country's re-plan job moved the stored trigger past the new holiday"
    );
    assert_eq!(next_fire(h, &alarm_id, &ana).await, moved);

    let seen = *replans.borrow();
    let path = format!(
        "/api/v1/holidays/{}",
        created.body["id"].as_str().expect("id")
    );
    let deleted = h.req("DELETE", &path).bearer(&admin).send().await;
    assert_eq!(deleted.status, 204);
    replanned(&mut replans, seen).await;
    assert_eq!(
        stored_fire(h, &alarm_id).await,
        before,
        "deleting the holiday re-planned the stored trigger back"
    );
}

crate::trials! {
    api: [
        a_holiday_write_replans_its_country_in_the_background,
        exception_periods_are_owned_filtered_and_move_the_next_fire,
        holiday_preferences_replace_validate_and_reset,
        the_profile_changes_what_is_sent_and_keeps_the_rest,
        the_brazilian_calendar_is_built_in_and_applied,
        custom_holidays_are_for_administrators_and_move_the_next_fire,
    ],
}
