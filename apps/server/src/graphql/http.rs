//! GraphQL over HTTP (graphql-over-http): the request's parameters from a `POST` JSON body or a
//! `GET` query string, content negotiation between `application/graphql-response+json` and
//! `application/json`, Apollo's automatic persisted queries, and JSON bodies for every refusal
//! (`{"errors":[{"message","extensions":{"code"}}]}`), never plain text.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::errors::Code;

/// `application/graphql-response+json`.
pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// How many persisted queries are remembered (least recently used first out).
pub const APQ_CAPACITY: usize = 1_000;

/// The media type of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/graphql-response+json`: request errors are 400.
    GraphqlResponse,
    /// `application/json` (also for `*/*` and a missing `Accept`): request errors are 200.
    Json,
}

impl Media {
    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        })
    }
}

/// The media type `accept` asks for, by its q-values (ties keep the client's order); `None` when
/// it accepts neither JSON type.
pub fn negotiate(accept: Option<&str>) -> Option<Media> {
    let Some(accept) = accept.filter(|accept| !accept.trim().is_empty()) else {
        return Some(Media::Json);
    };
    let mut ranges: Vec<(f32, Media)> = accept
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';');
            let media = parts.next()?.trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|param| param.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let media = match media.as_str() {
                GRAPHQL_RESPONSE_JSON => Media::GraphqlResponse,
                "application/json" | "application/*" | "*/*" => Media::Json,
                _ => return None,
            };
            (q > 0.0).then_some((q, media))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranges.first().map(|(_, media)| *media)
}

/// True when `accept` names `text/html` (a browser navigating to the endpoint).
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.to_ascii_lowercase().contains("text/html"))
}

/// A refusal before execution, answered as a GraphQL error body.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The HTTP status (for a request error under `application/json`, 200).
    pub status: StatusCode,
    /// The error code.
    pub code: &'static str,
    /// A message for a human.
    pub message: String,
    /// Headers to add (`Allow`, `Retry-After`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Refusal {
    /// A refusal with `status` and `code`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// Parameters that are not a GraphQL request (a body that is not JSON, a `query` that is
    /// not a string): 400 under either media type.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            Code::BadUserInput.as_str(),
            message,
        )
    }

    /// A document the server refuses before running it: 400 under
    /// `application/graphql-response+json`, 200 under `application/json` (as graphql-over-http
    /// asks).
    pub fn request_error(media: Media, message: impl Into<String>) -> Self {
        let status = match media {
            Media::GraphqlResponse => StatusCode::BAD_REQUEST,
            Media::Json => StatusCode::OK,
        };
        Self::new(status, Code::BadUserInput.as_str(), message)
    }

    /// 405 with `Allow`.
    pub fn method_not_allowed(message: impl Into<String>, allow: &'static str) -> Self {
        let mut refusal = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            message,
        );
        refusal
            .headers
            .push((header::ALLOW, HeaderValue::from_static(allow)));
        refusal
    }

    /// The body a refusal carries.
    pub fn body(&self) -> Value {
        json!({"errors": [{"message": self.message, "extensions": {"code": self.code}}]})
    }

    /// As a response in `media`.
    pub fn into_response_as(self, media: Media) -> Response {
        let mut response = (self.status, self.body().to_string()).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, media.content_type());
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        self.into_response_as(Media::Json)
    }
}

/// A GraphQL request's parameters, before the query text is known when it comes by hash.
#[derive(Debug, Clone, Default)]
pub struct Params {
    /// `query`, absent for a persisted query sent by hash.
    pub query: Option<String>,
    /// `operationName`.
    pub operation_name: Option<String>,
    /// `variables`.
    pub variables: Option<Map<String, Value>>,
    /// `extensions`.
    pub extensions: Option<Map<String, Value>>,
}

