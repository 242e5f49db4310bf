//! A calendar date as a day count, so the value model holds every date an
//! engine does (PostgreSQL's run from 4713 BC to 5874897 AD; chrono's
//! `NaiveDate` stops at ±262142).

use std::fmt;

use chrono::{Datelike, NaiveDate};

/// Days from 0000-03-01 to 1970-01-01 in the proleptic Gregorian calendar.
const EPOCH_FROM_MARCH_0000: i64 = 719_468;

/// A calendar date (proleptic Gregorian) as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    /// Days since 1970-01-01 (negative before).
    pub days_since_epoch: i32,
}

impl Date {
    /// The date `days` days after 1970-01-01.
    pub fn from_days(days: i32) -> Self {
        Date {
            days_since_epoch: days,
        }
    }

    /// The date of a year, month (1–12) and day (1–31), if it exists and
    /// its day count fits an `i32`.
    pub fn from_ymd(year: i64, month: u32, day: u32) -> Option<Self> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        // Howard Hinnant's days_from_civil.
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let m = i64::from(month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - EPOCH_FROM_MARCH_0000;
        i32::try_from(days).ok().map(Date::from_days)
    }

    /// Year, month and day (Howard Hinnant's civil_from_days).
    pub fn ymd(self) -> (i64, u32, u32) {
        let z = i64::from(self.days_since_epoch) + EPOCH_FROM_MARCH_0000;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        (year, month, day)
    }

    /// This date as chrono's, when chrono can hold it (years ±262142).
    pub fn to_naive(self) -> Option<NaiveDate> {
        let (y, m, d) = self.ymd();
        NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl From<NaiveDate> for Date {
    fn from(date: NaiveDate) -> Self {
        // chrono's range (±262142 years) is well inside an i32 day count.
        Date::from_days(date.num_days_from_ce() - 719_163)
    }
}

/// ISO 8601: `2024-02-29`; years past 9999 or before 0 with a sign
/// (`+300000-01-01`, `-0044-03-15`), as chrono prints them.
impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        if (0..=9999).contains(&y) {
            write!(f, "{y:04}-{m:02}-{d:02}")
        } else if y > 0 {
            write!(f, "+{y}-{m:02}-{d:02}")
        } else {
            write!(f, "-{:04}-{m:02}-{d:02}", -y)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_counts_and_calendar_dates_agree_with_chrono() {
        for days in (-800_000..800_000).step_by(997).chain([-1, 0, 1, 59, 60]) {
            let date = Date::from_days(days);
            let naive = date.to_naive().unwrap();
            assert_eq!(Date::from(naive), date);
            assert_eq!(date.to_string(), naive.to_string(), "{days}");
            let (y, m, d) = date.ymd();
            assert_eq!(Date::from_ymd(y, m, d), Some(date));
        }
    }

    #[test]
    fn dates_past_chrono_keep_their_calendar() {
        let date = Date::from_ymd(300_000, 1, 1).unwrap();
        assert_eq!(date.days_since_epoch, 108_853_222);
        assert_eq!(date.to_string(), "+300000-01-01");
        assert_eq!(date.to_naive(), None);
        assert_eq!(Date::from_ymd(2023, 2, 29), None);
        assert_eq!(
            Date::from_ymd(2024, 2, 29).unwrap().to_string(),
            "2024-02-29"
        );
    }
}
