//! Salesforce's incremental reader for Account, Contact, Lead and Opportunity: SOQL through
//! `queryAll` (so soft-deleted rows arrive with `IsDeleted = true` and become deletes), ordered by
//! `SystemModstamp` then `Id`, following `nextRecordsUrl` until the query is done.
//!
//! The watermark (the newest `SystemModstamp` seen) is committed only when a query finishes, and the
//! next query reads from it inclusively (`>=`): records sharing the watermark's timestamp are read
//! again, which is harmless, and none is skipped. When a stored `nextRecordsUrl` can no longer be
//! followed (query locators expire about 15 minutes after their last use, and belong to the session
//! that opened them), the query restarts from the newest `(SystemModstamp, Id)` this query has
//! delivered, so nothing is skipped and little is read twice.
//!
//! Hard deletes (a record purged from the Recycle Bin never shows in `queryAll`) come from the
//! getDeleted resource, `sobjects/{Type}/deleted/?start=&end=`, read after each query that ends a
//! minute or more after the previous window: every id it lists becomes a tombstone, and its
//! `latestDateCovered` is the next window's start. The first window starts when the first query
//! began. A window the delete log no longer covers (its `earliestDateAvailable` is after the
//! window's start, or the start is older than the 15 days Salesforce keeps) means deletes may have
//! been missed: the reader starts a full re-read, its first page marked `restarted`.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::ProviderClient;
use crate::records::{Cursor, Page, ReadOptions, Record, parse_time};
use crate::{ProviderError, ProviderKind};

/// The REST API version every query pins (Winter '25).
pub(crate) const API_VERSION: &str = "62.0";
/// How far back the delete log reaches.
const DELETE_LOG_DAYS: chrono::Duration = chrono::Duration::days(15);
/// The shortest getDeleted window worth a call (the resource works to the minute).
const MIN_DELETE_WINDOW: chrono::Duration = chrono::Duration::minutes(1);
/// The smallest and largest batch sizes `Sforce-Query-Options` accepts.
const MIN_BATCH_SIZE: u32 = 200;
const MAX_BATCH_SIZE: u32 = 2000;

/// The reader's position. Unknown fields are refused: a cursor of another provider is an error,
/// not a silent restart.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// Committed when a query finishes: the next query reads records whose `SystemModstamp` is at
    /// or after it. `None` before the first query has finished (read everything).
    #[serde(default)]
    watermark: Option<DateTime<Utc>>,
    /// The query in progress: the next batch to fetch.
    #[serde(default)]
    next_records_url: Option<String>,
    /// The lower bound the query in progress started from.
    #[serde(default)]
    query_from: Option<DateTime<Utc>>,
    /// With `query_from`: the query in progress reads records at exactly `query_from` only after
    /// this `Id` (set when a restart would otherwise begin where the last one did).
    #[serde(default)]
    query_after_id: Option<String>,
    /// The `SystemModstamp` of the last record the query in progress delivered.
    #[serde(default)]
    seen_stamp: Option<DateTime<Utc>>,
    /// The `Id` of the last record the query in progress delivered.
    #[serde(default)]
    seen_id: Option<String>,
    /// The start of the next getDeleted window (`None` in a cursor from before deletes were read:
    /// set when its next query starts).
    #[serde(default)]
    deleted_from: Option<DateTime<Utc>>,
    /// The query finished and the getDeleted window is due: the next page reads it.
    #[serde(default)]
    deletes_due: bool,
}

impl State {
    /// Starts a new query from the committed watermark. A state without a delete window gets one
    /// from the watermark (at most as old as the delete log reaches), or from now.
    fn start_query(&mut self, now: DateTime<Utc>) {
        if self.deleted_from.is_none() {
            let oldest = now - DELETE_LOG_DAYS + chrono::Duration::hours(1);
            self.deleted_from = Some(self.watermark.map_or(now, |mark| mark.max(oldest)));
        }
        self.next_records_url = None;
        self.query_from = self.watermark;
        self.query_after_id = None;
        self.seen_stamp = None;
        self.seen_id = None;
    }

