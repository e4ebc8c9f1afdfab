// Browser checks against a live server, in headless Chromium (Debian's /usr/bin/chromium) with
// every request off the loopback network aborted:
//  - CORS as a browser enforces it: a page served from ALLOWED_PAGE_ORIGIN may POST /graphql
//    with a bearer token; the same page served from REFUSED_PAGE_ORIGIN may not (the fetch
//    rejects with a TypeError);
//  - GraphiQL at SERVER_URL/graphql: renders, its docs explorer lists the root types, it runs
//    `{ __typename }`, it can open the subscription socket, `?query=` links open in the editor,
//    and it makes no request off loopback and none that fails.
//
//   SERVER_URL=http://127.0.0.1:8080 TOKEN=… \
//   ALLOWED_PAGE_ORIGIN=http://127.0.0.1:45123 REFUSED_PAGE_ORIGIN=http://127.0.0.2:45124 \
//   node browser.mjs
//
// The two page origins must be loopback origins with an explicit port; this script listens on
// each itself. The server must allow ALLOWED_PAGE_ORIGIN and not REFUSED_PAGE_ORIGIN (so not a
// development mode that allows every loopback origin). A screenshot of GraphiQL is saved to
// ${ARTIFACT_DIR:-tests/clients/artifacts}/graphiql.png. CHROMIUM_PATH overrides /usr/bin/chromium.

import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { assertCleanPage, graphiqlChecks, isLoopback, launchChromium, listen, watchPage } from './lib/browser.mjs';
import { assert, env, main } from './lib/check.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const SERVER_URL = env('SERVER_URL').replace(/\/+$/, '');
const TOKEN = env('TOKEN');
const ARTIFACT_DIR = process.env.ARTIFACT_DIR || join(HERE, 'artifacts');

/** A loopback origin with an explicit port, as `{ origin, host, port }`; exits 2 otherwise. */
function pageOrigin(name) {
  const value = env(name);
  let url;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || url.protocol !== 'http:' || !url.port || !isLoopback(value) || url.origin !== value.replace(/\/+$/, '')) {
    console.error(`${name} must be a loopback origin with a port, like http://127.0.0.1:45123 (got ${value})`);
    process.exit(2);
  }
  return { origin: url.origin, host: url.hostname, port: Number(url.port) };
}

const ALLOWED = pageOrigin('ALLOWED_PAGE_ORIGIN');
const REFUSED = pageOrigin('REFUSED_PAGE_ORIGIN');
if (ALLOWED.origin === REFUSED.origin) {
  console.error('ALLOWED_PAGE_ORIGIN and REFUSED_PAGE_ORIGIN must differ');
  process.exit(2);
}
if (!isLoopback(SERVER_URL)) {
  console.error(`SERVER_URL must be on loopback (got ${SERVER_URL})`);
  process.exit(2);
}

/** The page each static server serves: one cross-origin POST, its outcome written into the DOM. */
function pageHtml() {
  const config = JSON.stringify({ url: `${SERVER_URL}/graphql`, token: TOKEN }).replaceAll('<', '\\u003c');
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>CORS probe</title><link rel="icon" href="data:,"></head>
<body>
<pre id="result">running</pre>
<script>
  const config = ${config};
  const show = (outcome) => {
    const element = document.getElementById('result');
    element.textContent = JSON.stringify(outcome);
    element.dataset.done = 'true';
  };
  fetch(config.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer ' + config.token },
    body: JSON.stringify({ query: '{ __typename }' }),
  })
    .then(async (response) => show({ ok: true, status: response.status, body: await response.text() }))
    .catch((error) => show({ ok: false, name: error.name, message: error.message }));
</script>
</body>
</html>`;
}

const pageServers = [];
let chromium;

function servePage(response) {
  response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  response.end(pageHtml());
}

async function startPageServersAndBrowser() {
  for (const { host, port } of [ALLOWED, REFUSED]) {
    pageServers.push(await listen((request, response) => servePage(response), { host, port }));
  }
  chromium = await launchChromium();
  return `pages on ${pageServers.map((server) => server.origin).join(' and ')}; ${await chromium.browser.version()}`;
}

/** Opens the probe page at `origin` in a fresh context; resolves the fetch's outcome. */
async function probe(origin) {
  assert.ok(chromium, 'Chromium did not start');
  const context = await chromium.browser.createBrowserContext();
  try {
    const page = await context.newPage();
    const watch = await watchPage(page, { allowFailures: true });
    await page.goto(`${origin}/`, { waitUntil: 'load', timeout: 10_000 });
    await page.waitForSelector('#result[data-done="true"]', { timeout: 10_000 });
    const outcome = JSON.parse(await page.$eval('#result', (element) => element.textContent));
    assertCleanPage(watch, `the page at ${origin}`);
    return { ...outcome, consoleErrors: [...watch.consoleErrors] };
  } finally {
    await context.close();
  }
}

async function corsAllowedOriginFetches() {
  const outcome = await probe(ALLOWED.origin);
  assert.equal(outcome.ok, true, `from ${ALLOWED.origin} the fetch rejected: ${outcome.name}: ${outcome.message}`);
  assert.equal(outcome.status, 200, `from ${ALLOWED.origin}: status ${outcome.status}, body ${outcome.body?.slice(0, 200)}`);
  let body;
  try {
    body = JSON.parse(outcome.body);
  } catch {
    assert.fail(`from ${ALLOWED.origin}: the body is not JSON: ${outcome.body?.slice(0, 200)}`);
  }
  assert.equal(body.data?.__typename, 'Query', `from ${ALLOWED.origin}: ${outcome.body.slice(0, 200)}`);
  return `${ALLOWED.origin} → data.__typename == "Query"`;
}

async function corsRefusedOriginIsBlocked() {
  const outcome = await probe(REFUSED.origin);
  assert.equal(
    outcome.ok,
    false,
    `from ${REFUSED.origin} the fetch succeeded (status ${outcome.status}): the server allowed a refused origin`,
  );
  assert.equal(outcome.name, 'TypeError', `from ${REFUSED.origin}: ${outcome.name}: ${outcome.message}`);
  // The rejection must be CORS, not an unreachable server: Chromium says so in the console.
  assert.ok(
    outcome.consoleErrors.some((text) => /blocked by CORS policy/i.test(text)),
    `the fetch from ${REFUSED.origin} failed, but not by CORS: ${JSON.stringify(outcome.consoleErrors)}`,
  );
  return `${REFUSED.origin} → ${outcome.name}: ${outcome.message}`;
}

await main(
  `Browser checks against ${SERVER_URL}`,
  [
    startPageServersAndBrowser,
    corsAllowedOriginFetches,
    corsRefusedOriginIsBlocked,
    ...graphiqlChecks({
      getBrowser: () => {
        assert.ok(chromium, 'Chromium did not start');
        return chromium.browser;
      },
      getGraphqlUrl: () => `${SERVER_URL}/graphql`,
      screenshotPath: join(ARTIFACT_DIR, 'graphiql.png'),
    }),
  ],
  {
    timeoutMs: 45_000,
    totalTimeoutMs: 240_000,
    teardown: async () => {
      await chromium?.close();
      await Promise.all(pageServers.map((server) => server.close()));
    },
  },
);
