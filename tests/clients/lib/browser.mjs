// Headless Chromium (Debian's /usr/bin/chromium, never a downloaded browser) with every request
// off the loopback network aborted, and the GraphiQL walk-through shared by browser.mjs and
// graphiql-assets.mjs.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import puppeteer from 'puppeteer-core';

import { assert } from './check.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Launches Chromium with a fresh profile; `close()` also removes the profile. */
export async function launchChromium() {
  const profile = mkdtempSync(join(tmpdir(), 'chromium-profile-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    protocolTimeout: 30_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
      `--user-data-dir=${profile}`,
    ],
  });
  return {
    browser,
    async close() {
      try {
        await browser.close();
      } finally {
        rmSync(profile, { recursive: true, force: true });
      }
    },
  };
}

/** Whether a URL stays on this machine: 127.0.0.0/8, localhost, [::1], or no network at all. */
export function isLoopback(url) {
  const target = new URL(url);
  if (['data:', 'blob:', 'about:'].includes(target.protocol)) return true;
  const host = target.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Aborts every request off the loopback network and records what went wrong on the page:
 * aborted (non-loopback) requests, failed requests, HTTP error responses, uncaught page errors
 * and console errors. `problems()` lists them; an empty list means a clean page.
 */
export async function watchPage(page, { allowFailures = false } = {}) {
  const aborted = [];
  const failed = [];
  const httpErrors = [];
  const pageErrors = [];
  const consoleErrors = [];
  await page.setRequestInterception(true);
  page.on('request', (req) => {
    if (req.isInterceptResolutionHandled()) return;
    if (isLoopback(req.url())) {
      req.continue();
    } else {
      aborted.push(req.url());
      req.abort('blockedbyclient');
    }
  });
  page.on('requestfailed', (req) => {
    if (isLoopback(req.url())) failed.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText}`);
  });
  page.on('response', (res) => {
    if (res.status() >= 400) httpErrors.push(`${res.request().method()} ${res.url()}: ${res.status()}`);
  });
  page.on('pageerror', (error) => pageErrors.push(String(error?.message ?? error)));
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  return {
    aborted,
    consoleErrors,
    problems() {
      const list = [
        ...aborted.map((url) => `request off loopback (aborted): ${url}`),
        ...pageErrors.map((text) => `page error: ${text}`),
      ];
      if (!allowFailures) {
        list.push(
          ...failed.map((text) => `request failed: ${text}`),
          ...httpErrors.map((text) => `HTTP error: ${text}`),
          ...consoleErrors.map((text) => `console error: ${text}`),
        );
      }
      return list;
    },
  };
}

/** Fails when the page recorded any problem. */
export function assertCleanPage(watch, what) {
  const problems = watch.problems();
  assert.deepEqual(problems, [], `${what}: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
}

/** Starts an HTTP server on host:port (port 0: any); resolves `{ server, origin, close() }`. */
export function listen(handler, { host = '127.0.0.1', port = 0 } = {}) {
  return new Promise((resolve, reject) => {
    const server = http.createServer(handler);
    server.on('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolve({
        server,
        origin: `http://${host}:${address.port}`,
        close: () =>
          new Promise((done) => {
            server.closeAllConnections?.();
            server.close(() => done());
          }),
      });
    });
  });
}

// --- The GraphiQL walk-through -------------------------------------------------------------------

const QUERY_EDITOR = '.graphiql-query-editor .CodeMirror';
const RESPONSE_EDITOR = '.graphiql-response .CodeMirror';

/** Opens GraphiQL at `url` and waits for it to render with its editors. */
export async function openGraphiql(page, url) {
  const response = await page.goto(url, { waitUntil: 'load', timeout: 20_000 });
  assert.ok(response, `no response for ${url}`);
  assert.equal(response.status(), 200, `GET ${url}: ${response.status()}`);
  assert.match(String(response.headers()['content-type']), /^text\/html/, `GET ${url}: not HTML`);
  assert.equal(await page.title(), 'GraphiQL', 'the page title');
  await page.waitForSelector('.graphiql-container', { timeout: 15_000 });
  await page.waitForSelector(QUERY_EDITOR, { timeout: 15_000 });
}