    /// Restarts the query in progress after its locator became unusable. Results are ordered by
    /// `(SystemModstamp, Id)`, so everything before the last delivered record has been delivered.
    /// The restart reads that timestamp again inclusively (`>=`), except when the query already
    /// began at that timestamp: then all it delivered shares it, and an inclusive restart could
    /// deliver the same batch forever, so it continues after the last delivered `Id` instead.
    fn restart_query(&mut self) {
        self.next_records_url = None;
        if let Some(stamp) = self.seen_stamp {
            if self.query_from == Some(stamp) {
                self.query_after_id = self.seen_id.clone();
            } else {
                self.query_from = Some(stamp);
                self.query_after_id = None;
            }
        }
    }

    /// Commits the finished query's newest timestamp as the watermark.
    fn finish_query(&mut self) {
        self.watermark = self.watermark.max(self.seen_stamp);
        self.next_records_url = None;
        self.query_from = None;
        self.query_after_id = None;
        self.seen_stamp = None;
        self.seen_id = None;
    }
}

/// The fields every object type reads, before its own defaults.
const COMMON_FIELDS: [&str; 5] = [
    "Id",
    "Name",
    "IsDeleted",
    "SystemModstamp",
    "LastModifiedDate",
];

/// The standard fields read for each object type besides the common ones.
fn default_fields(object_type: &str) -> &'static [&'static str] {
    match object_type {
        "Account" => &["Website", "Industry", "Phone"],
        "Contact" => &["FirstName", "LastName", "Email", "Phone", "AccountId"],
        "Lead" => &["FirstName", "LastName", "Email", "Company", "Status"],
        "Opportunity" => &["Amount", "StageName", "CloseDate", "AccountId"],
        _ => &[],
    }
}

/// A `query`/`queryAll` answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryResponse {
    done: bool,
    #[serde(default)]
    next_records_url: Option<String>,
    records: Vec<Map<String, Value>>,
}

/// A cursor reading records changed at or after `since` (and deletes from then on).
pub(crate) fn cursor_since(since: DateTime<Utc>) -> Cursor {
    Cursor::encode(&State {
        watermark: Some(since),
        deleted_from: Some(since),
        ..State::default()
    })
}

/// The watermark of a stored cursor: records changed at or after it are read next.
pub(crate) fn watermark(cursor: &Cursor) -> Result<Option<DateTime<Utc>>, ProviderError> {
    let state: State = Cursor::state(Some(cursor), ProviderKind::Salesforce)?;
    Ok(state.query_from.or(state.watermark))
}

/// Reads the next page of `object_type` (`Account`, `Contact`, `Lead` or `Opportunity`).
pub(crate) async fn read_page(
    client: &ProviderClient,
    object_type: &str,
    cursor: Option<&Cursor>,
    options: &ReadOptions,
) -> Result<Page, ProviderError> {
    let mut state: State = Cursor::state(cursor, ProviderKind::Salesforce)?;
    let soql_fields = fields(object_type, options)?;
    if state.deletes_due {
        return deleted(client, object_type, state).await;
    }
    let response = match state.next_records_url.clone() {
        Some(next_records_url) => {
            let next_records_url = checked_path(client, next_records_url)?;
            match follow(client, &next_records_url, options).await {
                Ok(response) => response,
                Err(error) if locator_unusable(&error) => {
                    // An invalid session fails the restarted query too, so a token that really
                    // expired still surfaces as `Unauthorized`.
                    state.restart_query();
                    query(client, object_type, &soql_fields, &state, options).await?
                }
                Err(error) => return Err(error),
            }
        }
        None => {
            state.start_query(client.now());
            query(client, object_type, &soql_fields, &state, options).await?
        }
    };

    let what = format!("Salesforce {object_type} record");
    let mut records = Vec::with_capacity(response.records.len());
    for fields in response.records {
        let (record, stamp) = into_record(client, object_type, &what, fields)?;
        // Results come ordered by (SystemModstamp, Id): the last record is the newest position.
        state.seen_stamp = Some(stamp);
        state.seen_id = Some(record.external_id.clone());
        records.push(record);
    }

    let has_more = if response.done {
        state.finish_query();
        // Deletes since the last window, once a minute or more has passed.
        state.deletes_due = state
            .deleted_from
            .is_some_and(|from| client.now() - from >= MIN_DELETE_WINDOW);
        state.deletes_due
    } else {
        let next_records_url = response
            .next_records_url
            .ok_or_else(|| client.missing("Salesforce query batch", "nextRecordsUrl"))?;
        state.next_records_url = Some(checked_path(client, next_records_url)?);
        true
    };
    Ok(Page {
        records,
        cursor: Cursor::encode(&state),
        has_more,
        restarted: false,
    })
}

