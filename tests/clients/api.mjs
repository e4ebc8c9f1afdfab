// Real-client checks of the GraphQL API against a live server.
//
//   SERVER_URL=http://127.0.0.1:8080 TOKEN=… WORKSPACE_ID=… ENTITY_COUNT=7 \
//   ALLOWED_ORIGIN=http://localhost:5173 REFUSED_ORIGIN=http://evil.example node api.mjs
//
// Optional: CONNECTION_ID (a connection of the token's workspace) — only used when the schema's
// `syncProgress` takes a `connectionId`: with it the subscription must be accepted; without it a
// subscription to an unknown connection must be refused with NOT_FOUND.
//
// Every check runs (in order) and prints `ok`/`FAIL`; the run ends with `N passed, N failed`
// and exits 1 when any failed.

import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { relayStylePagination } from '@apollo/client/utilities';
import { buildClientSchema, buildSchema, getIntrospectionQuery } from 'graphql';
import { serverAudits } from 'graphql-http';
import { createClient } from 'graphql-ws';
import { filter, firstValueFrom } from 'rxjs';
import WebSocket from 'ws';

import { assert, env, main, withTimeout } from './lib/check.mjs';
import { mediaType, postGraphql, request, show } from './lib/http.mjs';

const SERVER_URL = env('SERVER_URL').replace(/\/+$/, '');
const TOKEN = env('TOKEN');
const WORKSPACE_ID = env('WORKSPACE_ID');
const ENTITY_COUNT = Number(env('ENTITY_COUNT'));
const ALLOWED_ORIGIN = env('ALLOWED_ORIGIN');
const REFUSED_ORIGIN = env('REFUSED_ORIGIN');
const CONNECTION_ID = env('CONNECTION_ID', { optional: true });
if (!Number.isInteger(ENTITY_COUNT) || ENTITY_COUNT < 0) {
  console.error(`ENTITY_COUNT must be a non-negative integer, got ${process.env.ENTITY_COUNT}`);
  process.exit(2);
}

const GRAPHQL_URL = `${SERVER_URL}/graphql`;
const WS_URL = `${SERVER_URL.replace(/^http/, 'ws')}/graphql/ws`;
const AUTH = { authorization: `Bearer ${TOKEN}` };
const SCHEMA_FILE = new URL('../../apps/server/schema.graphql', import.meta.url);
/** The server's request body limit (apps/server: MAX_BODY_BYTES). */
const MAX_BODY_BYTES = 256 * 1024;
const PAGE_SIZE = 2;

const sha256 = (text) => createHash('sha256').update(text).digest('hex');
/** A query no server has seen before (so its hash is not persisted yet). */
const freshQuery = (label) => `query ${label}_${randomUUID().replaceAll('-', '')} { __typename }`;

/** The body must be a GraphQL-shaped JSON error: `errors[0].message` and `.extensions.code`. */
function assertJsonError(response, status, what) {
  assert.equal(response.status, status, `${what}: expected status ${status}; ${show(response)}`);
  assert.match(mediaType(response), /json$/, `${what}: expected a JSON content-type; ${show(response)}`);
  const body = response.json();
  assert.ok(Array.isArray(body.errors) && body.errors.length > 0, `${what}: no errors[]; ${show(response)}`);
  assert.equal(typeof body.errors[0].message, 'string', `${what}: errors[0].message; ${show(response)}`);
  assert.equal(
    typeof body.errors[0].extensions?.code,
    'string',
    `${what}: errors[0].extensions.code; ${show(response)}`,
  );
  return `${status} ${body.errors[0].extensions.code}`;
}

// --- Apollo Client: relay-style pagination with fetchMore --------------------------------------

const ENTITIES = gql`
  query Entities($ws: UUID!, $first: Int!, $after: String) {
    entities(workspaceId: $ws, first: $first, after: $after) {
      edges {
        cursor
        node {
          id
          displayName
        }
      }
      pageInfo {
        hasNextPage
        endCursor
        hasPreviousPage
        startCursor
      }
      totalCount
    }
  }
`;