impl Params {
    /// The parameters of a JSON body.
    pub fn from_json(body: &[u8]) -> Result<Self, Refusal> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(Refusal::bad_request(
                "the request body is empty: send {\"query\": \"…\"}",
            ));
        }
        let value: Value = serde_json::from_slice(body).map_err(|error| {
            Refusal::bad_request(format!("the request body is not JSON: {error}"))
        })?;
        let Value::Object(object) = value else {
            return Err(Refusal::bad_request(
                "the request body must be a JSON object",
            ));
        };
        Self::from_values(|name| object.get(name).cloned().map(Ok))
    }

    /// The parameters of a query string (`variables` and `extensions` are JSON texts).
    pub fn from_query_string(query: Option<&str>) -> Result<Self, Refusal> {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        Self::from_values(|name| {
            let text = get(name)?;
            Some(match name {
                "variables" | "extensions" => serde_json::from_str(&text)
                    .map_err(|_| Refusal::bad_request(format!("`{name}` is not a JSON object"))),
                _ => Ok(Value::String(text)),
            })
        })
    }

    fn from_values(get: impl Fn(&str) -> Option<Result<Value, Refusal>>) -> Result<Self, Refusal> {
        let string = |name: &str| -> Result<Option<String>, Refusal> {
            match get(name).transpose()? {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) => Ok(Some(text)),
                Some(_) => Err(Refusal::bad_request(format!("`{name}` must be a string"))),
            }
        };
        let object = |name: &str| -> Result<Option<Map<String, Value>>, Refusal> {
            match get(name).transpose()? {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Object(map)) => Ok(Some(map)),
                Some(_) => Err(Refusal::bad_request(format!("`{name}` must be an object"))),
            }
        };
        Ok(Self {
            query: string("query")?,
            operation_name: string("operationName")?,
            variables: object("variables")?,
            extensions: object("extensions")?,
        })
    }

    /// The `sha256Hash` of Apollo's `persistedQuery` extension, when present.
    fn persisted_hash(&self) -> Result<Option<String>, Refusal> {
        let Some(persisted) = self
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get("persistedQuery"))
        else {
            return Ok(None);
        };
        let version = persisted.get("version").and_then(Value::as_u64);
        let hash = persisted.get("sha256Hash").and_then(Value::as_str);
        match (version, hash) {
            (Some(1), Some(hash))
                if hash.len() == 64 && hash.bytes().all(|byte| byte.is_ascii_hexdigit()) =>
            {
                Ok(Some(hash.to_ascii_lowercase()))
            }
            (Some(1), _) => Err(Refusal::bad_request(
                "persistedQuery.sha256Hash must be 64 hexadecimal digits",
            )),
            _ => Err(Refusal::new(
                StatusCode::OK,
                "PERSISTED_QUERY_NOT_SUPPORTED",
                "only persistedQuery version 1 is supported",
            )),
        }
    }
}

/// Apollo's automatic persisted queries: a bounded cache of query texts by their SHA-256.
#[derive(Debug)]
pub struct PersistedQueries(Mutex<lru::LruCache<String, String>>);

impl Default for PersistedQueries {
    fn default() -> Self {
        Self::with_capacity(APQ_CAPACITY)
    }
}

