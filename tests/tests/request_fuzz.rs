//! Property test over GraphQL request bodies, untrusted input as it comes: documents assembled
//! from GraphQL's own tokens and the API's names (fragments, spreads, aliases, arguments, deep
//! nesting), arbitrary bytes, and odd parameter types. Each body, with a token or without, gets
//! an answer within its time budget that is not a 5xx and is JSON.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Request, header};
use proptest::prelude::*;
use providers::secrecy::SecretString;
use server::graphql::auth::{Claims, Verifier, sign};
use server::graphql::{ApiOptions, EngineHandle, GraphqlState, router};
use tests::fixtures::Tenant;
use tests::{Backend, TestDb};
use tower::ServiceExt as _;

const SECRET: &str = "request-fuzz-test-secret-of-32-bytes-ok";

/// The most one request may take, parse, checks and execution included.
const BUDGET: Duration = Duration::from_secs(5);

const WORDS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    "...",
    "query",
    "mutation",
    "subscription",
    "fragment",
    "on",
    "Query",
    "Mutation",
    "F",
    "G",
    "viewer",
    "id",
    "email",
    "workspaces",
    "entities",
    "edges",
    "node",
    "nodeId",
    "attributes",
    "key",
    "value",
    "connections",
    "integrations",
    "__typename",
    "__schema",
    "types",
    "name",
    "fields",
    "ofType",
    "__type",
    "first:",
    "100",
    "after:",
    "\"x\"",
    "workspaceId:",
    "\"00000000-0000-4000-8000-000000000002\"",
    "a:",
    "b:",
    "$v",
    "$v:",
    "String",
    "!",
    "@include(if: true)",
    "@skip(if: false)",
    "createWorkspace",
    "name:",
    "\"\\u0000\"",
    "#",
    "\n",
    "disconnect",
    "connectionId:",
    "node(id: \"x\")",
];

fn document() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(WORDS), 0..120)
            .prop_map(|words| words.join(" ")),
        (1usize..40).prop_map(|levels| {
            let mut text = String::from("query{...F0}");
            for level in 0..levels {
                text.push_str(&format!(
                    " fragment F{level} on Query{{...F{} ...F{}}}",
                    level + 1,
                    level + 1
                ));
            }
            text.push_str(&format!(" fragment F{levels} on Query{{__typename}}"));
            text
        }),
        (1usize..200).prop_map(|depth| format!(
            "{}{}",
            "{ __type(name: \"Query\") ".repeat(depth),
            "}".repeat(depth)
        )),
        ".{0,300}",
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (document(), prop::option::of(any::<u8>())).prop_map(|(query, variables)| {
            let variables = match variables {
                None => serde_json::Value::Null,
                Some(n) if n % 3 == 0 => serde_json::json!("not an object"),
                Some(n) => serde_json::json!({"v": "x".repeat(usize::from(n))}),
            };
            serde_json::json!({"query": query, "variables": variables}).to_string().into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..400),
        1 => Just(br#"{"query": {"nested": true}, "operationName": 7}"#.to_vec()),
        1 => Just(br#"[{"query": "{ __typename }"}]"#.to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn any_request_body_gets_a_json_answer_that_is_not_a_5xx(bodies in prop::collection::vec((body(), any::<bool>()), 1..4)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        runtime.block_on(async move {
            let test_db = TestDb::migrated(Backend::Sqlite).await.map_err(|error| TestCaseError::fail(error.to_string()))?;
            let tenant = Tenant::create(&test_db, "OWNER", "hubspot").await.map_err(|error| TestCaseError::fail(error.to_string()))?;
            let keyring = providers::Keyring::parse(&SecretString::from("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")).map_err(|error| TestCaseError::fail(error.to_string()))?;
            let app = router(GraphqlState::new(
                test_db.db.clone(),
                Arc::new(Verifier::hs256(SecretString::from(SECRET))),
                EngineHandle { keyring: Arc::new(keyring), factory: None },
                integrations::ProgressFeed::default(),
                ApiOptions::default(),
            ));
            let exp = u64::try_from(chrono::Utc::now().timestamp() + 600).unwrap_or_default();
            let token = sign(&Claims { sub: tenant.user_id.to_string(), email: None, exp }, &SecretString::from(SECRET))
                .map_err(|error| TestCaseError::fail(error.to_string()))?;
            for (bytes, signed_in) in bodies {
                let mut request = Request::post("/graphql").header(header::CONTENT_TYPE, "application/json");
                if signed_in {
                    request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
                }
                let request = request.body(Body::from(bytes.clone())).map_err(|error| TestCaseError::fail(error.to_string()))?;
                let answered = tokio::time::timeout(BUDGET, app.clone().oneshot(request)).await;
                let response = match answered {
                    Ok(Ok(response)) => response,
                    Ok(Err(never)) => match never {},
                    Err(_) => return Err(TestCaseError::fail(format!("no answer within {BUDGET:?} for {}", String::from_utf8_lossy(&bytes)))),
                };
                let status = response.status();
                let body = to_bytes(response.into_body(), 32 << 20).await.map_err(|error| TestCaseError::fail(error.to_string()))?;
                prop_assert!(!status.is_server_error(), "{status} for {}: {}", String::from_utf8_lossy(&bytes), String::from_utf8_lossy(&body));
                prop_assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok(), "not JSON: {}", String::from_utf8_lossy(&body));
            }
            Ok(())
        })?;
    }
}