/// A getDeleted answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeletedResponse {
    deleted_records: Vec<DeletedRecord>,
    #[serde(default)]
    earliest_date_available: Option<Value>,
    #[serde(default)]
    latest_date_covered: Option<Value>,
}

/// One id of a getDeleted answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeletedRecord {
    id: String,
    #[serde(default)]
    deleted_date: Option<Value>,
}

/// The getDeleted window from `state.deleted_from` to now: its ids as tombstones, then the next
/// window's start; or, when the delete log no longer covers the window, a full re-read.
async fn deleted(
    client: &ProviderClient,
    object_type: &str,
    mut state: State,
) -> Result<Page, ProviderError> {
    let now = client.now();
    let from = state.deleted_from.unwrap_or(now);
    if from < now - DELETE_LOG_DAYS {
        return Ok(full_reread(now, Vec::new()));
    }
    let what = format!("GET sobjects/{object_type}/deleted");
    let response: DeletedResponse = client
        .call(
            client
                .request(
                    Method::GET,
                    &format!("/services/data/v{API_VERSION}/sobjects/{object_type}/deleted/"),
                )
                .query(&[("start", window_time(from)), ("end", window_time(now))]),
            &what,
        )
        .await?;
    let time = |value: Option<&Value>, field: &str| match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => parse_time(value)
            .map(Some)
            .ok_or_else(|| ProviderError::Decode {
                provider: ProviderKind::Salesforce,
                what: what.clone(),
                reason: format!("`{field}` is not a date-time"),
            }),
    };
    let earliest = time(
        response.earliest_date_available.as_ref(),
        "earliestDateAvailable",
    )?;
    let covered = time(response.latest_date_covered.as_ref(), "latestDateCovered")?;
    let mut records = Vec::with_capacity(response.deleted_records.len());
    for deleted in response.deleted_records {
        if deleted.id.is_empty() {
            return Err(client.missing(&what, "deletedRecords[].id"));
        }
        let deleted_at = time(deleted.deleted_date.as_ref(), "deletedDate")?;
        let mut fields = Map::new();
        fields.insert("Id".to_owned(), Value::String(deleted.id.clone()));
        records.push(Record {
            external_id: deleted.id,
            object_type: object_type.to_owned(),
            updated_at: deleted_at,
            deleted: true,
            fields,
            source_url: None,
        });
    }
    if earliest.is_some_and(|earliest| earliest > from) {
        // The log was purged after the window began: deletes may be missing from it.
        return Ok(full_reread(now, records));
    }
    state.deleted_from = Some(covered.map_or(now, |covered| covered.min(now)));
    state.deletes_due = false;
    Ok(Page {
        records,
        cursor: Cursor::encode(&state),
        has_more: false,
        restarted: false,
    })
}

/// A page that begins a full re-read (with what tombstones are known), the next window starting
/// now.
fn full_reread(now: DateTime<Utc>, records: Vec<Record>) -> Page {
    let state = State {
        deleted_from: Some(now),
        ..State::default()
    };
    Page {
        records,
        cursor: Cursor::encode(&state),
        has_more: true,
        restarted: true,
    }
}

/// A getDeleted window bound, as the resource's documentation writes them.
fn window_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// The SOQL field list: common fields, the object's defaults, then the caller's extra fields
/// (SOQL rejects a field selected twice, in any letter case).
fn fields(object_type: &str, options: &ReadOptions) -> Result<Vec<String>, ProviderError> {
    let mut fields: Vec<String> = COMMON_FIELDS
        .iter()
        .chain(default_fields(object_type))
        .map(|name| (*name).to_owned())
        .collect();
    for extra in &options.extra_fields {
        if !is_field_name(extra) {
            return Err(ProviderError::Misconfigured {
                provider: ProviderKind::Salesforce,
                reason: format!("`{extra}` is not a Salesforce field name"),
            });
        }
        if !fields.iter().any(|field| field.eq_ignore_ascii_case(extra)) {
            fields.push(extra.clone());
        }
    }
    Ok(fields)
}

