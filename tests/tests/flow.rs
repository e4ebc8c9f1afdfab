//! The whole product path through a real server on port 0, with its background workers, against a
//! mocked HubSpot: `createWorkspace` → `startConnection` → the provider's authorize step →
//! `/oauth/callback` → `completeConnection` → `validateConnection` → `triggerSync` → entities with
//! provenance → `updateEntityAttribute` → sync (override kept, progress streamed over the
//! WebSocket) → `clearAttributeOverride` → sync (the provider wins). Another workspace's member
//! sees none of it. Runs on PostgreSQL and on the embedded SQLite default.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use providers::SystemClock;
use providers::secrecy::SecretString;
use serde_json::{Value, json};
use server::graphql::auth::{Claims, sign};
use server::{AppState, Background, Settings};
use tests::{Backend, TestDb};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const JWT_SECRET: &str = "flow-jwt-secret-with-enough-length-0123456789";
const TEST_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const APP_URL: &str = "https://app.example.com/integrations";
/// How long any awaited condition may take (jobs are polled every second).
const DEADLINE: Duration = Duration::from_secs(60);

/// HubSpot's authorize page, played by the mock: it "approves" and sends the browser back to the
/// `redirect_uri` with a code and the `state` it was given.
struct Authorize;

impl Respond for Authorize {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let query = |key: &str| {
            request
                .url
                .query_pairs()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.into_owned())
        };
        match (query("redirect_uri"), query("state")) {
            (Some(redirect_uri), Some(state)) => {
                let mut location = url::Url::parse(&redirect_uri).unwrap_or_else(|error| {
                    panic!("the redirect_uri {redirect_uri} is not a URL: {error}")
                });
                location
                    .query_pairs_mut()
                    .append_pair("code", "good-code")
                    .append_pair("state", &state);
                ResponseTemplate::new(302).insert_header("location", location.as_str())
            }
            _ => ResponseTemplate::new(400),
        }
    }
}

/// HubSpot's contact search, answering with the contacts the test holds (the watermark filter is
/// ignored: boundary records come back again, as they do at HubSpot).
#[derive(Clone, Default)]
struct Contacts(Arc<Mutex<Vec<Value>>>);

impl Contacts {
    fn set(&self, contacts: Vec<Value>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = contacts;
    }
}

impl Respond for Contacts {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let results = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        ResponseTemplate::new(200)
            .set_body_json(json!({"total": results.len(), "results": results}))
    }
}

fn contact(id: &str, email: &str, first_name: &str, modified: &str) -> Value {
    json!({
        "id": id,
        "properties": {"email": email, "firstname": first_name, "lastname": "Example",
                       "lastmodifieddate": modified, "hs_object_id": id},
        "createdAt": "2026-10-01T09:00:00.000Z", "updatedAt": modified, "archived": false
    })
}

async fn mock_hubspot() -> (MockServer, Contacts) {
    let server = MockServer::start().await;
    let contacts = Contacts::default();
    Mock::given(method("GET"))
        .and(path("/oauth/authorize"))
        .respond_with(Authorize)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/v3/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "bearer", "access_token": "hubspot-access",
            "refresh_token": "hubspot-refresh", "expires_in": 1800, "hub_id": 62515
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/account-info/v3/details"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "portalId": 62515, "accountType": "STANDARD", "timeZone": "US/Eastern",
            "companyCurrency": "USD", "uiDomain": "app.hubspot.com", "dataHostingLocation": "na1"
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(contacts.clone())
        .with_priority(1)
        .mount(&server)
        .await;
    // Every other object is empty, live and archived.
    Mock::given(method("POST"))
        .and(path_regex(r"^/crm/v3/objects/[a-z_]+/search$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total": 0, "results": []})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/crm/v3/objects/[a-z_]+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
        .mount(&server)
        .await;
    (server, contacts)
}

