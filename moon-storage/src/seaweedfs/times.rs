//! The two time formats SeaweedFS writes: RFC 3339 in filer entries (`Mtime`) and HTTP dates in
//! `Last-Modified`. Both are read to whole seconds, the precision the HTTP date has, so that
//! every way of asking for an object's metadata gives the same time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2026-11-30T12:14:28.699663675Z` (any fraction, `Z` or no zone) to whole seconds.
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let (date, time) = text.split_once('T')?;
    let time = time.trim_end_matches('Z');
    let time = time.split(['.', '+']).next()?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (t.next()??, t.next()??, t.next()??);
    at(year, month, day, h, m, s)
}

/// `Mon, 30 Nov 2026 12:14:28 GMT` (RFC 7231's IMF-fixdate).
pub(crate) fn parse_http_date(text: &str) -> Option<SystemTime> {
    let mut parts = text.split_whitespace().skip(1);
    let day = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year = parts.next()?.parse().ok()?;
    let mut t = parts.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (t.next()??, t.next()??, t.next()??);
    at(year, month, day, h, m, s)
}

fn at(year: i64, month: i64, day: i64, h: i64, m: i64, s: i64) -> Option<SystemTime> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    // Times before 1970 (a zero `Ctime`, year 1) mean "not recorded".
    u64::try_from(secs)
        .ok()
        .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_give_the_same_second() {
        let a = parse_rfc3339("2026-11-30T12:14:28.699663675Z").unwrap();
        let b = parse_http_date("Mon, 30 Nov 2026 12:14:28 GMT").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_796_040_868
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), UNIX_EPOCH);
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 00:00:01 GMT")
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            1_709_164_801
        );
    }

    #[test]
    fn unrecorded_or_malformed_times_are_none() {
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_http_date("Mon, 30 Foo 2026 12:14:28 GMT"), None);
        assert_eq!(parse_http_date(""), None);
    }
}
