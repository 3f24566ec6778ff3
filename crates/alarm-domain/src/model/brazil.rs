//! Brazil's built-in holiday calendar for any year, computed offline: the national holidays (fixed and Easter-based), the optional points (Carnival, Corpus Christi) and the state holidays of SP, RJ and MG, each with a stable id.

use jiff::civil::Date;
use sha2::{Digest, Sha256};

use super::holiday::{Holiday, HolidayDate, HolidayName};
use super::user::{Country, StateCode};
use crate::ids::HolidayId;
use crate::schedule::civil::{date_of, day_of, days_from_civil};

/// How a built-in day is observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Observance {
    /// A national public holiday (*feriado nacional*).
    National,
    /// A *ponto facultativo* (Carnival Monday and Tuesday, Corpus Christi):
    /// an optional day off decreed each year, not a public holiday.
    Optional,
    /// A public holiday of one state (*feriado estadual*).
    State,
}

impl Observance {
    /// The stable name: `national`, `optional`, `state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Observance::National => "national",
            Observance::Optional => "optional",
            Observance::State => "state",
        }
    }
}

/// One of Brazil's built-in holidays on its date of a given year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrazilHoliday {
    /// The date.
    pub date: Date,
    /// The official Portuguese name.
    pub name: &'static str,
    /// `true` for a *ponto facultativo* (Carnival Monday/Tuesday, Corpus
    /// Christi): an optional day off decreed each year, not a public holiday.
    pub optional: bool,
    /// A stable key (`carnaval-terca`, `sp-revolucao-constitucionalista`):
    /// the same holiday every year, so its id is the same every year.
    pub key: &'static str,
    /// The state of a state holiday (`SP`, `RJ`, `MG`).
    pub state: Option<&'static str>,
}

impl BrazilHoliday {
    /// How it is observed.
    pub fn observance(&self) -> Observance {
        match (self.state, self.optional) {
            (Some(_), _) => Observance::State,
            (None, true) => Observance::Optional,
            (None, false) => Observance::National,
        }
    }

    /// Its id: derived from the key, so it is the same in every year and
    /// on every server (a UUID v7 with a zero timestamp, which no stored
    /// holiday's id has).
    pub fn id(&self) -> HolidayId {
        let digest = Sha256::digest(format!("smart-alarm built-in holiday\0BR\0{}", self.key));
        let mut random = [0u8; 10];
        random.copy_from_slice(&digest[..10]);
        HolidayId::from_parts(0, random)
    }

    /// As a holiday of its one date, for a user's calendar.
    pub fn to_holiday(&self) -> Holiday {
        Holiday::new(
            self.id(),
            HolidayName::parse(self.name).unwrap_or_else(|_| unreachable_name()),
            HolidayDate::Fixed(self.date),
            brazil(),
            self.state.and_then(|s| StateCode::parse(s).ok()),
            self.optional,
        )
    }
}

/// Every built-in name is a valid holiday name (a unit test checks all of
/// them); this is never reached.
fn unreachable_name() -> HolidayName {
    HolidayName::parse("Feriado").unwrap_or_else(|_| unreachable!("a literal name"))
}

/// The country the built-in calendar is for.
pub fn brazil() -> Country {
    Country::parse("BR").unwrap_or_else(|_| unreachable!("BR is a country code"))
}

/// The states whose holidays are built in.
pub const STATES: [&str; 3] = ["MG", "RJ", "SP"];