/// The server on port 0 with its workers, and an HTTP client that does not follow redirects.
struct Platform {
    _test_db: TestDb,
    base: String,
    http: reqwest::Client,
    background: Background,
    progress: integrations::ProgressFeed,
}

impl Platform {
    async fn start(backend: Backend, provider: &MockServer) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let test_db = TestDb::migrated(backend).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let values: Vec<(&str, String)> = vec![
            ("DATABASE_URL", test_db.url.clone()),
            ("AUTH_JWT_SECRET", JWT_SECRET.to_owned()),
            ("TOKEN_ENCRYPTION_KEYS", TEST_KEYS.to_owned()),
            ("PUBLIC_BASE_URL", base.clone()),
            ("APP_URL", APP_URL.to_owned()),
            ("HUBSPOT_CLIENT_ID", "hubspot-client".to_owned()),
            ("HUBSPOT_CLIENT_SECRET", "hubspot-client-secret".to_owned()),
            ("HUBSPOT_AUTH_BASE_URL", provider.uri()),
            ("HUBSPOT_API_BASE_URL", provider.uri()),
        ];
        let settings = Settings::from_lookup(move |name| {
            values
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
        })?;
        let state = AppState::new(test_db.db.clone(), settings, Arc::new(SystemClock))?;
        let background = server::spawn_background(&state)?;
        let progress = state.progress.clone();
        let app = server::router(state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            _test_db: test_db,
            base,
            http,
            background,
            progress,
        })
    }

    async fn graphql(&self, token: &str, query: &str, variables: Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}/graphql", self.base))
            .bearer_auth(token)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await?;
        Ok(response.json().await?)
    }

    /// `data` of a query that must succeed.
    async fn data(&self, token: &str, query: &str, variables: Value) -> anyhow::Result<Value> {
        let response = self.graphql(token, query, variables).await?;
        anyhow::ensure!(
            response.get("errors").is_none(),
            "{query} failed: {response}"
        );
        Ok(response["data"].clone())
    }

    /// Polls `query` until `done` holds of its data, for at most [`DEADLINE`].
    async fn until(
        &self,
        token: &str,
        query: &str,
        variables: Value,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let started = std::time::Instant::now();
        loop {
            let data = self.data(token, query, variables.clone()).await?;
            if done(&data) {
                return Ok(data);
            }
            anyhow::ensure!(
                started.elapsed() < DEADLINE,
                "timed out waiting for {what}: {data}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn token(user_id: uuid::Uuid, email: &str) -> anyhow::Result<String> {
    let exp = u64::try_from(chrono::Utc::now().timestamp() + 3_600)?;
    Ok(sign(
        &Claims {
            sub: user_id.to_string(),
            email: Some(email.to_owned()),
            exp,
        },
        &SecretString::from(JWT_SECRET),
    )?)
}

const CONNECTION: &str = "query($id: UUID!) { connection(id: $id) {
    status connectionStatus healthStatus accountInfo lastConnectionValidation
    syncStates { objectType status hasCursor lastSyncCreated lastSyncUpdated lastSyncConflicts lastSyncCompletedAt }
    healthLogs(last: 5) { status responseTimeMs }
} }";

const ENTITIES: &str = "query($w: UUID!) { entities(workspaceId: $w, first: 50, filter: {sourceIntegration: \"hubspot\"}) {
    edges { node { id source { externalId syncVersion integration { slug } }
        attributes { key value provenance { sourceType externalField overriddenByUser integration { slug } } } } }
} }";

fn contacts_state(data: &Value) -> Option<&Value> {
    data["connection"]["syncStates"]
        .as_array()?
        .iter()
        .find(|state| state["objectType"] == "contacts")
}

/// The contacts sync's completion time once it has finished after `previous`.
fn finished_after(data: &Value, previous: &Value) -> bool {
    contacts_state(data).is_some_and(|state| {
        state["status"] == "IDLE"
            && !state["lastSyncCompletedAt"].is_null()
            && state["lastSyncCompletedAt"] != *previous
    })
}