async function apolloPaginatesEntities() {
  const client = new ApolloClient({
    link: new HttpLink({ uri: GRAPHQL_URL, headers: AUTH }),
    cache: new InMemoryCache({
      typePolicies: {
        Query: { fields: { entities: relayStylePagination(['workspaceId']) } },
      },
    }),
  });
  try {
    const query = client.watchQuery({ query: ENTITIES, variables: { ws: WORKSPACE_ID, first: PAGE_SIZE } });
    const first = await withTimeout(
      firstValueFrom(query.pipe(filter((result) => !result.loading))),
      10_000,
      'the first page',
    );
    assert.equal(first.error, undefined, `first page failed: ${first.error?.message}`);
    let connection = first.data.entities;
    assert.equal(connection.pageInfo.hasPreviousPage, false, 'the first page has hasPreviousPage == true');
    assert.ok(connection.edges.length <= PAGE_SIZE, `first page has ${connection.edges.length} edges > first: ${PAGE_SIZE}`);
    const seenCursors = new Set(connection.edges.map((edge) => edge.cursor));
    const maxPages = Math.ceil(ENTITY_COUNT / PAGE_SIZE) + 1;
    let pages = 1;
    while (connection.pageInfo.hasNextPage) {
      assert.ok(pages < maxPages, `still hasNextPage after ${pages} pages of ${PAGE_SIZE} for ${ENTITY_COUNT} entities`);
      assert.equal(typeof connection.pageInfo.endCursor, 'string', 'hasNextPage without an endCursor');
      const page = await withTimeout(
        query.fetchMore({ variables: { after: connection.pageInfo.endCursor } }),
        10_000,
        `page ${pages + 1}`,
      );
      const incoming = page.data.entities;
      assert.ok(incoming.edges.length <= PAGE_SIZE, `page ${pages + 1} has ${incoming.edges.length} edges`);
      assert.ok(incoming.edges.length > 0 || !incoming.pageInfo.hasNextPage, `page ${pages + 1} is empty but hasNextPage`);
      for (const edge of incoming.edges) {
        assert.ok(!seenCursors.has(edge.cursor), `cursor ${edge.cursor} returned twice`);
        seenCursors.add(edge.cursor);
      }
      pages += 1;
      connection = query.getCurrentResult().data.entities;
    }
    // What the cache holds: the merged connection and the normalized Entity objects.
    const cached = client.readQuery({ query: ENTITIES, variables: { ws: WORKSPACE_ID, first: PAGE_SIZE } }).entities;
    const ids = new Set(cached.edges.map((edge) => edge.node.id));
    assert.equal(cached.edges.length, ENTITY_COUNT, `the cache holds ${cached.edges.length} edges, expected ${ENTITY_COUNT}`);
    assert.equal(ids.size, ENTITY_COUNT, `the cache holds ${ids.size} distinct entities, expected ${ENTITY_COUNT}`);
    const normalized = Object.keys(client.cache.extract()).filter((key) => key.startsWith('Entity:'));
    assert.equal(normalized.length, ENTITY_COUNT, `${normalized.length} Entity objects normalized in the cache`);
    assert.equal(cached.totalCount, ENTITY_COUNT, `totalCount is ${cached.totalCount}, expected ${ENTITY_COUNT}`);
    return `${ENTITY_COUNT} entities in ${pages} page(s) of ${PAGE_SIZE}`;
  } finally {
    client.stop();
  }
}

// --- graphql-ws subscription -------------------------------------------------------------------

/** The arguments of `Subscription.syncProgress`, from the live schema (or the committed SDL). */
async function syncProgressArgs() {
  try {
    const response = await postGraphql(
      GRAPHQL_URL,
      { query: '{ __type(name: "Subscription") { fields { name args { name } } } }' },
      { headers: AUTH },
    );
    const fields = response.json().data?.__type?.fields;
    if (Array.isArray(fields)) {
      const field = fields.find((candidate) => candidate.name === 'syncProgress');
      if (field) return field.args.map((arg) => arg.name);
    }
  } catch {
    // Fall back to the committed SDL below.
  }
  const schema = buildSchema(readFileSync(SCHEMA_FILE, 'utf8'));
  const field = schema.getSubscriptionType()?.getFields().syncProgress;
  assert.ok(field, 'the schema has no Subscription.syncProgress');
  return field.args.map((arg) => arg.name);
}

/**
 * Subscribes over graphql-transport-ws and waits `quietMs`: resolves `{ acked, outcome }`, where
 * outcome is `open` (no error, no completion within the window), `error` or `complete`.
 */
