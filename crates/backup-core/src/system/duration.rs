//! Durations as people write them in the system description: `"90s"`,
//! `"2m"`, `"1h30m"`.
//!
//! A dozen lines do it; a crate (humantime) would accept far more forms
//! (`"2 minutes"`, `"1y"`, months) than a timeout needs, and every form a
//! file accepts is one a daemon must keep accepting.

use std::time::Duration;

/// Parses a duration of whole hours, minutes and seconds: one or more
/// `<digits><unit>` with units `h`, `m`, `s` in that order, each at most
/// once (`"90s"`, `"2m"`, `"1h30m"`). Zero is refused: a timeout of zero
/// is always a mistake.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad =
        || format!("{text:?} is not a duration: write e.g. \"90s\", \"2m\", \"1h30m\" or \"7d\"");
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut last_unit = 0;
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let (rank, scale) = match c {
            'd' => (1, 86400),
            'h' => (2, 3600),
            'm' => (3, 60),
            's' => (4, 1),
            _ => return Err(bad()),
        };
        if number.is_empty() || rank <= last_unit {
            return Err(bad());
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(scale)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        number.clear();
        last_unit = rank;
    }
    if !number.is_empty() || last_unit == 0 {
        return Err(bad());
    }
    if total == 0 {
        return Err(format!("{text:?} is zero: give a positive duration"));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_hours_minutes_seconds() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h2m3s"), Ok(Duration::from_secs(3723)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("1d12h"), Ok(Duration::from_secs(129600)));
        assert!(parse_duration("12h1d").is_err());
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "", "90", "s", "1m1h", "2m2m", "1.5m", "1 m", "-1s", "1w", "0s", "0d0h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
