//! Brazil's national holidays for any year, computed offline (fixed dates and the Easter-based ones).

use jiff::civil::Date;

use crate::schedule::civil::{date_of, day_of, days_from_civil};

/// One of Brazil's national holidays or optional observances in a given year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrazilHoliday {
    /// The date.
    pub date: Date,
    /// The official Portuguese name.
    pub name: &'static str,
    /// `true` for a *ponto facultativo* (Carnival Monday/Tuesday, Corpus
    /// Christi): an optional day off decreed each year, not a public holiday.
    pub optional: bool,
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
/// date. Holidays created by law after 1889 are listed from the year the law
/// took effect: Nossa Senhora Aparecida from 1980, Consciência Negra from 2024.
/// Years outside 1890..=9999 give an empty list.
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
    let mut list: Vec<(Option<Date>, &'static str, bool)> = vec![
        (fixed(1, 1), "Confraternização Universal", false),
        (relative(-48), "Carnaval (segunda-feira)", true),
        (relative(-47), "Carnaval (terça-feira)", true),
        (relative(-2), "Sexta-feira Santa", false),
        (fixed(4, 21), "Tiradentes", false),
        (fixed(5, 1), "Dia do Trabalho", false),
        (relative(60), "Corpus Christi", true),
        (fixed(9, 7), "Independência do Brasil", false),
        (fixed(11, 2), "Finados", false),
        (fixed(11, 15), "Proclamação da República", false),
        (fixed(12, 25), "Natal", false),
    ];
    if year >= 1980 {
        list.push((fixed(10, 12), "Nossa Senhora Aparecida", false));
    }
    if year >= 2024 {
        list.push((
            fixed(11, 20),
            "Dia Nacional de Zumbi e da Consciência Negra",
            false,
        ));
    }
    let mut out: Vec<BrazilHoliday> = list
        .into_iter()
        .filter_map(|(date, name, optional)| {
            date.map(|date| BrazilHoliday {
                date,
                name,
                optional,
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