async function subscribeOnce({ connectionParams, query, variables, quietMs = 1_500 }) {
  let acked = false;
  let closeEvent;
  const closed = new Promise((resolve) => {
    closeEvent = resolve;
  });
  const client = createClient({
    url: WS_URL,
    webSocketImpl: WebSocket,
    connectionParams,
    lazy: false,
    // Connection failures are reported to the subscription's sink below.
    onNonLazyError: () => {},
    retryAttempts: 0,
    connectionAckWaitTimeout: 5_000,
    on: {
      connected: () => {
        acked = true;
      },
      closed: (event) => closeEvent(event),
    },
  });
  // A lazy: false client reports connection failures through onNonLazyError.
  let outcome;
  try {
    outcome = await withTimeout(
      new Promise((resolve) => {
        const timer = setTimeout(() => resolve({ kind: 'open' }), quietMs);
        client.subscribe(
          { query, variables },
          {
            next: (value) => {
              if (value.errors) {
                clearTimeout(timer);
                resolve({ kind: 'error', errors: value.errors });
              }
            },
            error: (error) => {
              clearTimeout(timer);
              resolve({ kind: 'error', errors: Array.isArray(error) ? error : [error] });
            },
            complete: () => {
              clearTimeout(timer);
              resolve({ kind: 'complete' });
            },
          },
        );
      }),
      quietMs + 8_000,
      'the subscription',
    );
  } finally {
    await client.dispose();
  }
  const close = await withTimeout(closed, 5_000, 'the socket to close after dispose').catch(() => undefined);
  return { acked, outcome, close };
}

const describeErrors = (errors) =>
  errors
    .map((error) =>
      error?.code !== undefined && error?.reason !== undefined
        ? `socket closed ${error.code} ${error.reason}`
        : `${error?.message ?? error}${error?.extensions?.code ? ` (${error.extensions.code})` : ''}`,
    )
    .join('; ');

async function wsSubscriptionIsAccepted() {
  const args = await syncProgressArgs();
  const typed = { workspaceId: 'UUID!', connectionId: 'UUID!' };
  const arg = args.find((name) => name in typed);
  assert.ok(arg, `syncProgress takes (${args.join(', ')}): neither workspaceId nor connectionId`);
  const query = `subscription SyncProgress($id: ${typed[arg]}) { syncProgress(${arg}: $id) { __typename } }`;
  const connectionParams = { Authorization: `Bearer ${TOKEN}` };
  if (arg === 'workspaceId' || CONNECTION_ID) {
    const id = arg === 'workspaceId' ? WORKSPACE_ID : CONNECTION_ID;
    const { acked, outcome, close } = await subscribeOnce({ connectionParams, query, variables: { id } });
    assert.ok(acked, 'the server never acknowledged connection_init');
    assert.equal(outcome.kind, 'open', `the subscription ended: ${outcome.kind} ${describeErrors(outcome.errors ?? [])}`);
    assert.equal(close?.code, 1000, `after dispose the socket closed with ${close?.code} (expected 1000)`);
    return `syncProgress(${arg}) accepted, disposed cleanly`;
  }
  // syncProgress(connectionId) without a CONNECTION_ID: an unknown connection is refused with a
  // GraphQL error (which still proves the socket, the token and the execution work).
  const { acked, outcome } = await subscribeOnce({ connectionParams, query, variables: { id: randomUUID() } });
  assert.ok(acked, 'the server never acknowledged connection_init');
  assert.equal(outcome.kind, 'error', `a subscription to an unknown connection was not refused (${outcome.kind})`);
  const codes = outcome.errors.map((error) => error?.extensions?.code);
  assert.ok(codes.includes('NOT_FOUND'), `expected NOT_FOUND, got ${describeErrors(outcome.errors)}`);
  return 'syncProgress(connectionId) of an unknown connection: NOT_FOUND (set CONNECTION_ID to check acceptance)';
}

async function wsWithoutTokenIsRefused({ warn }) {
  const { acked, outcome, close } = await subscribeOnce({
    connectionParams: {},
    query: '{ __typename }',
    variables: {},
  });
  assert.equal(acked, false, 'a connection_init without a token was acknowledged');
  assert.notEqual(outcome.kind, 'open', 'a connection without a token stayed open');
  assert.ok(close, 'the server did not close the socket');
  assert.notEqual(close.code, 1000, 'the server closed the unauthenticated socket as a normal closure');
  if (close.code !== 4403) {
    warn(`closed with ${close.code}; graphql-transport-ws recommends 4403 Forbidden for a refused connection_init`);
  }
  return `refused: closed ${close.code} ${close.reason}`;
}

// --- Automatic persisted queries (Apollo protocol) ---------------------------------------------

