//! Times as Barbican writes and reads them.
//!
//! Barbican stores naive UTC times and writes them with Python's `isoformat()`:
//! `2015-03-23T20:46:51.650515`, without a zone, and without the fraction when it
//! is zero. It reads ISO 8601 with or without a zone (none means UTC).

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// `millis` (since the Unix epoch) as Barbican writes a time.
pub fn write(millis: i64) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000) else {
        return String::new();
    };
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    match t.microsecond() {
        0 => base,
        micros => format!("{base}.{micros:06}"),
    }
}

/// Reads an ISO 8601 time as Barbican accepts one (`2020-01-01T00:00:00`,
/// `…Z`, `…+02:00`, with a fraction or not, `T` or a space) into milliseconds
/// since the Unix epoch. A time without a zone is UTC.
pub fn read(text: &str) -> Option<i64> {
    let text = text.trim();
    let with_t = text.replacen(' ', "T", 1);
    let zoned = OffsetDateTime::parse(&with_t, &Rfc3339).ok().or_else(|| {
        let naive = format_description!(
            version = 2,
            "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
        );
        PrimitiveDateTime::parse(&with_t, naive)
            .ok()
            .map(|t| t.assume_offset(UtcOffset::UTC))
    })?;
    i64::try_from(zoned.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_like_python_isoformat() {
        assert_eq!(write(1_427_143_611_650), "2015-03-23T20:46:51.650000");
        assert_eq!(write(1_427_143_611_000), "2015-03-23T20:46:51");
        assert_eq!(write(0), "1970-01-01T00:00:00");
    }

    #[test]
    fn times_are_read_with_or_without_a_zone() {
        let t = 1_451_330_084_180;
        assert_eq!(read("2015-12-28T19:14:44.180394"), Some(t));
        assert_eq!(read("2015-12-28T19:14:44.180394Z"), Some(t));
        assert_eq!(read("2015-12-28T20:14:44.180394+01:00"), Some(t));
        assert_eq!(read("2015-12-28 19:14:44.180"), Some(t));
        assert_eq!(read("2015-12-28T19:14:44"), Some(t - 180));
        assert_eq!(read("tomorrow"), None);
        assert_eq!(read("2015-13-28T19:14:44"), None);
    }
}
