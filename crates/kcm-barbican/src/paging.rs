//! Barbican's paging: `offset` and `limit` query parameters, and the `next` /
//! `previous` links of a list.
//!
//! Barbican reads paging values leniently (a value that is not a number takes the
//! default, a negative offset is 0, a limit is held to 1–100), and clients count on
//! it, so this door does the same.

use serde::Serialize;

/// Records per page when the request names no limit.
pub const DEFAULT_LIMIT: usize = 10;
/// The most records per page.
pub const MAX_LIMIT: usize = 100;

/// One page's position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// Records skipped.
    pub offset: usize,
    /// Records asked for (1–100).
    pub limit: usize,
}

impl Page {
    /// Reads raw `offset` and `limit` values as Barbican does.
    pub fn read(offset: Option<&str>, limit: Option<&str>) -> Self {
        let offset = offset
            .and_then(|o| o.trim().parse::<i64>().ok())
            .map_or(0, |o| usize::try_from(o.max(0)).unwrap_or(0));
        let limit = match limit.map(str::trim).filter(|l| !l.is_empty()) {
            None => DEFAULT_LIMIT,
            Some(l) => match l.parse::<i64>() {
                Ok(l) => usize::try_from(l.clamp(1, MAX_LIMIT as i64)).unwrap_or(1),
                Err(_) => DEFAULT_LIMIT,
            },
        };
        Self { offset, limit }
    }
}

/// The `next` and `previous` links of a page of `total` records at `list_url`
/// (Barbican leaves filters out of them; so does this door). No links when the
/// page is empty, as Barbican.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NavLinks {
    /// The page before, when the offset is past the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The page after, when records remain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

impl NavLinks {
    /// The links around `page` of a list of `total` records, `shown` of which are on it.
    pub fn around(list_url: &str, page: Page, total: usize, shown: usize) -> Self {
        if shown == 0 {
            return Self::default();
        }
        let link = |offset: usize| format!("{list_url}?limit={}&offset={offset}", page.limit);
        Self {
            previous: (page.offset > 0).then(|| link(page.offset.saturating_sub(page.limit))),
            next: (total > page.offset + page.limit).then(|| link(page.offset + page.limit)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_values_are_read_leniently() {
        assert_eq!(
            Page::read(None, None),
            Page {
                offset: 0,
                limit: 10
            }
        );
        assert_eq!(
            Page::read(Some("5"), Some("2")),
            Page {
                offset: 5,
                limit: 2
            }
        );
        assert_eq!(
            Page::read(Some("-3"), Some("1000")),
            Page {
                offset: 0,
                limit: 100
            }
        );
        assert_eq!(
            Page::read(Some("x"), Some("y")),
            Page {
                offset: 0,
                limit: 10
            }
        );
        assert_eq!(
            Page::read(None, Some("0")),
            Page {
                offset: 0,
                limit: 1
            }
        );
    }

    #[test]
    fn links_point_around_the_page() {
        let url = "http://h/v1/secrets";
        let links = NavLinks::around(
            url,
            Page {
                offset: 1,
                limit: 2,
            },
            5,
            2,
        );
        assert_eq!(
            links.previous.as_deref(),
            Some("http://h/v1/secrets?limit=2&offset=0")
        );
        assert_eq!(
            links.next.as_deref(),
            Some("http://h/v1/secrets?limit=2&offset=3")
        );
        let last = NavLinks::around(
            url,
            Page {
                offset: 3,
                limit: 2,
            },
            5,
            2,
        );
        assert_eq!(last.next, None);
        assert_eq!(
            NavLinks::around(
                url,
                Page {
                    offset: 0,
                    limit: 10
                },
                0,
                0
            ),
            NavLinks::default()
        );
        let json = serde_json::to_value(NavLinks::around(
            url,
            Page {
                offset: 0,
                limit: 2,
            },
            3,
            2,
        ));
        assert_eq!(
            json.unwrap(),
            serde_json::json!({"next": "http://h/v1/secrets?limit=2&offset=2"})
        );
    }
}
