//! Gmail's incremental reader for messages. The first sync records the mailbox `historyId` from the
//! profile, then backfills the mailbox through `messages.list` (ids only) and one `messages.get`
//! (`format=full`, the same quota cost as `metadata`) per message; afterwards, `history.list` from
//! the recorded id reports what changed, so nothing that happened during the backfill is lost.
//!
//! Each record carries the message's text as `body`: its `text/plain` part, else text derived from
//! its `text/html` part, decoded from base64url, at most [`MAX_BODY_BYTES`] (then `body_truncated`
//! is true). Attachments are metadata only (`attachments`: file name, MIME type, size); no
//! attachment bytes are fetched. A text part in a charset other than UTF-8, ASCII or Latin-1 is
//! kept as UTF-8 with replacement characters and names its charset in `body_charset`.
//!
//! An expired history id (404 on `history.list`) means a full resync, not an error: the reader
//! records a fresh `historyId` and returns the first page of a new backfill, its cursor marked as a
//! resync. Deletes come from `messagesDeleted`, and from a message that is gone by the time it is
//! fetched.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::task::JoinSet;

use crate::client::ProviderClient;
use crate::records::{Cursor, Page, ReadOptions, Record, parse_time};
use crate::{ProviderError, ProviderKind};

/// The signed-in user's part of the API.
const USER_PATH: &str = "/gmail/v1/users/me";
const DEFAULT_PAGE_SIZE: u32 = 100;
/// `messages.list` and `history.list` both return at most 500 per page.
const MAX_PAGE_SIZE: u32 = 500;
/// The headers every record carries.
const DEFAULT_HEADERS: [&str; 4] = ["From", "To", "Subject", "Date"];
/// The message fields every record carries, besides the headers.
const MESSAGE_FIELDS: [&str; 5] = [
    "threadId",
    "labelIds",
    "snippet",
    "internalDate",
    "sizeEstimate",
];
/// The most message text a record keeps, in bytes of UTF-8.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// `messages.get` calls in flight at once for one page; enough to hide latency, few enough to
/// stay well inside the per-user quota (5 units a call).
const MAX_CONCURRENT_FETCHES: usize = 8;

/// The reader's position.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case", deny_unknown_fields)]
enum State {
    /// Nothing read yet.
    #[default]
    Start,
    /// Listing the mailbox; afterwards history is read from `history_id`, recorded before the
    /// backfill began.
    Backfill {
        history_id: String,
        #[serde(default)]
        page_token: Option<String>,
        /// This backfill replaces a history id that had expired.
        #[serde(default)]
        resync: bool,
    },
    /// Reading changes since `history_id`; `page_token` pages within one `history.list` read.
    History {
        history_id: String,
        #[serde(default)]
        page_token: Option<String>,
    },
}

/// `users.getProfile`: only the history id matters here.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    #[serde(default)]
    history_id: Option<Value>,
}

/// A `messages.list` page (ids only).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageList {
    #[serde(default)]
    messages: Vec<MessageRef>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// A message as lists and history name it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageRef {
    id: String,
    #[serde(default)]
    thread_id: Option<String>,
}

/// A `history.list` page.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryList {
    #[serde(default)]
    history: Vec<History>,
    #[serde(default)]
    next_page_token: Option<String>,
    #[serde(default)]
    history_id: Option<Value>,
}

/// One history record: the messages it added, deleted or relabelled.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct History {
    #[serde(default)]
    messages_added: Vec<MessageChange>,
    #[serde(default)]
    messages_deleted: Vec<MessageChange>,
    #[serde(default)]
    labels_added: Vec<MessageChange>,
    #[serde(default)]
    labels_removed: Vec<MessageChange>,
}

/// A history change's message.
#[derive(Debug, Deserialize)]
struct MessageChange {
    message: MessageRef,
}

/// A cursor reading the mailbox's changes after `history_id` (a `historyId` from the profile, a
/// message or a push notification).
pub(crate) fn cursor_after_history(history_id: &str) -> Result<Cursor, ProviderError> {
    if history_id.is_empty() || !history_id.chars().all(|char| char.is_ascii_digit()) {
        return Err(ProviderError::Misconfigured {
            provider: ProviderKind::Gmail,
            reason: format!("`{history_id}` is not a Gmail history id (digits)"),
        });
    }
    Ok(Cursor::encode(&State::History {
        history_id: history_id.to_owned(),
        page_token: None,
    }))
}

