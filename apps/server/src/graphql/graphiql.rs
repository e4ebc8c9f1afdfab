//! GraphiQL, served by the server itself: a pinned build (`apps/server/assets/graphiql/`, with its
//! licences in `LICENSES.md`) embedded in the binary, so it works with no network beyond the
//! server. Only mounted when `GRAPHIQL` is on.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};

use super::GraphqlState;
use super::http::Refusal;

/// The page, for `GET /graphql` from a browser.
const INDEX_HTML: &str = include_str!("../../assets/graphiql/index.html");

/// The assets the page loads from `/graphql/assets/{name}`.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    ),
];

/// GraphiQL's page.
pub(super) fn page() -> Response {
    let mut response = (StatusCode::OK, INDEX_HTML).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /graphql/assets/{name}`: one of GraphiQL's assets (immutable for a build), or a JSON 404.
pub(super) async fn asset(State(state): State<GraphqlState>, Path(name): Path<String>) -> Response {
    let found = ASSETS.iter().find(|(candidate, _, _)| *candidate == name);
    match found {
        Some((_, content_type, bytes)) if state.options.graphiql => {
            let mut response = (StatusCode::OK, *bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            );
            response
        }
        _ => Refusal::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such asset").into_response(),
    }
}