fn attribute<'a>(entities: &'a Value, external_id: &str, key: &str) -> Option<&'a Value> {
    entities["entities"]["edges"]
        .as_array()?
        .iter()
        .map(|edge| &edge["node"])
        .find(|node| node["source"]["externalId"] == external_id)?["attributes"]
        .as_array()?
        .iter()
        .find(|attribute| attribute["key"] == key)
}

/// Opens `/graphql/ws` (`graphql-transport-ws`), initialises it with `authorization` and
/// subscribes to `query` with `variables` as operation `1`.
async fn subscribe(
    base: &str,
    authorization: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let mut request =
        format!("{}/graphql/ws", base.replacen("http", "ws", 1)).into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let init = json!({"type": "connection_init", "payload": {"Authorization": authorization}});
    socket.send(Message::text(init.to_string())).await?;
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}});
    socket.send(Message::text(subscribe.to_string())).await?;
    Ok(socket)
}

/// Subscribes to `syncProgress` over `graphql-transport-ws` and returns the events of the next
/// run, up to its final one.
async fn watch_progress(
    base: &str,
    token: &str,
    connection_id: &str,
) -> anyhow::Result<Vec<Value>> {
    let mut socket = subscribe(
        base,
        &format!("Bearer {token}"),
        "subscription($id: UUID!) { syncProgress(connectionId: $id) { objectType pages created updated conflicts status done } }",
        json!({"id": connection_id}),
    )
    .await?;
    let mut events = Vec::new();
    while let Some(message) = socket.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        let message: Value = serde_json::from_str(&text)?;
        match message["type"].as_str() {
            Some("next") => {
                let event = message["payload"]["data"]["syncProgress"].clone();
                anyhow::ensure!(!event.is_null(), "an error event: {message}");
                let done = event["done"] == true;
                if event["objectType"] == "contacts" {
                    events.push(event);
                    if done {
                        return Ok(events);
                    }
                }
            }
            Some("error") | Some("complete") => anyhow::bail!("the subscription ended: {message}"),
            _ => {}
        }
    }
    anyhow::bail!("the socket closed after {events:?}")
}

/// Subscribes to `entityChanges` of the workspace's people and returns events until one from a
/// sync created an entity and one from a user updated one.
async fn watch_changes(base: &str, token: &str, workspace_id: &str) -> anyhow::Result<Vec<Value>> {
    let mut socket = subscribe(
        base,
        &format!("Bearer {token}"),
        "subscription($w: UUID!) { entityChanges(workspaceId: $w, entityType: \"person\") { entityId kind keys syncRunId userId } }",
        json!({"w": workspace_id}),
    )
    .await?;
    let mut events: Vec<Value> = Vec::new();
    while let Some(message) = socket.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        let message: Value = serde_json::from_str(&text)?;
        match message["type"].as_str() {
            Some("next") => {
                let event = message["payload"]["data"]["entityChanges"].clone();
                anyhow::ensure!(!event.is_null(), "an error event: {message}");
                events.push(event);
                let by_sync = events
                    .iter()
                    .any(|event| event["kind"] == "CREATED" && !event["syncRunId"].is_null());
                let by_user = events
                    .iter()
                    .any(|event| event["kind"] == "UPDATED" && !event["userId"].is_null());
                if by_sync && by_user {
                    return Ok(events);
                }
            }
            Some("error") | Some("complete") => anyhow::bail!("the subscription ended: {message}"),
            _ => {}
        }
    }
    anyhow::bail!("the socket closed after {events:?}")
}