/** Opens the documentation explorer, checks it lists the root types, then opens `Query`. */
export async function checkDocsExplorer(page) {
  const button = await page.waitForSelector('button[aria-label="Show Documentation Explorer"]', { timeout: 10_000 });
  await button.click();
  // The root view lists the root types once introspection has answered.
  await page.waitForFunction(
    () => {
      const explorer = document.querySelector('.graphiql-doc-explorer');
      return explorer && /Root Types/i.test(explorer.innerText) && /\bquery:\s*Query\b/.test(explorer.innerText);
    },
    { timeout: 15_000 },
  );
  const opened = await page.evaluate(() => {
    const link = [...document.querySelectorAll('.graphiql-doc-explorer a.graphiql-doc-explorer-type-name')].find(
      (anchor) => anchor.textContent.trim() === 'Query',
    );
    if (!link) return false;
    link.click();
    return true;
  });
  assert.ok(opened, 'the docs explorer has no link to the Query type');
  await page.waitForFunction(
    () => {
      const title = document.querySelector('.graphiql-doc-explorer-title');
      const fields = [...document.querySelectorAll('.graphiql-doc-explorer .graphiql-doc-explorer-field-name')];
      return title?.textContent.trim() === 'Query' && fields.length > 0;
    },
    { timeout: 10_000 },
  );
  return page.evaluate(() =>
    [...document.querySelectorAll('.graphiql-doc-explorer .graphiql-doc-explorer-field-name')].map((field) =>
      field.textContent.trim(),
    ),
  );
}

/** The query editor's text. */
export const queryEditorText = (page) =>
  page.evaluate((selector) => document.querySelector(selector)?.CodeMirror?.getValue() ?? null, QUERY_EDITOR);

/** Puts `query` into the editor (as typing would, through CodeMirror), runs it, returns the result text. */
export async function runQuery(page, query, expected) {
  const set = await page.evaluate(
    (selector, text) => {
      const editor = document.querySelector(selector)?.CodeMirror;
      if (!editor) return false;
      editor.setValue(text);
      return true;
    },
    QUERY_EDITOR,
    query,
  );
  assert.ok(set, 'no CodeMirror query editor');
  assert.equal(await queryEditorText(page), query, 'the editor does not hold the query');
  await (await page.waitForSelector('.graphiql-execute-button', { timeout: 5_000 })).click();
  try {
    await page.waitForFunction(
      (selector, needle) => (document.querySelector(selector)?.CodeMirror?.getValue() ?? '').includes(needle),
      { timeout: 15_000 },
      RESPONSE_EDITOR,
      expected,
    );
  } catch (error) {
    const shown = await page.evaluate(
      (selector) => document.querySelector(selector)?.CodeMirror?.getValue() ?? null,
      RESPONSE_EDITOR,
    );
    throw new Error(`the result pane never showed ${expected}; it shows ${JSON.stringify(shown)} (${error.message})`);
  }
  return page.evaluate((selector) => document.querySelector(selector).CodeMirror.getValue(), RESPONSE_EDITOR);
}

/**
 * The GraphiQL checks, in order, for the GraphiQL page at `graphqlUrl`: it renders, the docs
 * explorer lists the root types and opens `Query`, `{ __typename }` runs from the editor, a
 * `?query=` link opens in the editor, a screenshot is saved, and the pages made no request off
 * the loopback network and had no failed request, HTTP error, page error or console error.
 * `getBrowser()` returns the launched browser, `getGraphqlUrl()` the page's URL.
 */