/// The history id a stored cursor continues from, if it has one yet.
pub(crate) fn history_id(cursor: &Cursor) -> Result<Option<String>, ProviderError> {
    let state: State = Cursor::state(Some(cursor), ProviderKind::Gmail)?;
    Ok(match state {
        State::Start => None,
        State::Backfill { history_id, .. } | State::History { history_id, .. } => Some(history_id),
    })
}

/// Reads the next page of `messages`.
pub(crate) async fn read_page(
    client: &ProviderClient,
    _object_type: &str,
    cursor: Option<&Cursor>,
    options: &ReadOptions,
) -> Result<Page, ProviderError> {
    let state: State = Cursor::state(cursor, ProviderKind::Gmail)?;
    match state {
        State::Start => start_backfill(client, options, false).await,
        State::Backfill {
            history_id,
            page_token,
            resync,
        } => backfill(client, options, history_id, page_token, resync).await,
        State::History {
            history_id,
            page_token,
        } => history(client, options, history_id, page_token).await,
    }
}

/// `maxResults` for lists and history: the caller's page size within Gmail's maximum.
fn page_size(options: &ReadOptions) -> String {
    options
        .page_size
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE)
        .to_string()
}

/// A history id as Gmail sends it (a decimal string; a number is accepted too).
fn history_id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Records the mailbox's current history id, then reads the backfill's first page.
async fn start_backfill(
    client: &ProviderClient,
    options: &ReadOptions,
    resync: bool,
) -> Result<Page, ProviderError> {
    let what = format!("GET {USER_PATH}/profile");
    let profile: Profile = client
        .call(
            client.request(Method::GET, &format!("{USER_PATH}/profile")),
            &what,
        )
        .await?;
    let history_id = history_id_text(profile.history_id.as_ref())
        .ok_or_else(|| client.missing(&what, "historyId"))?;
    backfill(client, options, history_id, None, resync).await
}

/// One page of the mailbox listing, each message fetched.
async fn backfill(
    client: &ProviderClient,
    options: &ReadOptions,
    history_id: String,
    page_token: Option<String>,
    resync: bool,
) -> Result<Page, ProviderError> {
    let mut query = vec![("maxResults", page_size(options))];
    let first_page = page_token.is_none();
    if let Some(page_token) = page_token {
        query.push(("pageToken", page_token));
    }
    let list: MessageList = client
        .call(
            client
                .request(Method::GET, &format!("{USER_PATH}/messages"))
                .query(&query),
            &format!("GET {USER_PATH}/messages"),
        )
        .await?;
    let ids = list
        .messages
        .into_iter()
        .map(|message| message.id)
        .collect();
    let records = fetch_messages(client, ids, &headers(options)).await?;
    // After the listing, history from the id recorded before it began catches up with whatever
    // changed meanwhile: the backfill is not the end of the sync.
    let state = match list.next_page_token {
        Some(page_token) => State::Backfill {
            history_id,
            page_token: Some(page_token),
            resync,
        },
        None => State::History {
            history_id,
            page_token: None,
        },
    };
    Ok(Page {
        records,
        cursor: Cursor::encode(&state),
        has_more: true,
        restarted: resync && first_page,
    })
}

/// What a history read decided for one message.
enum Change {
    /// Added or relabelled: fetch it.
    Fetch,
    /// Deleted for good (history's `messagesDeleted`).
    Delete(Option<String>),
}

