//! CORS for browser apps on other origins: the origins of `CORS_ALLOWED_ORIGINS`, plus, in
//! development only, any `http://localhost:*` or `http://127.0.0.1:*`. Preflights get the methods
//! and headers the API uses; a disallowed origin gets no `Access-Control-Allow-Origin`. Bearer
//! tokens travel in a header, so credentials (cookies) are never allowed.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header, request::Parts};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{AppEnv, Settings};

/// How long a browser may cache a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The CORS layer for `settings`.
pub fn layer(settings: &Settings) -> CorsLayer {
    let allowed: Vec<HeaderValue> = settings
        .cors_allowed_origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    let development = settings.app_env == AppEnv::Development;
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(
            move |origin: &HeaderValue, _: &Parts| {
                allowed.contains(origin) || (development && is_loopback_http(origin))
            },
        ))
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("apollo-require-preflight"),
        ])
        .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
        .max_age(PREFLIGHT_MAX_AGE)
        .vary([
            header::ORIGIN,
            header::ACCESS_CONTROL_REQUEST_METHOD,
            header::ACCESS_CONTROL_REQUEST_HEADERS,
        ])
}

/// `http://localhost[:port]` or `http://127.0.0.1[:port]`.
fn is_loopback_http(origin: &HeaderValue) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    ["http://localhost", "http://127.0.0.1"]
        .iter()
        .any(|prefix| {
            origin.strip_prefix(prefix).is_some_and(|rest| {
                rest.is_empty()
                    || rest.strip_prefix(':').is_some_and(|port| {
                        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                    })
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_loopback_http_origins_count_as_development_origins() {
        let yes = [
            "http://localhost",
            "http://localhost:5173",
            "http://127.0.0.1:8080",
        ];
        let no = [
            "https://localhost:5173",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example:80",
            "http://localhost:",
            "http://localhost:80/x",
            "null",
        ];
        for origin in yes {
            assert!(
                is_loopback_http(&HeaderValue::from_static(origin)),
                "{origin}"
            );
        }
        for origin in no {
            assert!(
                !is_loopback_http(&HeaderValue::from_static(origin)),
                "{origin}"
            );
        }
    }
}