export function graphiqlChecks({ getBrowser, getGraphqlUrl, screenshotPath }) {
  const QUERY = '{ __typename }';
  const EXPECTED = '"__typename": "Query"';
  let page;
  const watches = [];
  const needPage = () => assert.ok(page, 'GraphiQL did not open (see graphiqlRenders)');
  const newPage = async () => {
    const context = await getBrowser().createBrowserContext();
    const fresh = await context.newPage();
    await fresh.setViewport({ width: 1400, height: 900 });
    watches.push(await watchPage(fresh));
    return fresh;
  };
  return [
    [
      'graphiqlRenders',
      async () => {
        const graphqlUrl = getGraphqlUrl();
        const candidate = await newPage();
        await openGraphiql(candidate, graphqlUrl);
        page = candidate;
        return `${graphqlUrl} rendered .graphiql-container`;
      },
    ],
    [
      'graphiqlDocsExplorer',
      async () => {
        needPage();
        const fields = await checkDocsExplorer(page);
        return `Root Types → Query: ${fields.slice(0, 6).join(', ')}${fields.length > 6 ? ', …' : ''}`;
      },
    ],
    [
      'graphiqlRunsQuery',
      async () => {
        needPage();
        const result = await runQuery(page, QUERY, EXPECTED);
        return `result pane: ${result.replace(/\s+/g, ' ')}`;
      },
    ],
    [
      'graphiqlCanOpenSubscriptionSocket',
      async () => {
        needPage();
        // What GraphiQL's subscription fetcher does first: open the graphql-transport-ws socket
        // on /graphql/ws (the page's CSP and the server's upgrade must both allow it).
        const outcome = await page.evaluate(
          () =>
            new Promise((resolve) => {
              const url = `${window.location.origin.replace(/^http/, 'ws')}/graphql/ws`;
              const timer = setTimeout(() => resolve({ kind: 'timeout', url }), 5_000);
              document.addEventListener('securitypolicyviolation', (event) => {
                clearTimeout(timer);
                resolve({ kind: 'csp', url, directive: event.violatedDirective });
              });
              let socket;
              try {
                socket = new WebSocket(url, 'graphql-transport-ws');
              } catch (error) {
                clearTimeout(timer);
                resolve({ kind: 'throw', url, message: String(error) });
                return;
              }
              socket.onopen = () => {
                clearTimeout(timer);
                const protocol = socket.protocol;
                socket.close(1000);
                resolve({ kind: 'open', url, protocol });
              };
              socket.onerror = () => {
                clearTimeout(timer);
                resolve({ kind: 'error', url });
              };
            }),
        );
        assert.equal(outcome.kind, 'open', `WebSocket ${outcome.url}: ${JSON.stringify(outcome)}`);
        assert.equal(outcome.protocol, 'graphql-transport-ws', 'the negotiated subprotocol');
        return `${outcome.url} opened (graphql-transport-ws)`;
      },
    ],
    [
      'graphiqlScreenshot',
      async () => {
        needPage();
        return screenshot(page, screenshotPath);
      },
    ],
    [
      'graphiqlOpensQueryFromUrl',
      async () => {
        const linked = await newPage();
        const url = `${getGraphqlUrl()}?query=${encodeURIComponent(QUERY)}`;
        await openGraphiql(linked, url);
        assert.equal(await queryEditorText(linked), QUERY, `${url}: the editor does not hold the linked query`);
        return `?query= opened in the editor`;
      },
    ],
    [
      'graphiqlStaysOnLoopback',
      async () => {
        assert.ok(watches.length > 0, 'no GraphiQL page was opened');
        watches.forEach((watch, index) => assertCleanPage(watch, `GraphiQL page ${index + 1}`));
        return 'no request off loopback, none failed, no HTTP/page/console error';
      },
    ],
  ];
}

/** Saves a full-page screenshot, creating its folder. */
export async function screenshot(page, path) {
  mkdirSync(dirname(path), { recursive: true });
  await page.screenshot({ path, fullPage: true });
  return path;
}
