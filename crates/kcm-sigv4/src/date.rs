//! The SigV4 timestamp format (`YYYYMMDD'T'HHMMSS'Z'`) and the HTTP `Date` format.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::SigV4Error;

const AMZ_DATE: &[FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");
const HTTP_DATE: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// Formats `t` (converted to UTC) as `YYYYMMDD'T'HHMMSS'Z'`.
pub fn format_amz_date(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(AMZ_DATE)
        .unwrap_or_default()
}

/// Parses `YYYYMMDD'T'HHMMSS'Z'` as a UTC time.
pub fn parse_amz_date(s: &str) -> Result<OffsetDateTime, SigV4Error> {
    PrimitiveDateTime::parse(s, AMZ_DATE)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| SigV4Error::InvalidDate(truncated(s)))
}

/// Parses an HTTP `Date` header (`Sun, 30 Aug 2015 12:36:00 GMT`).
pub(crate) fn parse_http_date(s: &str) -> Result<OffsetDateTime, SigV4Error> {
    PrimitiveDateTime::parse(s, HTTP_DATE)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| SigV4Error::InvalidDate(truncated(s)))
}

/// At most 64 characters of a client-provided value, for error messages.
pub(crate) fn truncated(s: &str) -> String {
    s.chars().take(64).collect()
}
