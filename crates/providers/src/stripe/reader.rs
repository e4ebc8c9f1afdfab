//! Stripe's incremental reader for customers, invoices and charges: a full list (newest first) on
//! the first sync, then passes over the Events API, each bounded above by a time fixed when the
//! pass starts, so an interrupted pass resumes without losing an event. Stripe keeps events for
//! 30 days; a cursor older than that starts over with a full list.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::ProviderClient;
use crate::records::{Cursor, Page, ReadOptions, Record};
use crate::{ProviderError, ProviderKind};

/// Stripe's largest page, for lists and events alike.
const MAX_PAGE: u32 = 100;
/// Stripe guarantees events for 30 days.
const EVENT_RETENTION_SECONDS: i64 = 30 * 24 * 60 * 60;
/// A pass must start this long before its oldest event would expire, so that its last pages (the
/// oldest events) are still there when it reaches them.
const RETENTION_SAFETY_SECONDS: i64 = 60 * 60;
/// How far behind our clock a pass's upper bound (and a backfill's start) is set: Stripe's clock
/// and ours may disagree a little, and an event may be listed shortly after its `created` time.
/// Events inside the margin are read by the next pass instead.
const CLOCK_MARGIN_SECONDS: i64 = 60;

/// The reader's position. Unknown fields are refused: a cursor of another provider is an error,
/// not a silent restart.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// A full list in progress (the first sync, or after the events horizon passed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backfill: Option<Backfill>,
    /// Events created after this time (epoch seconds) are still to be read: the upper bound of
    /// the last complete pass, or the start of the backfill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    events_since: Option<i64>,
    /// The current pass's upper bound (`created[lte]`, epoch seconds), fixed when it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pass_until: Option<i64>,
    /// The id of the last event read in the current pass (`starting_after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pass_after: Option<String>,
}

/// A full list in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Backfill {
    /// When it started (epoch seconds, less the clock margin): events from then on are read
    /// after it, which covers whatever changed while it ran.
    started: i64,
    /// The id of the last object listed (`starting_after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
}

/// Stripe's list envelope (`{"object":"list","data":[…],"has_more":…}`).
#[derive(Debug, Deserialize)]
struct StripeList<T> {
    data: Vec<T>,
    has_more: bool,
}

/// One event of the Events API.
#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: EventData,
}

/// An event's payload: the object's snapshot at the event.
#[derive(Debug, Deserialize)]
struct EventData {
    object: Map<String, Value>,
}

/// Stripe's `object` value for the records of each object type.
fn object_name(object_type: &str) -> &'static str {
    match object_type {
        "customers" => "customer",
        "invoices" => "invoice",
        _ => "charge",
    }
}

/// The event types that carry a snapshot of an object of this type. `*.deleted` marks a delete;
/// charges are never deleted (refunds and disputes are their own objects). Types whose
/// `data.object` is another object (`customer.subscription.*`, `charge.dispute.*`) or has no id
/// (`invoice.upcoming`) are left out.
fn event_types(object_type: &str) -> &'static [&'static str] {
    match object_type {
        "customers" => &["customer.created", "customer.updated", "customer.deleted"],
        "invoices" => &[
            "invoice.created",
            "invoice.updated",
            "invoice.deleted",
            "invoice.finalized",
            "invoice.finalization_failed",
            "invoice.paid",
            "invoice.payment_action_required",
            "invoice.payment_failed",
            "invoice.payment_succeeded",
            "invoice.sent",
            "invoice.marked_uncollectible",
            "invoice.voided",
        ],
        _ => &[
            "charge.succeeded",
            "charge.failed",
            "charge.pending",
            "charge.captured",
            "charge.expired",
            "charge.refunded",
            "charge.updated",
        ],
    }
}

/// The dashboard path of each object type (charges are shown as payments).
fn dashboard_path(object_type: &str) -> &'static str {
    match object_type {
        "customers" => "customers",
        "invoices" => "invoices",
        _ => "payments",
    }
}

/// The `limit` to ask for.
fn page_size(options: &ReadOptions) -> String {
    options
        .page_size
        .unwrap_or(MAX_PAGE)
        .clamp(1, MAX_PAGE)
        .to_string()
}

/// A Stripe object as a record. Objects without an `id` are a decode error, never skipped.
fn into_record(
    client: &ProviderClient,
    object_type: &str,
    object: Map<String, Value>,
    updated_at: Option<DateTime<Utc>>,
    deleted: bool,
    what: &str,
) -> Result<Record, ProviderError> {
    let external_id = object
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| client.missing(what, "id"))?
        .to_owned();
    // Test-mode objects live under /test in the dashboard.
    let mode = match object.get("livemode") {
        Some(Value::Bool(false)) => "test/",
        _ => "",
    };
    let source_url = Some(format!(
        "https://dashboard.stripe.com/{mode}{}/{external_id}",
        dashboard_path(object_type)
    ));
    let deleted = deleted || object.get("deleted") == Some(&Value::Bool(true));
    Ok(Record {
        external_id,
        object_type: object_type.to_owned(),
        updated_at,
        deleted,
        fields: object,
        source_url,
    })
}

/// Reads the next page of Stripe `object_type` (`customers`, `invoices` or `charges`).
///
/// The cursor is JSON: `{"backfill":{"started":…,"after":…}}` while the full list runs, then
/// `{"events_since":…,"pass_until":…,"pass_after":…}` for the events passes. List records carry
/// no `updated_at` (Stripe objects have no modification time); event records carry the event's
/// `created` time, the moment their snapshot was current. A pass reads events newest first, so
/// when one object changed several times in a pass its older snapshots follow the newer one on
/// later pages: a consumer must keep the record with the newest `updated_at`. Within one page,
/// only the newest snapshot of each object is yielded.
/// A cursor reading changes (events) created after `since`. Stripe keeps events for 30 days: from
/// further back, the reader lists everything instead.
pub(crate) fn cursor_since(since: DateTime<Utc>) -> Cursor {
    Cursor::encode(&State {
        events_since: Some(since.timestamp()),
        ..State::default()
    })
}