async function apqRoundTrip() {
  const query = freshQuery('ApqProbe');
  const extensions = { persistedQuery: { version: 1, sha256Hash: sha256(query) } };
  const miss = (await postGraphql(GRAPHQL_URL, { extensions })).json();
  const missError = miss.errors?.[0];
  assert.ok(
    missError?.extensions?.code === 'PERSISTED_QUERY_NOT_FOUND' || missError?.message === 'PersistedQueryNotFound',
    `hash only, never seen: expected PERSISTED_QUERY_NOT_FOUND, got ${JSON.stringify(miss).slice(0, 300)}`,
  );
  const registered = (await postGraphql(GRAPHQL_URL, { query, extensions })).json();
  assert.deepEqual(registered, { data: { __typename: 'Query' } }, 'query + hash');
  const get = await request(`${GRAPHQL_URL}?extensions=${encodeURIComponent(JSON.stringify(extensions))}`, {
    headers: { accept: 'application/graphql-response+json, application/json' },
  });
  assert.equal(get.status, 200, `GET by hash: ${show(get)}`);
  assert.deepEqual(get.json(), { data: { __typename: 'Query' } }, 'GET by hash');
  return 'miss → register → GET by hash';
}

async function apolloPersistedQueryLink() {
  const bodies = [];
  const recordingFetch = async (url, init) => {
    const target = new URL(String(url));
    bodies.push({
      method: init?.method ?? 'GET',
      body: init?.body ? JSON.parse(init.body) : Object.fromEntries(target.searchParams),
    });
    return fetch(url, init);
  };
  const client = new ApolloClient({
    link: createPersistedQueryLink({ sha256 }).concat(
      new HttpLink({ uri: GRAPHQL_URL, headers: AUTH, fetch: recordingFetch }),
    ),
    cache: new InMemoryCache(),
  });
  try {
    const query = gql(freshQuery('ApolloApq'));
    for (const round of [1, 2]) {
      const result = await withTimeout(
        client.query({ query, fetchPolicy: 'network-only' }),
        10_000,
        `query ${round}`,
      );
      assert.equal(result.error, undefined, `query ${round}: ${result.error?.message}`);
      assert.equal(result.data.__typename, 'Query', `query ${round}`);
    }
    const shape = bodies.map(({ body }) => ('query' in body ? 'query' : 'hash'));
    assert.deepEqual(
      shape,
      ['hash', 'query', 'hash'],
      `request bodies were ${JSON.stringify(shape)}: the second identical query must be served by hash alone`,
    );
    assert.ok(
      bodies.every(({ body }) => body.extensions?.persistedQuery?.sha256Hash),
      'a request lacked extensions.persistedQuery',
    );
    return 'the second query was sent as a hash only';
  } finally {
    client.stop();
  }
}

// --- Introspection, GET, content negotiation ---------------------------------------------------

async function introspection(headers) {
  const response = await postGraphql(GRAPHQL_URL, { query: getIntrospectionQuery(), operationName: 'IntrospectionQuery' }, { headers });
  assert.equal(response.status, 200, show(response));
  const body = response.json();
  assert.equal(body.errors, undefined, `errors: ${JSON.stringify(body.errors)?.slice(0, 300)}`);
  assert.equal(body.data?.__schema?.queryType?.name, 'Query', 'data.__schema.queryType.name');
  const schema = buildClientSchema(body.data);
  return `${Object.keys(schema.getTypeMap()).length} types`;
}

const introspectionWithoutToken = () => introspection({});
const introspectionWithToken = () => introspection(AUTH);

async function getQuery() {
  const response = await request(`${GRAPHQL_URL}?query=${encodeURIComponent('{ __typename }')}`, {
    headers: { accept: 'application/json' },
  });
  assert.equal(response.status, 200, show(response));
  assert.equal(mediaType(response), 'application/json', show(response));
  assert.equal(response.json().data?.__typename, 'Query', show(response));
  return '200 application/json';
}

async function getMutationIsRefused() {
  const response = await request(`${GRAPHQL_URL}?query=${encodeURIComponent('mutation { __typename }')}`, {
    headers: { accept: 'application/json' },
  });
  assert.equal(response.status, 405, `GET with a mutation: ${show(response)}`);
  return '405';
}

async function contentNegotiation() {
  const results = [];
  for (const accept of ['application/json', 'application/graphql-response+json']) {
    const response = await postGraphql(GRAPHQL_URL, { query: '{ __typename }' }, { headers: { accept } });
    assert.equal(response.status, 200, `Accept: ${accept}: ${show(response)}`);
    assert.equal(mediaType(response), accept, `Accept: ${accept}: ${show(response)}`);
    assert.equal(response.json().data?.__typename, 'Query', `Accept: ${accept}`);
    results.push(mediaType(response));
  }
  return results.join(', ');
}

// --- CORS -------------------------------------------------------------------------------------

const preflight = (origin) =>
  request(GRAPHQL_URL, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization,content-type',
    },
  });