/// The first `next` or `error` message of an `entityChanges` subscription.
async fn entity_changes_answer(
    base: &str,
    token: &str,
    workspace: &Value,
    entity_type: &str,
) -> anyhow::Result<String> {
    let mut socket = subscribe(
        base,
        &format!("Bearer {token}"),
        "subscription($w: UUID!, $t: String!) { entityChanges(workspaceId: $w, entityType: $t) { entityId } }",
        json!({"w": workspace["w"], "t": entity_type}),
    )
    .await?;
    loop {
        let Some(message) = tokio::time::timeout(DEADLINE, socket.next()).await? else {
            anyhow::bail!("the socket closed without an answer");
        };
        if let Message::Text(text) = message? {
            let message: Value = serde_json::from_str(&text)?;
            if matches!(message["type"].as_str(), Some("next" | "error")) {
                return Ok(message.to_string());
            }
        }
    }
}

/// What the server answers a subscription of `connection_id` with `authorization`: the first
/// `next` or `error` message, or `closed: <code> <reason>` when it closes the socket.
async fn first_answer(
    base: &str,
    authorization: &str,
    connection_id: &str,
) -> anyhow::Result<String> {
    let mut socket = subscribe(
        base,
        authorization,
        "subscription($id: UUID!) { syncProgress(connectionId: $id) { pages } }",
        json!({"id": connection_id}),
    )
    .await?;
    while let Some(message) = tokio::time::timeout(DEADLINE, socket.next()).await? {
        match message? {
            Message::Text(text) => {
                let message: Value = serde_json::from_str(&text)?;
                if matches!(message["type"].as_str(), Some("next" | "error")) {
                    return Ok(message.to_string());
                }
            }
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map(|frame| (u16::from(frame.code), frame.reason.to_string()))
                    .unwrap_or_default();
                return Ok(format!("closed: {code} {reason}"));
            }
            _ => {}
        }
    }
    Ok("closed".to_owned())
}

