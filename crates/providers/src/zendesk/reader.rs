//! Zendesk's incremental reader for tickets, users and organizations over the incremental export
//! API: cursor-based for tickets and users (the last `after_cursor` is kept even at the end of
//! the stream, which is how Zendesk resumes), time-based for organizations (`end_time` becomes the
//! next `start_time`).

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::ProviderClient;
use crate::records::{Cursor, Page, ReadOptions, Record, parse_time};
use crate::{ProviderError, ProviderKind};

/// The incremental exports' largest (and default) page.
const MAX_PAGE: u32 = 1000;

/// The reader's position. Unknown fields are refused: a cursor of another provider is an error,
/// not a silent restart.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// Tickets and users: the last `after_cursor`, which resumes the export after everything read
    /// so far, in this sync or the next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after_cursor: Option<String>,
    /// Where an export starts (epoch seconds): the first request of tickets and users, and every
    /// request of organizations (the last page's `end_time`). `None` is the account's beginning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start_time: Option<i64>,
}

/// The exported records under the object type's key, plus the paging fields of both export
/// kinds.
#[derive(Debug, Deserialize)]
struct Export {
    #[serde(default)]
    after_cursor: Option<String>,
    #[serde(default)]
    end_time: Option<i64>,
    end_of_stream: bool,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// The subdomain for record links: the API host's when it is a Zendesk host, else the account id
/// learned at validation (the subdomain too), else none.
fn subdomain(client: &ProviderClient) -> Option<String> {
    url::Url::parse(&client.url(""))
        .ok()
        .and_then(|url| {
            url.host_str()
                .and_then(|host| host.strip_suffix(".zendesk.com"))
                .filter(|sub| !sub.is_empty() && !sub.contains('.'))
                .map(str::to_owned)
        })
        .or_else(|| client.account_id().map(str::to_owned))
}

/// Whether a record of this type is a delete. Tickets: `status: "deleted"` (the ticket export
/// includes deleted tickets). Organizations: `deleted_at` set. Users: never — a deactivated or
/// deleted user comes back with `active: false`, which also covers suspended-and-restored
/// accounts; the field is kept so a consumer can act on it, but the user is not removed.
fn is_deleted(object_type: &str, object: &Map<String, Value>) -> bool {
    match object_type {
        "tickets" => object.get("status").and_then(Value::as_str) == Some("deleted"),
        "organizations" => object.get("deleted_at").is_some_and(|at| !at.is_null()),
        _ => false,
    }
}

/// An exported object as a record; one without an `id` is a decode error, never skipped.
fn into_record(
    client: &ProviderClient,
    object_type: &str,
    subdomain: Option<&str>,
    object: Value,
    what: &str,
) -> Result<Record, ProviderError> {
    let Value::Object(object) = object else {
        return Err(client.missing(what, "id"));
    };
    let external_id = match object.get("id") {
        Some(Value::Number(id)) => id.to_string(),
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err(client.missing(what, "id")),
    };
    let updated_at = object.get("updated_at").and_then(parse_time);
    let deleted = is_deleted(object_type, &object);
    let source_url = subdomain.map(|subdomain| {
        format!("https://{subdomain}.zendesk.com/agent/{object_type}/{external_id}")
    });
    Ok(Record {
        external_id,
        object_type: object_type.to_owned(),
        updated_at,
        deleted,
        fields: object,
        source_url,
    })
}

/// Reads the next page of Zendesk `object_type` (`tickets`, `users` or `organizations`).
///
/// The cursor is JSON: `{"after_cursor":…}` for tickets and users (`{"start_time":…}` before the
/// first page), `{"start_time":…}` for organizations. Time-based pages may repeat a record across
/// pages; re-reading it is harmless.
/// A cursor exporting records changed at or after `since`.
pub(crate) fn cursor_since(since: DateTime<Utc>) -> Cursor {
    Cursor::encode(&State {
        start_time: Some(since.timestamp()),
        after_cursor: None,
    })
}

/// The watermark of a stored cursor: its export's `start_time` (`None` once the export continues
/// from an `after_cursor`, which is Zendesk's own position).
pub(crate) fn watermark(cursor: &Cursor) -> Result<Option<DateTime<Utc>>, ProviderError> {
    let state: State = Cursor::state(Some(cursor), ProviderKind::Zendesk)?;
    Ok(state
        .start_time
        .filter(|_| state.after_cursor.is_none())
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0)))
}

pub(crate) async fn read_page(
    client: &ProviderClient,
    object_type: &str,
    cursor: Option<&Cursor>,
    options: &ReadOptions,
) -> Result<Page, ProviderError> {
    let mut state: State = Cursor::state(cursor, ProviderKind::Zendesk)?;
    let per_page = options
        .page_size
        .unwrap_or(MAX_PAGE)
        .clamp(1, MAX_PAGE)
        .to_string();
    let start_time = state.start_time.unwrap_or(0).to_string();
    let cursor_based = object_type != "organizations";
    let path = if cursor_based {
        format!("/api/v2/incremental/{object_type}/cursor.json")
    } else {
        format!("/api/v2/incremental/{object_type}.json")
    };
    let mut query = vec![("per_page", per_page)];
    match (&state.after_cursor, cursor_based) {
        (Some(after), true) => query.push(("cursor", after.clone())),
        _ => query.push(("start_time", start_time)),
    }
    let what = format!("GET {path}");
    let mut export: Export = client
        .call(client.request(Method::GET, &path).query(&query), &what)
        .await?;
    let objects = match export.rest.remove(object_type) {
        Some(Value::Array(objects)) => objects,
        _ => return Err(client.missing(&what, object_type)),
    };
    let subdomain = subdomain(client);
    let records = objects
        .into_iter()
        .map(|object| into_record(client, object_type, subdomain.as_deref(), object, &what))
        .collect::<Result<Vec<_>, _>>()?;

    if cursor_based {
        match export.after_cursor {
            Some(after) => state.after_cursor = Some(after),
            // Without a cursor the next request would repeat this one forever.
            None if !export.end_of_stream => return Err(client.missing(&what, "after_cursor")),
            // At the end with nothing new to point at, the next sync repeats this request.
            None => {}
        }
    } else {
        let previous = state.start_time.unwrap_or(0);
        match export.end_time {
            // More than a page of changes in one second would leave `end_time` where it was:
            // move past that second rather than ask for it forever.
            Some(end_time) if end_time <= previous && !export.end_of_stream => {
                state.start_time = Some(previous + 1);
            }
            Some(end_time) => state.start_time = Some(end_time.max(previous)),
            None if !export.end_of_stream => return Err(client.missing(&what, "end_time")),
            None => {}
        }
    }
    Ok(Page {
        records,
        cursor: Cursor::encode(&state),
        has_more: !export.end_of_stream,
        restarted: false,
    })
}
