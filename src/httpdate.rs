//! The `MTime` date format of control files: `Tue, 02 Jan 2024 03:04:05 +0000`.
//!
//! zsyncmake always writes UTC (`+0000`); readers honour whatever offset is given.

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month 1..=12, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Format Unix seconds as `Tue, 02 Jan 2024 03:04:05 +0000`.
pub fn format(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Parse `[Day, ]DD Mon YYYY HH:MM:SS ±HHMM` to Unix seconds. `None` if it is not such a date.
pub fn parse(s: &str) -> Option<i64> {
    let mut s = s.trim();
    if let Some((day, rest)) = s.split_once(',') {
        if !DAYS.contains(&day.trim()) {
            return None;
        }
        s = rest.trim_start();
    }
    let mut it = s.split_ascii_whitespace();
    let day: u32 = num(it.next()?, 1, 2)?;
    let mon = it.next()?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(mon))? as u32 + 1;
    let year: i64 = i64::from(num(it.next()?, 4, 4)?);
    let mut hms = it.next()?.split(':');
    let h: u32 = num(hms.next()?, 2, 2)?;
    let mi: u32 = num(hms.next()?, 2, 2)?;
    let se: u32 = num(hms.next()?, 2, 2)?;
    let zone = it.next()?;
    if hms.next().is_some() || it.next().is_some() || zone.len() != 5 || !zone.is_ascii() {
        return None;
    }
    let sign = match zone.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let zh: u32 = num(&zone[1..3], 2, 2)?;
    let zm: u32 = num(&zone[3..5], 2, 2)?;
    if day == 0 || day > 31 || h > 23 || mi > 59 || se > 60 || zm > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let local = days * 86_400 + i64::from(h * 3600 + mi * 60 + se);
    Some(local - sign * i64::from(zh * 3600 + zm * 60))
}

fn num(s: &str, min_len: usize, max_len: usize) -> Option<u32> {
    if s.len() < min_len || s.len() > max_len || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_known_value() {
        assert_eq!(format(1704164645), "Tue, 02 Jan 2024 03:04:05 +0000");
        assert_eq!(parse("Tue, 02 Jan 2024 03:04:05 +0000"), Some(1704164645));
        assert_eq!(parse("02 Jan 2024 03:04:05 +0000"), Some(1704164645));
        assert_eq!(parse("Tue, 02 Jan 2024 12:04:05 +0900"), Some(1704164645));
        assert_eq!(parse("Mon, 01 Jan 2024 22:04:05 -0500"), Some(1704164645));
        assert_eq!(format(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(format(-1), "Wed, 31 Dec 1969 23:59:59 +0000");
        for t in [
            -86_400 * 400 * 366,
            -1,
            0,
            951_782_400,
            4_102_444_800,
            253_402_300_799,
        ] {
            assert_eq!(parse(&format(t)), Some(t), "{t}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "yesterday",
            "Tue, 02 Foo 2024 03:04:05 +0000",
            "Tue, 02 Jan 2024 03:04 +0000",
            "Tue, 02 Jan 2024 03:04:05",
            "Tue, 02 Jan 2024 03:04:05 +\u{e9}00",
            "Tue, 02 Jan 2024 03:04:05 \u{20ac}00",
            "Xyz, 02 Jan 2024 03:04:05 +0000",
            "Tue, 02 Jan 2024 03:04:05 +00000",
        ] {
            assert_eq!(parse(s), None, "{s}");
        }
    }
}