/// The watermark of a stored cursor: events created after it are read next (during a backfill,
/// the backfill's start).
pub(crate) fn watermark(cursor: &Cursor) -> Result<Option<DateTime<Utc>>, ProviderError> {
    let state: State = Cursor::state(Some(cursor), ProviderKind::Stripe)?;
    Ok(state
        .backfill
        .as_ref()
        .map(|backfill| backfill.started)
        .or(state.events_since)
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0)))
}

pub(crate) async fn read_page(
    client: &ProviderClient,
    object_type: &str,
    cursor: Option<&Cursor>,
    options: &ReadOptions,
) -> Result<Page, ProviderError> {
    let state: State = Cursor::state(cursor, ProviderKind::Stripe)?;
    let now = client.now().timestamp();
    match (&state.backfill, state.events_since) {
        (Some(_), _) => list_page(client, object_type, state, options).await,
        (None, Some(since)) if now - since > EVENT_RETENTION_SECONDS - RETENTION_SAFETY_SECONDS => {
            // Events older than the retention may be gone: only a full list is complete.
            list_page(client, object_type, State::default(), options).await
        }
        (None, Some(since)) => events_page(client, object_type, state, since, options).await,
        (None, None) => list_page(client, object_type, State::default(), options).await,
    }
}

/// One page of the full list. A fresh `state` (no backfill) starts one now.
async fn list_page(
    client: &ProviderClient,
    object_type: &str,
    state: State,
    options: &ReadOptions,
) -> Result<Page, ProviderError> {
    let mut backfill = state.backfill.unwrap_or_else(|| Backfill {
        started: client.now().timestamp() - CLOCK_MARGIN_SECONDS,
        after: None,
    });
    let mut query = vec![("limit", page_size(options))];
    if let Some(after) = &backfill.after {
        query.push(("starting_after", after.clone()));
    }
    let path = format!("/v1/{object_type}");
    let what = format!("GET {path}");
    let list: StripeList<Map<String, Value>> = client
        .call(client.request(Method::GET, &path).query(&query), &what)
        .await?;
    let records = list
        .data
        .into_iter()
        .map(|object| into_record(client, object_type, object, None, false, &what))
        .collect::<Result<Vec<_>, _>>()?;
    let next_state = if list.has_more {
        let last = records
            .last()
            .ok_or_else(|| client.missing(&what, "data"))?;
        backfill.after = Some(last.external_id.clone());
        State {
            backfill: Some(backfill),
            ..State::default()
        }
    } else {
        // The list is done; what changed since it started comes from the events, read next.
        State {
            events_since: Some(backfill.started),
            ..State::default()
        }
    };
    Ok(Page {
        records,
        cursor: Cursor::encode(&next_state),
        has_more: true,
        restarted: false,
    })
}

/// One page of an events pass over `(since, until]`; the lower bound moves only when the pass
/// completes, so an interrupted pass resumes at its last event with the same bounds.
async fn events_page(
    client: &ProviderClient,
    object_type: &str,
    mut state: State,
    since: i64,
    options: &ReadOptions,
) -> Result<Page, ProviderError> {
    let until = match state.pass_until {
        Some(until) => until,
        None => client.now().timestamp() - CLOCK_MARGIN_SECONDS,
    };
    if until <= since {
        // Nothing can have settled since the last pass.
        return Ok(Page {
            records: Vec::new(),
            cursor: Cursor::encode(&state),
            has_more: false,
            restarted: false,
        });
    }
    let mut query: Vec<(&str, String)> = event_types(object_type)
        .iter()
        .map(|kind| ("types[]", (*kind).to_owned()))
        .collect();
    query.push(("created[gt]", since.to_string()));
    query.push(("created[lte]", until.to_string()));
    query.push(("limit", page_size(options)));
    if let Some(after) = &state.pass_after {
        query.push(("starting_after", after.clone()));
    }
    let what = format!("GET /v1/events ({object_type})");
    let events: StripeList<Event> = client
        .call(
            client.request(Method::GET, "/v1/events").query(&query),
            &what,
        )
        .await?;
    let last_event_id = events.data.last().map(|event| event.id.clone());
    let wanted = object_name(object_type);
    let mut records: Vec<Record> = Vec::new();
    for event in events.data {
        if event.data.object.get("object").and_then(Value::as_str) != Some(wanted) {
            continue;
        }
        let updated_at = DateTime::from_timestamp(event.created, 0);
        let deleted = event.kind.ends_with(".deleted");
        let record = into_record(
            client,
            object_type,
            event.data.object,
            updated_at,
            deleted,
            &what,
        )?;
        // Events come newest first: the first snapshot of an object on the page is its newest.
        if !records
            .iter()
            .any(|seen| seen.external_id == record.external_id)
        {
            records.push(record);
        }
    }
    let has_more = if events.has_more {
        state.pass_until = Some(until);
        state.pass_after = Some(last_event_id.ok_or_else(|| client.missing(&what, "data"))?);
        true
    } else {
        state.events_since = Some(until);
        state.pass_until = None;
        state.pass_after = None;
        false
    };
    Ok(Page {
        records,
        cursor: Cursor::encode(&state),
        has_more,
        restarted: false,
    })
}