/// One page of changes since `history_id`; a 404 (the id is too old) restarts the backfill.
async fn history(
    client: &ProviderClient,
    options: &ReadOptions,
    history_id: String,
    page_token: Option<String>,
) -> Result<Page, ProviderError> {
    let mut query = vec![
        ("startHistoryId", history_id.clone()),
        ("maxResults", page_size(options)),
    ];
    for history_type in [
        "messageAdded",
        "messageDeleted",
        "labelAdded",
        "labelRemoved",
    ] {
        query.push(("historyTypes", history_type.to_owned()));
    }
    if let Some(page_token) = page_token {
        query.push(("pageToken", page_token));
    }
    let what = format!("GET {USER_PATH}/history");
    let outcome: Result<HistoryList, ProviderError> = client
        .call(
            client
                .request(Method::GET, &format!("{USER_PATH}/history"))
                .query(&query),
            &what,
        )
        .await;
    let list = match outcome {
        Ok(list) => list,
        Err(ProviderError::NotFound { .. }) => return start_backfill(client, options, true).await,
        Err(error) => return Err(error),
    };

    // Each message once, in the order history first names it; a delete is final (Gmail never
    // reuses a message id), so a message added and deleted within the page is just deleted.
    let mut order: Vec<String> = Vec::new();
    let mut changes: HashMap<String, Change> = HashMap::new();
    for entry in list.history {
        let fetches = entry
            .messages_added
            .into_iter()
            .chain(entry.labels_added)
            .chain(entry.labels_removed);
        for change in fetches {
            if let Entry::Vacant(slot) = changes.entry(change.message.id) {
                order.push(slot.key().clone());
                slot.insert(Change::Fetch);
            }
        }
        for change in entry.messages_deleted {
            let id = change.message.id;
            if !changes.contains_key(&id) {
                order.push(id.clone());
            }
            changes.insert(id, Change::Delete(change.message.thread_id));
        }
    }
    let to_fetch: Vec<String> = order
        .iter()
        .filter(|id| matches!(changes.get(*id), Some(Change::Fetch)))
        .cloned()
        .collect();
    let mut fetched: HashMap<String, Record> = fetch_messages(client, to_fetch, &headers(options))
        .await?
        .into_iter()
        .map(|record| (record.external_id.clone(), record))
        .collect();
    let mut records = Vec::with_capacity(order.len());
    for id in order {
        match changes.remove(&id) {
            Some(Change::Delete(thread_id)) => records.push(deleted_record(id, thread_id)),
            Some(Change::Fetch) => records.extend(fetched.remove(&id)),
            None => {}
        }
    }

    let (state, has_more) = match list.next_page_token {
        Some(page_token) => (
            State::History {
                history_id,
                page_token: Some(page_token),
            },
            true,
        ),
        None => {
            // The response's history id is the mailbox's current one: the next sync starts there.
            let newest = history_id_text(list.history_id.as_ref())
                .ok_or_else(|| client.missing(&what, "historyId"))?;
            (
                State::History {
                    history_id: newest,
                    page_token: None,
                },
                false,
            )
        }
    };
    Ok(Page {
        records,
        cursor: Cursor::encode(&state),
        has_more,
        restarted: false,
    })
}

/// The headers to ask for: the defaults, then the caller's extra fields as header names.
fn headers(options: &ReadOptions) -> Vec<String> {
    let mut headers: Vec<String> = DEFAULT_HEADERS
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    for extra in &options.extra_fields {
        if !headers
            .iter()
            .any(|header| header.eq_ignore_ascii_case(extra))
        {
            headers.push(extra.clone());
        }
    }
    headers
}

