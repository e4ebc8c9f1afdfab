//! HubSpot's incremental reader for contacts, companies and deals: CRM search on the last-modified
//! property, ascending, in windows that never pass search's 10,000-result cap, then the archived
//! list for deletes (search never returns archived records).
//!
//! A window that reaches the cap restarts at the newest modification time it saw. When a single
//! millisecond holds more than the cap (a bulk import), the records of that millisecond are read
//! by object id instead (`hs_object_id` ascending, each query after the highest id the previous
//! one delivered), then the window moves past it: none is skipped.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::client::ProviderClient;
use crate::records::{Cursor, Page, ReadOptions, Record, parse_time};
use crate::{ProviderError, ProviderKind};

/// The property holding a record's id, for the tie-break inside one millisecond.
const OBJECT_ID: &str = "hs_object_id";
/// Search returns at most this many results per query, paging included.
const SEARCH_RESULT_CAP: u64 = 10_000;
const MAX_SEARCH_PAGE: u32 = 200;
const MAX_LIST_PAGE: u32 = 100;

/// The reader's position. Unknown fields are refused: a cursor of another provider is an error,
/// not a silent restart.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// Reading archived records (after search caught up).
    #[serde(default)]
    archived_phase: bool,
    /// The watermark: records modified at or after it (epoch ms) are read.
    #[serde(default)]
    since_ms: Option<i64>,
    /// Search paging within the current window.
    #[serde(default)]
    after: Option<String>,
    /// The newest watermark value seen in the current window.
    #[serde(default)]
    window_max_ms: Option<i64>,
    /// Archived records after this time (epoch ms) are reported as deletes.
    #[serde(default)]
    archived_since_ms: Option<i64>,
    /// Paging through the archived list.
    #[serde(default)]
    archived_after: Option<String>,
    /// The newest archive time seen in this pass.
    #[serde(default)]
    archived_max_ms: Option<i64>,
    /// A millisecond holding more records than one query may return: they are read by object id
    /// (`hs_object_id`), in queries of at most the cap each, before the window moves past it.
    #[serde(default)]
    tie_ms: Option<i64>,
    /// In the tie: records with an object id above this one (`None`: from the lowest).
    #[serde(default)]
    tie_after_id: Option<u64>,
    /// In the tie: the highest object id the current query delivered.
    #[serde(default)]
    tie_max_id: Option<u64>,
}

/// The last-modified property of each object type.
fn watermark_property(object_type: &str) -> &'static str {
    match object_type {
        "contacts" => "lastmodifieddate",
        _ => "hs_lastmodifieddate",
    }
}

fn default_properties(object_type: &str) -> &'static [&'static str] {
    match object_type {
        "contacts" => &[
            "email",
            "firstname",
            "lastname",
            "phone",
            "company",
            "jobtitle",
            "lifecyclestage",
        ],
        "companies" => &[
            "name",
            "domain",
            "industry",
            "phone",
            "city",
            "country",
            "numberofemployees",
        ],
        _ => &[
            "dealname",
            "amount",
            "dealstage",
            "pipeline",
            "closedate",
            "hubspot_owner_id",
        ],
    }
}

/// HubSpot's object type id, used in record links.
fn object_type_id(object_type: &str) -> &'static str {
    match object_type {
        "contacts" => "0-1",
        "companies" => "0-2",
        _ => "0-3",
    }
}

#[derive(Debug, Deserialize)]
struct SearchResponse {
    #[serde(default)]
    results: Vec<HubSpotObject>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Debug, Deserialize)]
struct Paging {
    next: Option<NextPage>,
}