async fn the_whole_flow(backend: Backend) -> anyhow::Result<()> {
    let (provider, contacts) = mock_hubspot().await;
    contacts.set(vec![
        contact("101", "ada@example.com", "Ada", "2026-11-01T10:00:00.000Z"),
        contact(
            "102",
            "grace@example.com",
            "Grace",
            "2026-11-02T11:30:00.000Z",
        ),
    ]);
    let platform = Platform::start(backend, &provider).await?;
    let owner = token(uuid::Uuid::new_v4(), "owner@example.com")?;

    // A workspace, and a HubSpot connection started in it.
    let data = platform
        .data(
            &owner,
            "mutation { createWorkspace(name: \"Acme\") { id role } }",
            json!({}),
        )
        .await?;
    let workspace_id = data["createWorkspace"]["id"].clone();
    assert_eq!(data["createWorkspace"]["role"], "OWNER");
    let data = platform
        .data(
            &owner,
            "mutation($w: UUID!) { startConnection(workspaceId: $w, integrationSlug: \"hubspot\") { connectionId authorizationUrl } }",
            json!({"w": workspace_id}),
        )
        .await?;
    let connection_id = data["startConnection"]["connectionId"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no connection id: {data}"))?
        .to_owned();
    let authorization_url = data["startConnection"]["authorizationUrl"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no authorization URL: {data}"))?
        .to_owned();
    assert!(
        authorization_url.starts_with(&provider.uri()),
        "{authorization_url}"
    );

    // The browser: the provider's authorize page sends it to our callback, which sends it on to
    // the app.
    let authorize = platform.http.get(&authorization_url).send().await?;
    assert_eq!(authorize.status(), reqwest::StatusCode::FOUND);
    let callback_url = authorize.headers()["location"].to_str()?.to_owned();
    assert!(
        callback_url.starts_with(&format!("{}/oauth/callback?", platform.base)),
        "{callback_url}"
    );
    let callback = platform.http.get(&callback_url).send().await?;
    assert_eq!(callback.status(), reqwest::StatusCode::SEE_OTHER);
    let landing = url::Url::parse(callback.headers()["location"].to_str()?)?;
    assert!(landing.as_str().starts_with(APP_URL), "{landing}");
    let completion = landing
        .query_pairs()
        .find(|(key, _)| key == "complete")
        .map(|(_, value)| value.into_owned())
        .ok_or_else(|| anyhow::anyhow!("no completion code in {landing}"))?;
    // The app completes it under the owner's token (the callback alone connects nothing).
    let completed = platform
        .data(
            &owner,
            "mutation($code: String!) { completeConnection(code: $code) }",
            json!({"code": completion}),
        )
        .await?;
    assert_eq!(
        completed["completeConnection"],
        json!(connection_id.clone()),
        "{completed}"
    );
    // The state was single-use: replaying the callback connects nothing more.
    let replay = platform.http.get(&callback_url).send().await?;
    assert!(
        replay.headers()["location"]
            .to_str()?
            .contains("error=state_expired"),
        "{:?}",
        replay.headers()
    );

    // Validation (queued by the connect, and again on request) lands the account facts.
    let id = json!({"id": connection_id});
    platform
        .data(
            &owner,
            "mutation($id: UUID!) { validateConnection(connectionId: $id) }",
            id.clone(),
        )
        .await?;
    let data = platform
        .until(&owner, CONNECTION, id.clone(), "validation", |data| {
            data["connection"]["connectionStatus"] == "CONNECTED"
                && !data["connection"]["lastConnectionValidation"].is_null()
        })
        .await?;
    assert_eq!(data["connection"]["status"], "ACTIVE");
    assert_eq!(
        data["connection"]["accountInfo"]["external_account_id"], "62515",
        "{data}"
    );

    // The first sync of contacts brings both people in, with per-attribute provenance.
    platform
        .data(
            &owner,
            "mutation($id: UUID!) { triggerSync(connectionId: $id, objectType: \"contacts\") }",
            id.clone(),
        )
        .await?;
    let workspace = json!({"w": workspace_id});
    let entities = platform
        .until(
            &owner,
            ENTITIES,
            workspace.clone(),
            "the first sync",
            |data| {
                data["entities"]["edges"]
                    .as_array()
                    .is_some_and(|edges| edges.len() == 2)
            },
        )
        .await?;
    let email = attribute(&entities, "101", "email")
        .ok_or_else(|| anyhow::anyhow!("no email: {entities}"))?;
    assert_eq!(email["value"], "ada@example.com");
    assert_eq!(email["provenance"]["sourceType"], "INTEGRATION");
    assert_eq!(email["provenance"]["externalField"], "email");
    assert_eq!(email["provenance"]["integration"]["slug"], "hubspot");
    assert_eq!(email["provenance"]["overriddenByUser"], false);
    let data = platform
        .until(
            &owner,
            CONNECTION,
            id.clone(),
            "the first sync's end",
            |data| finished_after(data, &Value::Null),
        )
        .await?;
    let first_done = contacts_state(&data).map(|state| state["lastSyncCompletedAt"].clone());
    let first_done = first_done.unwrap_or(Value::Null);

    // The user pins Ada's email; the provider then changes it.
    let ada = entities["entities"]["edges"]
        .as_array()
        .and_then(|edges| {
            edges
                .iter()
                .find(|edge| edge["node"]["source"]["externalId"] == "101")
        })
        .map(|edge| edge["node"].clone())
        .ok_or_else(|| anyhow::anyhow!("no Ada: {entities}"))?;
    let edited = platform
        .data(
            &owner,
            "mutation($e: UUID!, $v: Int!) { updateEntityAttribute(entityId: $e, key: \"email\", value: \"ada@mine.example\", expectedSyncVersion: $v) { syncVersion } }",
            json!({"e": ada["id"], "v": ada["source"]["syncVersion"]}),
        )
        .await?;
    let version = edited["updateEntityAttribute"]["syncVersion"].clone();
    // Watch the workspace's changes before the provider has anything new (a scheduled sync may
    // read it before the trigger below).
    let change_watcher = tokio::spawn({
        let base = platform.base.clone();
        let owner = owner.clone();
        let workspace_id = workspace["w"].as_str().unwrap_or_default().to_owned();
        async move { watch_changes(&base, &owner, &workspace_id).await }
    });
    let started = std::time::Instant::now();
    while platform.progress.change_watchers() == 0 {
        anyhow::ensure!(
            started.elapsed() < DEADLINE,
            "the change subscription never started"
        );
        anyhow::ensure!(
            !change_watcher.is_finished(),
            "the change watcher ended before subscribing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    contacts.set(vec![
        contact(
            "101",
            "ada@provider.example",
            "Ada",
            "2026-11-06T10:00:00.000Z",
        ),
        contact(
            "102",
            "grace@example.com",
            "Grace",
            "2026-11-02T11:30:00.000Z",
        ),
        contact(
            "103",
            "alan@example.com",
            "Alan",
            "2026-11-06T11:00:00.000Z",
        ),
    ]);

    // The next sync keeps the override, counts the conflict, creates Alan, and streams its
    // progress.
    let watcher = tokio::spawn({
        let base = platform.base.clone();
        let owner = owner.clone();
        let connection_id = connection_id.clone();
        async move { watch_progress(&base, &owner, &connection_id).await }
    });
    let started = std::time::Instant::now();
    // (A scheduled sync may read the changed contacts before the trigger below: the watcher then
    // sees that run end, and is done before this loop sees it subscribed.)
    while platform.progress.watchers() == 0 && !watcher.is_finished() {
        anyhow::ensure!(
            started.elapsed() < DEADLINE,
            "the subscription never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    platform
        .data(
            &owner,
            "mutation($id: UUID!) { triggerSync(connectionId: $id, objectType: \"contacts\") }",
            id.clone(),
        )
        .await?;
    let events = tokio::time::timeout(DEADLINE, watcher).await???;
    let last = events
        .last()
        .ok_or_else(|| anyhow::anyhow!("no progress"))?;
    assert_eq!(last["status"], "IDLE", "{events:?}");
    assert_eq!(last["conflicts"], 1, "{events:?}");
    assert!(
        last["pages"].as_i64().is_some_and(|pages| pages >= 1),
        "{events:?}"
    );
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|event| event["status"] == "SYNCING" && event["done"] == false),
        "{events:?}"
    );
    let data = platform
        .until(
            &owner,
            CONNECTION,
            id.clone(),
            "the second sync's end",
            |data| finished_after(data, &first_done),
        )
        .await?;
    let second_done = contacts_state(&data)
        .map(|state| state["lastSyncCompletedAt"].clone())
        .unwrap_or(Value::Null);
    assert_eq!(
        contacts_state(&data).map(|state| state["lastSyncConflicts"].clone()),
        Some(json!(1))
    );
    let entities = platform.data(&owner, ENTITIES, workspace.clone()).await?;
    let email = attribute(&entities, "101", "email")
        .ok_or_else(|| anyhow::anyhow!("no email: {entities}"))?;
    assert_eq!(email["value"], "ada@mine.example", "the override held");
    assert_eq!(email["provenance"]["sourceType"], "USER_OVERRIDE");
    assert_eq!(email["provenance"]["overriddenByUser"], true);

    // Clearing the override lets the next sync win.
    platform
        .data(
            &owner,
            "mutation($e: UUID!, $v: Int!) { clearAttributeOverride(entityId: $e, key: \"email\", expectedSyncVersion: $v) { syncVersion } }",
            json!({"e": ada["id"], "v": version}),
        )
        .await?;
    // The change feed saw Alan created by the sync, and the clear by the user.
    let changes = tokio::time::timeout(DEADLINE, change_watcher).await???;
    assert!(
        changes.iter().any(|event| event["kind"] == "CREATED"
            && event["keys"]
                .as_array()
                .is_some_and(|keys| keys.contains(&json!("email")))),
        "{changes:?}"
    );
    assert!(
        changes.iter().any(|event| event["kind"] == "UPDATED"
            && event["entityId"] == ada["id"]
            && event["keys"] == json!(["email"])),
        "{changes:?}"
    );
    platform
        .data(
            &owner,
            "mutation($id: UUID!) { triggerSync(connectionId: $id, objectType: \"contacts\") }",
            id.clone(),
        )
        .await?;
    platform
        .until(
            &owner,
            CONNECTION,
            id.clone(),
            "the third sync's end",
            |data| finished_after(data, &second_done),
        )
        .await?;
    let entities = platform.data(&owner, ENTITIES, workspace.clone()).await?;
    let email = attribute(&entities, "101", "email")
        .ok_or_else(|| anyhow::anyhow!("no email: {entities}"))?;
    assert_eq!(
        email["value"], "ada@provider.example",
        "the sync won once cleared"
    );
    assert_eq!(email["provenance"]["sourceType"], "INTEGRATION");
    assert_eq!(email["provenance"]["overriddenByUser"], false);

    // A member of another workspace sees nothing of this one.
    let stranger = token(uuid::Uuid::new_v4(), "stranger@example.com")?;
    platform
        .data(
            &stranger,
            "mutation { createWorkspace(name: \"Other\") { id } }",
            json!({}),
        )
        .await?;
    for (query, variables) in [
        (ENTITIES, workspace.clone()),
        (CONNECTION, id.clone()),
        (
            "query($w: UUID!) { connections(workspaceId: $w) { id } }",
            workspace.clone(),
        ),
    ] {
        let response = platform.graphql(&stranger, query, variables).await?;
        assert_eq!(
            response["errors"][0]["extensions"]["code"], "NOT_FOUND",
            "{response}"
        );
        assert!(response["data"].is_null(), "{response}");
    }
    let entity = platform
        .graphql(
            &stranger,
            "query($e: UUID!) { entity(id: $e) { id } }",
            json!({"e": ada["id"]}),
        )
        .await?;
    assert_eq!(
        entity["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{entity}"
    );

    let answer = first_answer(
        &platform.base,
        &format!("Bearer {stranger}"),
        &connection_id,
    )
    .await?;
    assert!(answer.contains("NOT_FOUND"), "{answer}");
    // Nor may they watch the workspace's entity changes; and nobody an entity type no sync writes.
    for (who, entity_type, expected) in [
        (&stranger, "person", "NOT_FOUND"),
        (&owner, "spaceship", "BAD_USER_INPUT"),
    ] {
        let answer = entity_changes_answer(&platform.base, who, &workspace, entity_type).await?;
        assert!(answer.contains(expected), "{entity_type}: {answer}");
    }
    let answer = first_answer(&platform.base, "Bearer forged.token.here", &connection_id).await?;
    // async-graphql closes a refused `connection_init` with 1002 and the reason.
    assert_eq!(
        answer,
        "closed: 1002 the bearer token is invalid or expired"
    );

    // The syncs this process ran are in its metrics.
    let metrics = platform
        .http
        .get(format!("{}/metrics", platform.base))
        .send()
        .await?
        .text()
        .await?;
    let sample = |name: &str| {
        metrics
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse::<u64>().ok())
    };
    assert!(
        sample("sync_pages_total{object_type=\"contacts\",provider=\"hubspot\"}")
            .is_some_and(|pages| pages >= 3),
        "{metrics}"
    );
    // At least one: the scheduler's catch-up sync of the new connection may also run after the
    // provider changed, and counts the same conflict again (each run's own count is 1, above).
    assert!(
        sample("sync_records_total{outcome=\"conflict\",provider=\"hubspot\"}")
            .is_some_and(|conflicts| conflicts >= 1),
        "{metrics}"
    );
    assert_eq!(
        sample("sync_records_total{outcome=\"created\",provider=\"hubspot\"}"),
        Some(3),
        "{metrics}"
    );

    platform.background.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_on_postgres() -> anyhow::Result<()> {
    the_whole_flow(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_on_the_embedded_sqlite_default() -> anyhow::Result<()> {
    the_whole_flow(Backend::Sqlite).await
}