/// Fetches each message's metadata, a few at a time, keeping the order of `ids`.
async fn fetch_messages(
    client: &ProviderClient,
    ids: Vec<String>,
    headers: &[String],
) -> Result<Vec<Record>, ProviderError> {
    let client = Arc::new(client.clone());
    let headers: Arc<[String]> = headers.into();
    let mut records: Vec<Option<Record>> = vec![None; ids.len()];
    let mut pending = ids.into_iter().enumerate();
    let mut tasks = JoinSet::new();
    loop {
        while tasks.len() < MAX_CONCURRENT_FETCHES {
            let Some((index, id)) = pending.next() else {
                break;
            };
            let client = Arc::clone(&client);
            let headers = Arc::clone(&headers);
            tasks.spawn(async move { (index, fetch_message(&client, &id, &headers).await) });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (index, record) = match joined {
            Ok(done) => done,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => {
                return Err(ProviderError::Unavailable {
                    provider: ProviderKind::Gmail,
                    detail: "a message fetch was cancelled".to_owned(),
                });
            }
        };
        // Dropping `tasks` on an error aborts the fetches still running.
        if let Some(slot) = records.get_mut(index) {
            *slot = Some(record?);
        }
    }
    Ok(records.into_iter().flatten().collect())
}

/// One message's metadata; a message gone since it was listed is a delete.
async fn fetch_message(
    client: &ProviderClient,
    id: &str,
    headers: &[String],
) -> Result<Record, ProviderError> {
    let what = format!("GET {USER_PATH}/messages/{{id}}");
    // Message ids are hexadecimal; anything else must not become part of a request path.
    if id.is_empty() || !id.chars().all(|char| char.is_ascii_alphanumeric()) {
        return Err(ProviderError::Decode {
            provider: ProviderKind::Gmail,
            what,
            reason: "a message id that is not alphanumeric".to_owned(),
        });
    }
    let query = [("format", "full")];
    let outcome: Result<Map<String, Value>, ProviderError> = client
        .call(
            client
                .request(Method::GET, &format!("{USER_PATH}/messages/{id}"))
                .query(&query),
            &what,
        )
        .await;
    match outcome {
        Ok(message) => message_record(client, &what, &message, headers),
        Err(ProviderError::NotFound { .. }) => Ok(deleted_record(id.to_owned(), None)),
        Err(error) => Err(error),
    }
}

/// A fetched message as a record: its list fields and the asked-for headers.
fn message_record(
    client: &ProviderClient,
    what: &str,
    message: &Map<String, Value>,
    headers: &[String],
) -> Result<Record, ProviderError> {
    let id = message
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| client.missing(what, "id"))?
        .to_owned();
    let mut fields = Map::new();
    for name in MESSAGE_FIELDS {
        if let Some(value) = message.get(name) {
            fields.insert(name.to_owned(), value.clone());
        }
    }
    let sent: &[Value] = message
        .get("payload")
        .and_then(|payload| payload.get("headers"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    for header in headers {
        // Header names are case-insensitive; a header sent more than once keeps every value.
        let values: Vec<&str> = sent
            .iter()
            .filter(|sent| {
                sent.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|name| name.eq_ignore_ascii_case(header))
            })
            .filter_map(|sent| sent.get("value").and_then(Value::as_str))
            .collect();
        if !values.is_empty() {
            fields.insert(header.clone(), Value::String(values.join(", ")));
        }
    }
    if let Some(payload) = message.get("payload") {
        let mut content = Content::default();
        content.walk(payload, what)?;
        content.into_fields(&mut fields);
    }
    let updated_at = message.get("internalDate").and_then(parse_time);
    Ok(Record {
        source_url: Some(format!("https://mail.google.com/mail/u/0/#all/{id}")),
        external_id: id,
        object_type: "messages".to_owned(),
        updated_at,
        deleted: false,
        fields,
    })
}

/// What a message's MIME tree holds: its first plain and HTML text parts, and its attachments.
#[derive(Debug, Default)]
struct Content {
    plain: Option<(Vec<u8>, String)>,
    html: Option<(Vec<u8>, String)>,
    attachments: Vec<Value>,
}

impl Content {
    /// Visits `part` and its children (depth first, in order).
    fn walk(&mut self, part: &Value, what: &str) -> Result<(), ProviderError> {
        let mime = part
            .get("mimeType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let filename = part
            .get("filename")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let body = part.get("body");
        if !filename.is_empty() || body.and_then(|body| body.get("attachmentId")).is_some() {
            self.attachments.push(serde_json::json!({
                "filename": filename,
                "mime_type": mime,
                "size": body.and_then(|body| body.get("size")).cloned().unwrap_or(Value::Null),
            }));
            return Ok(());
        }
        let data = body
            .and_then(|body| body.get("data"))
            .and_then(Value::as_str);
        if let Some(data) = data {
            let slot = match mime.as_str() {
                "text/plain" => &mut self.plain,
                "text/html" => &mut self.html,
                _ => &mut None,
            };
            if slot.is_none() {
                let bytes = decode_base64url(data).ok_or_else(|| ProviderError::Decode {
                    provider: ProviderKind::Gmail,
                    what: what.to_owned(),
                    reason: format!("a `{mime}` part's data is not base64url"),
                })?;
                *slot = Some((bytes, charset(part)));
            }
        }
        for child in part
            .get("parts")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
        {
            self.walk(child, what)?;
        }
        Ok(())
    }

    /// `body` (capped, with `body_truncated`), `body_charset` when it could not be decoded
    /// exactly, and `attachments`.
    fn into_fields(self, fields: &mut Map<String, Value>) {
        let text = match (self.plain, self.html) {
            (Some((bytes, charset)), _) => Some((decode_text(&bytes, &charset), charset)),
            (None, Some((bytes, charset))) => {
                let (html, lossy) = decode_text(&bytes, &charset);
                Some(((html_to_text(&html), lossy), charset))
            }
            (None, None) => None,
        };
        if let Some(((text, lossy), charset)) = text {
            let (text, truncated) = cap(text, MAX_BODY_BYTES);
            fields.insert("body".to_owned(), Value::String(text));
            if truncated {
                fields.insert("body_truncated".to_owned(), Value::Bool(true));
            }
            if lossy {
                fields.insert("body_charset".to_owned(), Value::String(charset));
            }
        }
        if !self.attachments.is_empty() {
            fields.insert("attachments".to_owned(), Value::Array(self.attachments));
        }
    }
}

/// base64url as Gmail sends it, with or without padding.
fn decode_base64url(data: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let trimmed = data.trim().trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .ok()
}

/// The `charset` of a part's `Content-Type` header (`utf-8` when it names none).
fn charset(part: &Value) -> String {
    part.get("headers")
        .and_then(Value::as_array)
        .and_then(|headers| {
            headers.iter().find(|header| {
                header
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|name| name.eq_ignore_ascii_case("content-type"))
            })
        })
        .and_then(|header| header.get("value").and_then(Value::as_str))
        .and_then(|value| {
            value.split(';').skip(1).find_map(|parameter| {
                let (name, value) = parameter.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("charset")
                    .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
            })
        })
        .unwrap_or_else(|| "utf-8".to_owned())
}

fn known_charset(charset: &str) -> bool {
    matches!(
        charset,
        "utf-8" | "utf8" | "us-ascii" | "ascii" | "iso-8859-1" | "latin1" | "windows-1252"
    )
}

/// Text from bytes in `charset`; true when it had to be decoded lossily.
fn decode_text(bytes: &[u8], charset: &str) -> (String, bool) {
    match charset {
        // Latin-1 maps each byte to the code point of the same value (windows-1252 differs only
        // in 0x80–0x9F, control codes in Latin-1).
        "iso-8859-1" | "latin1" | "windows-1252" => {
            (bytes.iter().map(|byte| char::from(*byte)).collect(), false)
        }
        _ => match String::from_utf8(bytes.to_vec()) {
            Ok(text) => (text, !known_charset(charset)),
            Err(_) => (String::from_utf8_lossy(bytes).into_owned(), true),
        },
    }
}

/// Readable text from HTML: no tags, no `<script>`/`<style>`/`<head>` content, block ends as line
/// breaks, the common entities decoded, runs of blank lines collapsed.
pub(super) fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else {
            rest = "";
            break;
        };
        let tag = after[..end].trim().to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|char| char.is_ascii_alphanumeric())
            .collect();
        rest = &after[end + 1..];
        if !tag.starts_with('/') && matches!(name.as_str(), "script" | "style" | "head") {
            let close = format!("</{name}");
            rest = rest
                .to_ascii_lowercase()
                .find(&close)
                .and_then(|at| rest[at..].find('>').map(|gt| &rest[at + gt + 1..]))
                .unwrap_or("");
            continue;
        }
        if matches!(
            name.as_str(),
            "br" | "p" | "div" | "tr" | "li" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "table"
        ) {
            out.push('\n');
        }
    }
    out.push_str(rest);
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let mut text = String::with_capacity(decoded.len());
    let mut blank_run = 0;
    for line in decoded.lines().map(str::trim_end) {
        if line.trim().is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        text.push_str(line.trim_start());
        text.push('\n');
    }
    text.trim().to_owned()
}

/// `text` cut to at most `limit` bytes at a character boundary; true when it was cut.
pub(super) fn cap(mut text: String, limit: usize) -> (String, bool) {
    if text.len() <= limit {
        return (text, false);
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    (text, true)
}

/// A delete: Gmail gives nothing more than the ids once a message is gone.
fn deleted_record(id: String, thread_id: Option<String>) -> Record {
    let mut fields = Map::new();
    if let Some(thread_id) = thread_id {
        fields.insert("threadId".to_owned(), Value::String(thread_id));
    }
    Record {
        external_id: id,
        object_type: "messages".to_owned(),
        updated_at: None,
        deleted: true,
        fields,
        source_url: None,
    }
}
