//! Intercom's incremental reader: contacts and conversations through search on `updated_at`
//! (ascending, with a day-aligned overlap because search compares dates by calendar day, then a
//! client-side filter on the exact watermark), and companies through the scroll API (a full scroll
//! each pass, filtered on `updated_at`, restarted when the scroll expires).
//!
//! Deletes never appear here: deleted or archived contacts (and deleted conversations and
//! companies) simply stop being returned. They come by webhook (`contact.deleted`,
//! `contact.archived`, `conversation.deleted`), or from a periodic reconcile.

use chrono::{DateTime, Utc};
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::client::ProviderClient;
use crate::records::{Cursor, Page, ReadOptions, Record, parse_time};
use crate::{ProviderError, ProviderKind};

/// Search's largest page.
const MAX_SEARCH_PAGE: u32 = 150;
/// Search compares dates by day.
const SECONDS_PER_DAY: i64 = 24 * 60 * 60;
/// How long an app's open scroll blocks a new one (it expires after a minute unused).
const SCROLL_LIFETIME: Duration = Duration::from_secs(60);

/// The reader's position. Unknown fields are refused: a cursor of another provider is an error,
/// not a silent restart.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// The watermark (epoch seconds): records updated after it are read. It is the newest
    /// `updated_at` of the last complete pass; `None` reads everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<i64>,
    /// Search paging within the current pass (`pages.next.starting_after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    starting_after: Option<String>,
    /// Companies: the open scroll of the current pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scroll_param: Option<String>,
    /// The newest `updated_at` seen in the current pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pass_max: Option<i64>,
}

/// A search answer's `pages`; `next` is absent on the last page.
#[derive(Debug, Deserialize)]
struct SearchPages {
    #[serde(default)]
    next: Option<NextPage>,
}

/// `pages.next`.
#[derive(Debug, Deserialize)]
struct NextPage {
    #[serde(default)]
    starting_after: Option<String>,
}

/// A search answer: the records under `data` (contacts) or `conversations`, and the paging.
#[derive(Debug, Deserialize)]
struct SearchResponse {
    #[serde(default)]
    pages: Option<SearchPages>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// A scroll answer: `data` is empty at the end.
#[derive(Debug, Deserialize)]
struct ScrollResponse {
    data: Vec<Value>,
    #[serde(default)]
    scroll_param: Option<String>,
}

/// The key holding a search answer's records.
fn records_key(object_type: &str) -> &'static str {
    match object_type {
        "conversations" => "conversations",
        _ => "data",
    }
}

/// The Intercom app's page for a record, when the app id is known. Contact links are
/// documented; conversation and company links follow the app's own URLs.
fn source_url(client: &ProviderClient, object_type: &str, id: &str) -> Option<String> {
    let app_id = client.account_id()?;
    let section = match object_type {
        "contacts" => "users",
        "companies" => "companies",
        _ => "inbox/inbox/conversation",
    };
    Some(format!(
        "https://app.intercom.com/a/apps/{app_id}/{section}/{id}"
    ))
}

/// An Intercom object as a record; one without an `id` is a decode error, never skipped.
fn into_record(
    client: &ProviderClient,
    object_type: &str,
    object: Value,
    what: &str,
) -> Result<Record, ProviderError> {
    let Value::Object(object) = object else {
        return Err(client.missing(what, "id"));
    };
    let external_id = match object.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        Some(Value::Number(id)) => id.to_string(),
        _ => return Err(client.missing(what, "id")),
    };
    let updated_at = object.get("updated_at").and_then(parse_time);
    let source_url = source_url(client, object_type, &external_id);
    Ok(Record {
        external_id,
        object_type: object_type.to_owned(),
        updated_at,
        deleted: false,
        fields: object,
        source_url,
    })
}

/// Keeps what changed after the watermark and notes the newest change of the pass. Records
/// without `updated_at` are kept (nothing says they are old).
fn after_watermark(records: Vec<Record>, state: &mut State) -> Vec<Record> {
    let page_max = records
        .iter()
        .filter_map(|record| record.updated_at.map(|time| time.timestamp()))
        .max();
    state.pass_max = state.pass_max.max(page_max);
    match state.since {
        None => records,
        Some(since) => records
            .into_iter()
            .filter(|record| {
                record
                    .updated_at
                    .is_none_or(|time| time.timestamp() > since)
            })
            .collect(),
    }
}

/// Ends a pass: the watermark moves to the newest change seen.
fn finish_pass(state: &mut State) {
    state.since = state.pass_max.max(state.since);
    state.pass_max = None;
    state.starting_after = None;
    state.scroll_param = None;
}

/// The search value for a watermark. Search compares dates by calendar day in the workspace's
/// time zone, and `>` starts at the day after the value's day. The value is the start of the
/// UTC day before the watermark's: in UTC that asks for the watermark's whole day, and in any
/// other time zone the value's local day is still before the watermark's, so nothing after the
/// watermark is left out. The extra records are dropped by [`after_watermark`].
fn search_value(since: Option<i64>) -> i64 {
    match since {
        None => 0,
        Some(since) => since.div_euclid(SECONDS_PER_DAY) * SECONDS_PER_DAY - SECONDS_PER_DAY,
    }
}

/// Reads the next page of Intercom `object_type` (`contacts`, `companies` or `conversations`).
///
/// The cursor is JSON: `{"since":…,"starting_after":…,"pass_max":…}` for search,
/// `{"since":…,"scroll_param":…,"pass_max":…}` for companies. Deleted contacts are not in search
/// results; they arrive by webhook (see the module documentation).
/// A cursor reading records updated after `since`.
pub(crate) fn cursor_since(since: DateTime<Utc>) -> Cursor {
    Cursor::encode(&State {
        since: Some(since.timestamp()),
        ..State::default()
    })
}