#[derive(Debug, Deserialize)]
struct NextPage {
    after: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HubSpotObject {
    id: String,
    #[serde(default)]
    properties: Map<String, Value>,
    #[serde(default)]
    updated_at: Option<Value>,
    #[serde(default)]
    archived: Option<bool>,
    #[serde(default)]
    archived_at: Option<Value>,
}

fn millis(time: Option<DateTime<Utc>>) -> Option<i64> {
    time.map(|time| time.timestamp_millis())
}

impl HubSpotObject {
    fn into_record(self, client: &ProviderClient, object_type: &str, watermark: &str) -> Record {
        let updated_at = self
            .properties
            .get(watermark)
            .and_then(parse_time)
            .or_else(|| self.updated_at.as_ref().and_then(parse_time));
        let deleted = self.archived.unwrap_or(false);
        let source_url = client.account_id().map(|portal| {
            format!(
                "https://app.hubspot.com/contacts/{portal}/record/{}/{}",
                object_type_id(object_type),
                self.id
            )
        });
        Record {
            external_id: self.id,
            object_type: object_type.to_owned(),
            updated_at,
            deleted,
            fields: self.properties,
            source_url,
        }
    }
}

/// A cursor reading records modified at or after `since`, and archives after it.
pub(crate) fn cursor_since(since: DateTime<Utc>) -> Cursor {
    let ms = since.timestamp_millis();
    Cursor::encode(&State {
        since_ms: Some(ms),
        archived_since_ms: Some(ms),
        ..State::default()
    })
}

/// The watermark of a stored cursor: records modified at or after it are read next.
pub(crate) fn watermark(cursor: &Cursor) -> Result<Option<DateTime<Utc>>, ProviderError> {
    let state: State = Cursor::state(Some(cursor), ProviderKind::HubSpot)?;
    Ok(state
        .tie_ms
        .or(state.since_ms)
        .and_then(DateTime::from_timestamp_millis))
}

pub(crate) async fn read_page(
    client: &ProviderClient,
    object_type: &str,
    cursor: Option<&Cursor>,
    options: &ReadOptions,
) -> Result<Page, ProviderError> {
    let state: State = Cursor::state(cursor, ProviderKind::HubSpot)?;
    if state.archived_phase {
        read_archived(client, object_type, state, options).await
    } else {
        search(client, object_type, state, options).await
    }
}

fn properties(object_type: &str, options: &ReadOptions) -> Vec<String> {
    let mut properties: Vec<String> = default_properties(object_type)
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    properties.push(watermark_property(object_type).to_owned());
    for extra in &options.extra_fields {
        if !properties.contains(extra) {
            properties.push(extra.clone());
        }
    }
    properties
}

async fn search(
    client: &ProviderClient,
    object_type: &str,
    mut state: State,
    options: &ReadOptions,
) -> Result<Page, ProviderError> {
    let watermark = watermark_property(object_type);
    let limit = options
        .page_size
        .unwrap_or(MAX_SEARCH_PAGE)
        .clamp(1, MAX_SEARCH_PAGE);
    let (filters, sort_by): (Vec<Value>, &str) = match state.tie_ms {
        Some(tie) => {
            let mut filters =
                vec![json!({"propertyName": watermark, "operator": "EQ", "value": tie.to_string()})];
            if let Some(after_id) = state.tie_after_id {
                filters.push(json!({"propertyName": OBJECT_ID, "operator": "GT", "value": after_id.to_string()}));
            }
            (filters, OBJECT_ID)
        }
        None => (
            state
                .since_ms
                .map(|since| {
                    vec![json!({"propertyName": watermark, "operator": "GTE", "value": since.to_string()})]
                })
                .unwrap_or_default(),
            watermark,
        ),
    };
    let mut body = json!({
        "filterGroups": if filters.is_empty() { json!([]) } else { json!([{"filters": filters}]) },
        "sorts": [{"propertyName": sort_by, "direction": "ASCENDING"}],
        "properties": properties(object_type, options),
        "limit": limit,
    });
    if let Some(after) = &state.after {
        body["after"] = json!(after);
    }
    let what = format!("POST /crm/v3/objects/{object_type}/search");
    let response: SearchResponse = client
        .call(
            client
                .request(
                    Method::POST,
                    &format!("/crm/v3/objects/{object_type}/search"),
                )
                .json(&body),
            &what,
        )
        .await?;
    let records: Vec<Record> = response
        .results
        .into_iter()
        .map(|object| object.into_record(client, object_type, watermark))
        .collect();
    let next = response.paging.and_then(|paging| paging.next);
    if state.tie_ms.is_some() {
        tie_step(client, &mut state, &records, next, limit)?;
    } else {
        window_step(&mut state, &records, next, limit);
    }
    Ok(Page {
        records,
        cursor: Cursor::encode(&state),
        has_more: true,
        restarted: false,
    })
}

/// Moves a watermark window on after one page of `records` with the search's `next` paging.
fn window_step(state: &mut State, records: &[Record], next: Option<NextPage>, limit: u32) {
    let page_max = records
        .iter()
        .filter_map(|record| millis(record.updated_at))
        .max();
    state.window_max_ms = state.window_max_ms.max(page_max);
    match next {
        Some(next) => {
            let offset: u64 = next.after.parse().unwrap_or(0);
            if offset + u64::from(limit) > SEARCH_RESULT_CAP {
                // Start a new window at the newest value seen: the boundary records are read
                // again (harmless), and no query pages past the cap. When the whole window was
                // one millisecond, read that millisecond by object id instead.
                let restart = state.window_max_ms.unwrap_or_default();
                if Some(restart) == state.since_ms {
                    state.tie_ms = Some(restart);
                    state.tie_after_id = None;
                    state.tie_max_id = None;
                } else {
                    state.since_ms = Some(restart);
                }
                state.after = None;
                state.window_max_ms = None;
            } else {
                state.after = Some(next.after);
            }
        }
        None => {
            state.since_ms = state.window_max_ms.or(state.since_ms);
            state.after = None;
            state.window_max_ms = None;
            state.archived_phase = true;
        }
    }
}

/// Moves the read of one saturated millisecond on, by object id.
fn tie_step(
    client: &ProviderClient,
    state: &mut State,
    records: &[Record],
    next: Option<NextPage>,
    limit: u32,
) -> Result<(), ProviderError> {
    for record in records {
        let id: u64 = record
            .external_id
            .parse()
            .map_err(|_| ProviderError::Decode {
                provider: client.provider(),
                what: "HubSpot search by object id".to_owned(),
                reason: format!("object id `{}` is not a number", record.external_id),
            })?;
        state.tie_max_id = state.tie_max_id.max(Some(id));
    }
    match next {
        Some(next) => {
            let offset: u64 = next.after.parse().unwrap_or(0);
            if offset + u64::from(limit) > SEARCH_RESULT_CAP {
                // The next query continues after the highest id delivered.
                state.tie_after_id = state.tie_max_id.or(state.tie_after_id);
                state.after = None;
            } else {
                state.after = Some(next.after);
            }
        }
        None => {
            // Every record of that millisecond is read: the window continues after it.
            state.since_ms = state.tie_ms.map(|tie| tie + 1);
            state.tie_ms = None;
            state.tie_after_id = None;
            state.tie_max_id = None;
            state.after = None;
            state.window_max_ms = None;
        }
    }
    Ok(())
}

async fn read_archived(
    client: &ProviderClient,
    object_type: &str,
    mut state: State,
    options: &ReadOptions,
) -> Result<Page, ProviderError> {
    let watermark = watermark_property(object_type);
    let limit = options
        .page_size
        .unwrap_or(MAX_LIST_PAGE)
        .clamp(1, MAX_LIST_PAGE);
    let mut query: Vec<(&str, String)> = vec![
        ("archived", "true".to_owned()),
        ("limit", limit.to_string()),
        ("properties", properties(object_type, options).join(",")),
    ];
    if let Some(after) = &state.archived_after {
        query.push(("after", after.clone()));
    }
    let what = format!("GET /crm/v3/objects/{object_type}?archived=true");
    let response: SearchResponse = client
        .call(
            client
                .request(Method::GET, &format!("/crm/v3/objects/{object_type}"))
                .query(&query),
            &what,
        )
        .await?;
    let mut records = Vec::new();
    for object in response.results {
        let archived_at = object.archived_at.as_ref().and_then(parse_time);
        let archived_ms = millis(archived_at);
        state.archived_max_ms = state.archived_max_ms.max(archived_ms);
        // The list has no filter: report only what was archived after the last pass's newest
        // archive (a whole pass sees every archived record, so nothing at that instant is missed).
        if state
            .archived_since_ms
            .is_some_and(|since| archived_ms.is_some_and(|at| at <= since))
        {
            continue;
        }
        let mut record = object.into_record(client, object_type, watermark);
        record.deleted = true;
        record.updated_at = archived_at.or(record.updated_at);
        records.push(record);
    }
    let has_more = match response.paging.and_then(|paging| paging.next) {
        Some(next) => {
            state.archived_after = Some(next.after);
            true
        }
        None => {
            state.archived_since_ms = state.archived_max_ms.or(state.archived_since_ms);
            state.archived_after = None;
            state.archived_max_ms = None;
            state.archived_phase = false;
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
