//! What the id-ordered Relay pages (`conflicts`, `Attribute.history`) share: `first` bounded, and
//! opaque cursors that carry one row id under a prefix naming the page they belong to.

use async_graphql::Result;
use base64::Engine as _;
use uuid::Uuid;

use super::errors::{Code, error};

/// The most rows such a page holds.
pub const MAX_PAGE: u64 = 100;

/// `first` (default 20), refused outside 1 to [`MAX_PAGE`].
pub fn first(first: Option<i32>) -> Result<u64> {
    u64::try_from(first.unwrap_or(20))
        .ok()
        .filter(|first| (1..=MAX_PAGE).contains(first))
        .ok_or_else(|| {
            error(
                Code::BadUserInput,
                format!("`first` must be between 1 and {MAX_PAGE}"),
            )
        })
}

/// The cursor of row `id` of a `prefix` page.
pub fn cursor(prefix: &str, id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{prefix}:{id}"))
}

/// The row id of a `prefix` page's cursor; another page's or a forged one is `BAD_USER_INPUT`.
pub fn row_of(prefix: &str, cursor: &str) -> Result<Uuid> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            text.strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix(':'))
                .and_then(|id| Uuid::parse_str(id).ok())
        })
        .ok_or_else(|| {
            error(
                Code::BadUserInput,
                format!("`after` is not a {prefix} cursor"),
            )
        })
}