/// A field API name or relationship path (`Custom__c`, `Owner.Name`); nothing that could change
/// the query's meaning.
fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            part.chars()
                .next()
                .is_some_and(|first| first.is_ascii_alphabetic())
                && part
                    .chars()
                    .all(|char| char.is_ascii_alphanumeric() || char == '_')
        })
}

/// The SOQL of a query from the state's lower bound.
fn soql(object_type: &str, fields: &[String], state: &State) -> String {
    let filter = match (state.query_from, &state.query_after_id) {
        (None, _) => String::new(),
        (Some(from), None) => format!(" WHERE SystemModstamp >= {}", literal(from)),
        (Some(from), Some(after_id)) => format!(
            " WHERE (SystemModstamp > {from} OR (SystemModstamp = {from} AND Id > '{id}'))",
            from = literal(from),
            id = escape(after_id)
        ),
    };
    format!(
        "SELECT {} FROM {object_type}{filter} ORDER BY SystemModstamp ASC, Id ASC",
        fields.join(", ")
    )
}

/// A SOQL dateTime literal (unquoted, UTC, whole seconds: Salesforce keeps datetimes to the second).
fn literal(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Escapes a SOQL string literal's content.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\'', "\\'")
}

/// Asks for `options.page_size` records per batch (within what Salesforce accepts).
fn with_batch_size(
    builder: reqwest::RequestBuilder,
    options: &ReadOptions,
) -> reqwest::RequestBuilder {
    match options.page_size {
        Some(size) => builder.header(
            "Sforce-Query-Options",
            format!("batchSize={}", size.clamp(MIN_BATCH_SIZE, MAX_BATCH_SIZE)),
        ),
        None => builder,
    }
}

/// Runs a new `queryAll` from the state's lower bound.
async fn query(
    client: &ProviderClient,
    object_type: &str,
    fields: &[String],
    state: &State,
    options: &ReadOptions,
) -> Result<QueryResponse, ProviderError> {
    let builder = client
        .request(
            Method::GET,
            &format!("/services/data/v{API_VERSION}/queryAll"),
        )
        .query(&[("q", soql(object_type, fields, state))]);
    client
        .call(
            with_batch_size(builder, options),
            &format!("GET queryAll ({object_type})"),
        )
        .await
}

/// Fetches the next batch of the query in progress.
async fn follow(
    client: &ProviderClient,
    next_records_url: &str,
    options: &ReadOptions,
) -> Result<QueryResponse, ProviderError> {
    let builder = client.request(Method::GET, next_records_url);
    client
        .call(with_batch_size(builder, options), "GET nextRecordsUrl")
        .await
}

/// Whether following a locator failed because the locator is unusable: expired or unknown
/// (`INVALID_QUERY_LOCATOR`, answered with 400 or 404), or opened by a session that has since
/// been replaced (401). The locator request carries nothing else that could be wrong.
fn locator_unusable(error: &ProviderError) -> bool {
    matches!(
        error,
        ProviderError::NotFound { .. }
            | ProviderError::Unauthorized { .. }
            | ProviderError::Rejected { status: 400, .. }
    )
}

/// `nextRecordsUrl` must be a path on the instance: the token is never sent anywhere else, even
/// if a stored cursor or a response says so.
fn checked_path(client: &ProviderClient, path: String) -> Result<String, ProviderError> {
    if path.starts_with('/') && !path.starts_with("//") {
        Ok(path)
    } else {
        Err(ProviderError::Decode {
            provider: client.provider(),
            what: "Salesforce query batch".to_owned(),
            reason: "`nextRecordsUrl` is not a path on the instance".to_owned(),
        })
    }
}

/// A record with its `SystemModstamp`, without Salesforce's `attributes` object.
fn into_record(
    client: &ProviderClient,
    object_type: &str,
    what: &str,
    mut fields: Map<String, Value>,
) -> Result<(Record, DateTime<Utc>), ProviderError> {
    fields.remove("attributes");
    let id = fields
        .get("Id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| client.missing(what, "Id"))?
        .to_owned();
    let stamp = fields
        .get("SystemModstamp")
        .and_then(parse_time)
        .ok_or_else(|| client.missing(what, "SystemModstamp"))?;
    let deleted = fields
        .get("IsDeleted")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let record = Record {
        source_url: Some(client.url(&format!("/{id}"))),
        external_id: id,
        object_type: object_type.to_owned(),
        updated_at: Some(stamp),
        deleted,
        fields,
    };
    Ok((record, stamp))
}