impl PersistedQueries {
    /// A cache of at most `capacity` queries.
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self(Mutex::new(lru::LruCache::new(capacity)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<String, String>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The query text of `params`: its `query`, checked against and registered under its hash
    /// when it has one; or the text registered under the hash it sends alone.
    pub fn resolve(&self, params: &Params) -> Result<String, Refusal> {
        let hash = params.persisted_hash()?;
        match (&params.query, hash) {
            (Some(query), None) => Ok(query.clone()),
            (Some(query), Some(hash)) => {
                if hex::encode(Sha256::digest(query.as_bytes())) != hash {
                    return Err(Refusal::bad_request("provided sha does not match query"));
                }
                self.lock().put(hash, query.clone());
                Ok(query.clone())
            }
            (None, Some(hash)) => self.lock().get(&hash).cloned().ok_or_else(|| {
                Refusal::new(
                    StatusCode::OK,
                    "PERSISTED_QUERY_NOT_FOUND",
                    "PersistedQueryNotFound",
                )
            }),
            (None, None) => Err(Refusal::bad_request(
                "`query` is missing: send {\"query\": \"…\"}",
            )),
        }
    }
}

/// The operation `operation_name` selects in `document` (the only one when unnamed).
pub fn selected_operation<'a>(
    document: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'a async_graphql::parser::types::OperationDefinition> {
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => Some(&operation.node),
        (DocumentOperations::Multiple(operations), Some(name)) => {
            operations.get(name).map(|operation| &operation.node)
        }
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next().map(|operation| &operation.node)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// The selected operation's type, when the document parses and names one.
pub fn operation_type(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<OperationType> {
    selected_operation(document, operation_name).map(|operation| operation.ty)
}

/// True when the selected operation is a query that selects only introspection at its root
/// (`__schema`, `__type`, `__typename`, through fragments too) and asks for `__schema` or `__type`.
pub fn is_introspection(document: &ExecutableDocument, operation_name: Option<&str>) -> bool {
    if operation_type(document, operation_name) != Some(OperationType::Query) {
        return false;
    }
    let names = root_field_names(document, operation_name);
    names
        .iter()
        .all(|name| matches!(name.as_str(), "__schema" | "__type" | "__typename"))
        && names
            .iter()
            .any(|name| matches!(name.as_str(), "__schema" | "__type"))
}

/// The names the selected operation selects at its root (through fragments), at most 256.
pub fn root_field_names(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
) -> Vec<String> {
    fn collect(
        document: &ExecutableDocument,
        set: &SelectionSet,
        names: &mut Vec<String>,
        visited: &mut usize,
    ) {
        *visited += 1;
        if *visited > 64 {
            return;
        }
        for selection in &set.items {
            if names.len() >= 256 {
                return;
            }
            match &selection.node {
                Selection::Field(field) => names.push(field.node.name.node.to_string()),
                Selection::InlineFragment(fragment) => {
                    collect(document, &fragment.node.selection_set.node, names, visited);
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node)
                    {
                        collect(document, &fragment.node.selection_set.node, names, visited);
                    }
                }
            }
        }
    }
    let mut names = Vec::new();
    if let Some(operation) = selected_operation(document, operation_name) {
        collect(document, &operation.selection_set.node, &mut names, &mut 0);
    }
    names
}

/// The HTTP answer of an executed request in `media`: under
/// `application/graphql-response+json`, a request that failed before execution (no data, and no
/// error with a path) is 400 without a `data` entry.
pub fn respond(media: Media, response: &async_graphql::Response) -> Response {
    let request_error = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty());
    let unavailable = response.errors.iter().any(|error| {
        error
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get("code"))
            .is_some_and(|code| *code == async_graphql::Value::from("SERVICE_UNAVAILABLE"))
    });
    let status = if unavailable {
        StatusCode::SERVICE_UNAVAILABLE
    } else if request_error {
        match media {
            Media::GraphqlResponse => StatusCode::BAD_REQUEST,
            Media::Json => StatusCode::OK,
        }
    } else {
        StatusCode::OK
    };
    // The response is written straight to bytes; only a request error, whose body is small, goes
    // through a JSON tree to lose its `data` entry.
    let body = if request_error && !unavailable {
        let mut body = serde_json::to_value(response).unwrap_or_else(|_| json!({}));
        if let Value::Object(map) = &mut body {
            map.remove("data");
        }
        serde_json::to_vec(&body)
    } else {
        serde_json::to_vec(response)
    }
    .unwrap_or_else(|_| b"{}".to_vec());
    let mut http = (status, body).into_response();
    http.headers_mut()
        .insert(header::CONTENT_TYPE, media.content_type());
    if unavailable {
        http.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    http
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_the_accept_header() {
        assert_eq!(negotiate(None), Some(Media::Json));
        assert_eq!(negotiate(Some("*/*")), Some(Media::Json));
        assert_eq!(negotiate(Some("application/json")), Some(Media::Json));
        assert_eq!(
            negotiate(Some(GRAPHQL_RESPONSE_JSON)),
            Some(Media::GraphqlResponse)
        );
        assert_eq!(
            negotiate(Some(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            Some(Media::GraphqlResponse)
        );
        assert_eq!(
            negotiate(Some(
                "application/json;q=1, application/graphql-response+json;q=0.5"
            )),
            Some(Media::Json)
        );
        assert_eq!(negotiate(Some("text/plain")), None);
        assert_eq!(negotiate(Some("application/json;q=0")), None);
    }

    #[test]
    fn introspection_is_recognised_through_fragments_only_at_the_root() -> anyhow::Result<()> {
        let parse = |text: &str| async_graphql::parser::parse_query(text);
        assert!(is_introspection(
            &parse("query I { __schema { types { name } } }")?,
            None
        ));
        assert!(is_introspection(
            &parse("query { ...F } fragment F on Query { __type(name: \"Query\") { name } }")?,
            None
        ));
        assert!(!is_introspection(&parse("{ __typename }")?, None));
        assert!(!is_introspection(
            &parse("{ __schema { types { name } } viewer { id } }")?,
            None
        ));
        assert!(!is_introspection(
            &parse("mutation { __schema { types { name } } }")?,
            None
        ));
        Ok(())
    }

    #[test]
    fn persisted_queries_are_served_by_hash_once_registered() {
        let cache = PersistedQueries::with_capacity(2);
        let query = "{ __typename }".to_owned();
        let hash = hex::encode(Sha256::digest(query.as_bytes()));
        let by_hash = Params {
            extensions: Some(
                json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ),
            ..Params::default()
        };
        let refused = cache.resolve(&by_hash).err().map(|r| r.code);
        assert_eq!(refused, Some("PERSISTED_QUERY_NOT_FOUND"));
        let register = Params {
            query: Some(query.clone()),
            ..by_hash.clone()
        };
        assert_eq!(cache.resolve(&register).ok(), Some(query.clone()));
        assert_eq!(cache.resolve(&by_hash).ok(), Some(query));
        let wrong = Params {
            query: Some("{ viewer { id } }".to_owned()),
            ..by_hash
        };
        assert!(cache.resolve(&wrong).is_err());
    }
}