/// The state holidays of `state` in `year` (empty for a state that is not
/// built in). Each is listed from the year its law took effect.
pub fn state_holidays(year: i32, state: &str) -> Vec<BrazilHoliday> {
    let fixed = |m: u8, d: u8| date_of(days_from_civil(year, m, d));
    let rows: &[(&'static str, u8, u8, &'static str, &'static str, i32, i32)] = &[
        // (state, month, day, name, key, from, until)
        (
            "SP",
            7,
            9,
            "Revolução Constitucionalista de 1932",
            "sp-revolucao-constitucionalista",
            1997,
            9999,
        ),
        ("RJ", 4, 23, "Dia de São Jorge", "rj-sao-jorge", 2008, 9999),
        // A state holiday until it became a national one in 2024.
        (
            "RJ",
            11,
            20,
            "Dia da Consciência Negra",
            "rj-consciencia-negra",
            2002,
            2023,
        ),
        (
            "MG",
            4,
            21,
            "Data Magna de Minas Gerais",
            "mg-data-magna",
            1989,
            9999,
        ),
    ];
    rows.iter()
        .filter(|r| r.0 == state && (r.5..=r.6).contains(&year))
        .filter_map(|&(st, m, d, name, key, _, _)| {
            Some(BrazilHoliday {
                date: fixed(m, d)?,
                name,
                optional: false,
                key,
                state: Some(st),
            })
        })
        .collect()
}

/// Whether `id` is a built-in holiday's (of any year, national or of a
/// state): such an id has no stored row, yet names a holiday.
pub fn is_builtin(id: HolidayId) -> bool {
    static IDS: std::sync::LazyLock<std::collections::HashSet<HolidayId>> =
        std::sync::LazyLock::new(|| {
            // These years hold every key: each national holiday (2030) and
            // each state holiday (RJ's Consciência Negra only until 2023).
            national_holidays(2030)
                .into_iter()
                .chain(STATES.iter().flat_map(|s| {
                    state_holidays(2010, s)
                        .into_iter()
                        .chain(state_holidays(2030, s))
                }))
                .map(|h| h.id())
                .collect()
        });
    IDS.contains(&id)
}

/// The built-in holidays of `year` for someone in `state` (or in no
/// particular state): the national ones and optional points, then that
/// state's, sorted by date.
pub fn holidays(year: i32, state: Option<&str>) -> Vec<BrazilHoliday> {
    let mut all = national_holidays(year);
    if let Some(state) = state {
        all.extend(state_holidays(year, state));
    }
    all.sort_by_key(|h| (h.date, h.state.is_some()));
    all
}

/// Easter Sunday of a Gregorian year (the anonymous Gregorian algorithm,
/// also known as Meeus/Jones/Butcher).
pub fn easter(year: i32) -> Option<Date> {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    Date::new(i16::try_from(year).ok()?, month as i8, day as i8).ok()
}

/// Brazil's national holidays and optional observances of `year`, sorted by
/// date: today's calendar, projected back. Holidays created after 1889 are
/// listed from the year they took effect (Dia do Trabalho from 1925, Nossa
/// Senhora Aparecida from 1980, Consciência Negra from 2024); holidays
/// abolished since (such as those of the First Republic, ended in 1930) are
/// not listed. Years outside 1890..=9999 give an empty list.
pub fn national_holidays(year: i32) -> Vec<BrazilHoliday> {
    if !(1890..=9999).contains(&year) {
        return Vec::new();
    }
    let Some(easter) = easter(year) else {
        return Vec::new();
    };
    let easter_day = day_of(easter);
    let fixed = |m: u8, d: u8| date_of(days_from_civil(year, m, d));
    let relative = |offset: i32| date_of(easter_day + offset);
    let mut list: Vec<(Option<Date>, &'static str, bool, &'static str)> = vec![
        (
            fixed(1, 1),
            "Confraternização Universal",
            false,
            "confraternizacao",
        ),
        (
            relative(-48),
            "Carnaval (segunda-feira)",
            true,
            "carnaval-segunda",
        ),
        (
            relative(-47),
            "Carnaval (terça-feira)",
            true,
            "carnaval-terca",
        ),
        (
            relative(-2),
            "Sexta-feira Santa",
            false,
            "sexta-feira-santa",
        ),
        (fixed(4, 21), "Tiradentes", false, "tiradentes"),
        (relative(60), "Corpus Christi", true, "corpus-christi"),
        (
            fixed(9, 7),
            "Independência do Brasil",
            false,
            "independencia",
        ),
        (fixed(11, 2), "Finados", false, "finados"),
        (
            fixed(11, 15),
            "Proclamação da República",
            false,
            "republica",
        ),
        (fixed(12, 25), "Natal", false, "natal"),
    ];
    if year >= 1925 {
        list.push((fixed(5, 1), "Dia do Trabalho", false, "trabalho"));
    }
    if year >= 1980 {
        list.push((fixed(10, 12), "Nossa Senhora Aparecida", false, "aparecida"));
    }
    if year >= 2024 {
        list.push((
            fixed(11, 20),
            "Dia Nacional de Zumbi e da Consciência Negra",
            false,
            "consciencia-negra",
        ));
    }
    let mut out: Vec<BrazilHoliday> = list
        .into_iter()
        .filter_map(|(date, name, optional, key)| {
            date.map(|date| BrazilHoliday {
                date,
                name,
                optional,
                key,
                state: None,
            })
        })
        .collect();
    out.sort_by_key(|h| h.date);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn easter_dates_match_published_tables() {
        for (y, m, d) in [
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2000, 4, 23),
            (2038, 4, 25),
            (1943, 4, 25),
            (2285, 3, 22),
        ] {
            assert_eq!(easter(y), Some(date(y as i16, m, d)), "{y}");
        }
    }

    #[test]
    fn state_holidays_and_stable_ids() {
        let sp = holidays(2026, Some("SP"));
        let revolution = sp
            .iter()
            .find(|h| h.key == "sp-revolucao-constitucionalista")
            .expect("9 July in SP");
        assert_eq!(
            (revolution.date, revolution.observance()),
            (date(2026, 7, 9), Observance::State)
        );
        assert!(
            holidays(2026, Some("RJ"))
                .iter()
                .all(|h| h.key != "sp-revolucao-constitucionalista")
        );
        assert!(
            holidays(2026, Some("RJ"))
                .iter()
                .any(|h| h.key == "rj-sao-jorge"),
            "São Jorge in RJ"
        );
        assert!(
            holidays(2026, Some("MG"))
                .iter()
                .any(|h| h.key == "mg-data-magna")
        );
        // Consciência Negra: RJ's own until 2023, national from 2024, never twice.
        let rj = |y| {
            holidays(y, Some("RJ"))
                .into_iter()
                .filter(|h| h.date == date(y as i16, 11, 20))
                .map(|h| h.key)
                .collect::<Vec<_>>()
        };
        assert_eq!(rj(2023), ["rj-consciencia-negra"]);
        assert_eq!(rj(2024), ["consciencia-negra"]);
        let carnival = |y| {
            national_holidays(y)
                .into_iter()
                .find(|h| h.key == "carnaval-terca")
                .expect("carnival")
        };
        assert_ne!(carnival(2026).date, carnival(2027).date);
        assert_eq!(
            carnival(2026).id(),
            carnival(2027).id(),
            "one id every year"
        );
        let mut ids: Vec<_> = STATES
            .iter()
            .flat_map(|s| holidays(2026, Some(s)))
            .map(|h| h.id())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), national_holidays(2026).len() + 3, "distinct ids");
        assert!(ids.iter().all(|id| is_builtin(*id)));
        let rj_2020 = state_holidays(2020, "RJ");
        assert!(
            rj_2020.iter().all(|h| is_builtin(h.id())),
            "a past year's keys too"
        );
        assert!(
            !is_builtin(HolidayId::generate()),
            "a stored holiday's id is not"
        );
        // Each law's first year, and the year before it.
        let has = |year: i32, state: Option<&str>, key: &str| {
            holidays(year, state).iter().any(|h| h.key == key)
        };
        for (key, state, first) in [
            ("trabalho", None, 1925),
            ("aparecida", None, 1980),
            ("consciencia-negra", None, 2024),
            ("sp-revolucao-constitucionalista", Some("SP"), 1997),
            ("rj-sao-jorge", Some("RJ"), 2008),
            ("rj-consciencia-negra", Some("RJ"), 2002),
            ("mg-data-magna", Some("MG"), 1989),
        ] {
            assert!(has(first, state, key), "{key} in {first}");
            assert!(!has(first - 1, state, key), "{key} before {first}");
        }
        for s in STATES {
            for h in holidays(2026, Some(s)) {
                assert_eq!(
                    HolidayName::parse(h.name)
                        .map(|n| n.as_str().to_owned())
                        .ok()
                        .as_deref(),
                    Some(h.name)
                );
                let as_holiday = h.to_holiday();
                assert!(as_holiday.date().matches(h.date));
                assert_eq!(as_holiday.state().map(StateCode::as_str), h.state);
            }
        }
    }

    #[test]
    fn brazil_2026() {
        let list = national_holidays(2026);
        let find = |name: &str| list.iter().find(|h| h.name == name).copied().unwrap();
        assert_eq!(find("Sexta-feira Santa").date, date(2026, 4, 3));
        assert!(!find("Sexta-feira Santa").optional);
        assert_eq!(find("Carnaval (segunda-feira)").date, date(2026, 2, 16));
        assert_eq!(find("Carnaval (terça-feira)").date, date(2026, 2, 17));
        assert!(find("Carnaval (terça-feira)").optional);
        assert_eq!(find("Corpus Christi").date, date(2026, 6, 4));
        assert!(find("Corpus Christi").optional);
        assert_eq!(
            find("Dia Nacional de Zumbi e da Consciência Negra").date,
            date(2026, 11, 20)
        );
        assert_eq!(list.len(), 13);
        assert!(list.windows(2).all(|w| w[0].date <= w[1].date));
    }

    #[test]
    fn laws_take_effect_in_their_year() {
        assert!(
            !national_holidays(2023)
                .iter()
                .any(|h| h.name.contains("Zumbi"))
        );
        assert!(
            !national_holidays(1979)
                .iter()
                .any(|h| h.name.contains("Aparecida"))
        );
        assert!(national_holidays(1889).is_empty());
        assert_eq!(national_holidays(2150).len(), 13);
    }
}