async function corsPreflightAllowed() {
  const response = await preflight(ALLOWED_ORIGIN);
  assert.ok(response.status >= 200 && response.status < 300, `preflight from ${ALLOWED_ORIGIN}: ${show(response)}`);
  assert.equal(response.headers['access-control-allow-origin'], ALLOWED_ORIGIN, 'access-control-allow-origin');
  const allowed = String(response.headers['access-control-allow-headers'] ?? '')
    .toLowerCase()
    .split(',')
    .map((header) => header.trim());
  for (const header of ['authorization', 'content-type']) {
    assert.ok(allowed.includes(header) || allowed.includes('*'), `access-control-allow-headers lacks ${header}: ${allowed}`);
  }
  const methods = String(response.headers['access-control-allow-methods'] ?? '').toUpperCase();
  assert.ok(methods.includes('POST') || methods.includes('*'), `access-control-allow-methods lacks POST: ${methods}`);
  // The actual request carries the header too.
  const actual = await postGraphql(GRAPHQL_URL, { query: '{ __typename }' }, { headers: { origin: ALLOWED_ORIGIN } });
  assert.equal(actual.headers['access-control-allow-origin'], ALLOWED_ORIGIN, `POST from ${ALLOWED_ORIGIN}: no allow-origin`);
  return `${response.status}, allow-headers: ${allowed.join(',')}`;
}

async function corsPreflightRefused() {
  const response = await preflight(REFUSED_ORIGIN);
  assert.equal(
    response.headers['access-control-allow-origin'],
    undefined,
    `preflight from ${REFUSED_ORIGIN} got access-control-allow-origin ${response.headers['access-control-allow-origin']}`,
  );
  const actual = await postGraphql(GRAPHQL_URL, { query: '{ __typename }' }, { headers: { origin: REFUSED_ORIGIN } });
  assert.equal(actual.headers['access-control-allow-origin'], undefined, `POST from ${REFUSED_ORIGIN} got allow-origin`);
  return `${response.status}, no access-control-allow-origin`;
}

// --- JSON error bodies ------------------------------------------------------------------------

async function malformedJsonIs400() {
  const response = await request(GRAPHQL_URL, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: '{not json',
  });
  return assertJsonError(response, 400, 'a non-JSON body');
}

async function oversizedBodyIs413() {
  const padding = 'x'.repeat(MAX_BODY_BYTES + 16 * 1024);
  const response = await request(GRAPHQL_URL, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query: '{ __typename }', variables: { padding } }),
  });
  return assertJsonError(response, 413, `a body over ${MAX_BODY_BYTES} bytes`);
}

async function putIs405() {
  const response = await request(GRAPHQL_URL, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query: '{ __typename }' }),
  });
  return assertJsonError(response, 405, 'PUT /graphql');
}

// --- GraphQL over HTTP audits (graphql-http) ---------------------------------------------------

async function graphqlHttpAudits({ warn }) {
  const audits = serverAudits({ url: GRAPHQL_URL, fetchFn: fetch });
  const errors = [];
  const notices = [];
  let ok = 0;
  let warnings = 0;
  for (const audit of audits) {
    let result;
    try {
      result = await withTimeout(audit.fn(), 10_000, audit.name);
    } catch (error) {
      result = { status: 'error', name: audit.name, id: audit.id, reason: `threw: ${error.message}` };
    }
    if (result.status === 'ok') {
      ok += 1;
    } else if (result.status === 'error') {
      errors.push(`${result.id} ${result.name}: ${result.reason}`);
    } else if (result.status === 'warn') {
      warnings += 1;
      warn(`${result.id} ${result.name}: ${result.reason}`);
    } else {
      // `notice`: a MAY the server chose not to do; listed by id only.
      notices.push(result.id);
    }
  }
  assert.ok(errors.length === 0, `${errors.length} audit error(s):\n  ${errors.join('\n  ')}`);
  const noticeIds = notices.length > 0 ? ` (${notices.join(' ')})` : '';
  return `${audits.length} audits: ${ok} ok, ${warnings} warnings, ${notices.length} notices${noticeIds}, 0 errors`;
}

await main(
  `GraphQL API checks against ${SERVER_URL}`,
  [
    apolloPaginatesEntities,
    wsSubscriptionIsAccepted,
    wsWithoutTokenIsRefused,
    apqRoundTrip,
    apolloPersistedQueryLink,
    introspectionWithoutToken,
    introspectionWithToken,
    getQuery,
    getMutationIsRefused,
    contentNegotiation,
    corsPreflightAllowed,
    corsPreflightRefused,
    malformedJsonIs400,
    oversizedBodyIs413,
    putIs405,
    graphqlHttpAudits,
  ],
  { timeoutMs: 60_000, totalTimeoutMs: 240_000 },
);