/// The watermark of a stored cursor: records updated after it are read next.
pub(crate) fn watermark(cursor: &Cursor) -> Result<Option<DateTime<Utc>>, ProviderError> {
    let state: State = Cursor::state(Some(cursor), ProviderKind::Intercom)?;
    Ok(state
        .since
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0)))
}

pub(crate) async fn read_page(
    client: &ProviderClient,
    object_type: &str,
    cursor: Option<&Cursor>,
    options: &ReadOptions,
) -> Result<Page, ProviderError> {
    let state: State = Cursor::state(cursor, ProviderKind::Intercom)?;
    if object_type == "companies" {
        scroll_companies(client, state).await
    } else {
        search(client, object_type, state, options).await
    }
}

/// One page of a contact or conversation search pass.
async fn search(
    client: &ProviderClient,
    object_type: &str,
    mut state: State,
    options: &ReadOptions,
) -> Result<Page, ProviderError> {
    let per_page = options
        .page_size
        .unwrap_or(MAX_SEARCH_PAGE)
        .clamp(1, MAX_SEARCH_PAGE);
    let mut pagination = json!({"per_page": per_page});
    if let Some(after) = &state.starting_after {
        pagination["starting_after"] = json!(after);
    }
    let body = json!({
        "query": {"field": "updated_at", "operator": ">", "value": search_value(state.since)},
        "pagination": pagination,
        "sort": {"field": "updated_at", "order": "ascending"},
    });
    let path = format!("/{object_type}/search");
    let what = format!("POST {path}");
    let mut response: SearchResponse = client
        .call(client.request(Method::POST, &path).json(&body), &what)
        .await?;
    let key = records_key(object_type);
    let objects = match response.rest.remove(key) {
        Some(Value::Array(objects)) => objects,
        _ => return Err(client.missing(&what, key)),
    };
    let records = objects
        .into_iter()
        .map(|object| into_record(client, object_type, object, &what))
        .collect::<Result<Vec<_>, _>>()?;
    let records = after_watermark(records, &mut state);
    let next = response
        .pages
        .and_then(|pages| pages.next)
        .and_then(|next| next.starting_after);
    let has_more = match next {
        Some(after) => {
            state.starting_after = Some(after);
            true
        }
        None => {
            finish_pass(&mut state);
            false
        }
    };
    Ok(Page {
        records,
        cursor: Cursor::encode(&state),
        has_more,
        restarted: false,
    })
}

/// Whether a failed scroll call means the scroll is gone and must start over: an expired or
/// unknown `scroll_param` (404, or a refusal that says so), or the documented 500 asking to
/// "restart the scroll operation".
fn scroll_is_gone(error: &ProviderError) -> bool {
    match error {
        ProviderError::NotFound { .. } => true,
        ProviderError::Rejected { message, .. } => {
            let message = message.to_lowercase();
            message.contains("scroll")
                && (message.contains("expired") || message.contains("not found"))
        }
        ProviderError::Unavailable { detail, .. } => {
            detail.to_lowercase().contains("restart the scroll")
        }
        _ => false,
    }
}

/// One scroll call: the first page without `scroll_param`, the next ones with it.
async fn scroll_call(
    client: &ProviderClient,
    scroll_param: Option<&str>,
) -> Result<ScrollResponse, ProviderError> {
    let mut request = client.request(Method::GET, "/companies/scroll");
    if let Some(scroll_param) = scroll_param {
        request = request.query(&[("scroll_param", scroll_param)]);
    }
    let result = client.call(request, "GET /companies/scroll").await;
    match result {
        // Another scroll is open for the app (ours, abandoned, or another client's): it expires
        // within a minute of its last use.
        Err(ProviderError::Rejected {
            status: 400,
            message,
            ..
        }) if message.to_lowercase().contains("scroll already exists") => {
            Err(ProviderError::RateLimited {
                provider: ProviderKind::Intercom,
                wait: SCROLL_LIFETIME,
            })
        }
        other => other,
    }
}

/// One page of the companies scroll. The scroll has no filter, so each pass reads every company
/// and keeps those updated after the watermark.
async fn scroll_companies(
    client: &ProviderClient,
    mut state: State,
) -> Result<Page, ProviderError> {
    let response = match scroll_call(client, state.scroll_param.as_deref()).await {
        Ok(response) => response,
        // A scroll cannot resume from a position: read from the start again (records already
        // read this pass come again, which is harmless; the pass's newest change is kept).
        Err(error) if state.scroll_param.is_some() && scroll_is_gone(&error) => {
            state.scroll_param = None;
            scroll_call(client, None).await?
        }
        Err(error) => return Err(error),
    };
    let what = "GET /companies/scroll";
    let at_end = response.data.is_empty();
    let records = response
        .data
        .into_iter()
        .map(|object| into_record(client, "companies", object, what))
        .collect::<Result<Vec<_>, _>>()?;
    let records = after_watermark(records, &mut state);
    if at_end {
        finish_pass(&mut state);
    } else {
        state.scroll_param = Some(
            response
                .scroll_param
                .ok_or_else(|| client.missing(what, "scroll_param"))?,
        );
    }
    Ok(Page {
        records,
        cursor: Cursor::encode(&state),
        has_more: !at_end,
        restarted: false,
    })
}
