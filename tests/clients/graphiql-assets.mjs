// The vendored GraphiQL (apps/server/assets/graphiql/) works with no network beyond its server,
// checked without the Rust server: a tiny Node server maps /graphql/assets/<name> to the files,
// GET /graphql to index.html and POST /graphql to graphql-js on the committed schema (only meta
// fields answer: `__typename` and introspection), and headless Chromium walks through GraphiQL
// with every non-loopback request aborted.
//
//   node graphiql-assets.mjs
//
// env: ARTIFACT_DIR (default tests/clients/artifacts), GRAPHIQL_ASSETS_DIR (default
// apps/server/assets/graphiql), CHROMIUM_PATH (default /usr/bin/chromium).

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { buildSchema, graphql } from 'graphql';
import { WebSocketServer } from 'ws';

import { graphiqlChecks, launchChromium, listen } from './lib/browser.mjs';
import { assert, main } from './lib/check.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ASSETS = process.env.GRAPHIQL_ASSETS_DIR || join(HERE, '../../apps/server/assets/graphiql');
const SCHEMA = buildSchema(readFileSync(join(HERE, '../../apps/server/schema.graphql'), 'utf8'));
const ARTIFACT_DIR = process.env.ARTIFACT_DIR || join(HERE, 'artifacts');
/** The files the server embeds and serves at /graphql/assets/<name>. */
const FILES = [
  'index.html',
  'graphiql.min.js',
  'graphiql.min.css',
  'react.production.min.js',
  'react-dom.production.min.js',
  'LICENSES.md',
];
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
};

async function handler(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const reply = (status, type, body) => {
    res.writeHead(status, { 'content-type': type });
    res.end(body);
  };
  if (req.method === 'GET' && url.pathname.startsWith('/graphql/assets/')) {
    const name = url.pathname.slice('/graphql/assets/'.length);
    if (!FILES.includes(name)) return reply(404, 'text/plain', 'not found');
    return reply(200, TYPES[extname(name)], readFileSync(join(ASSETS, name)));
  }
  if (url.pathname === '/graphql' && req.method === 'GET') {
    return reply(200, TYPES['.html'], readFileSync(join(ASSETS, 'index.html')));
  }
  if (url.pathname === '/graphql' && req.method === 'POST') {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const { query, variables, operationName } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const result = await graphql({ schema: SCHEMA, source: query, variableValues: variables, operationName });
    return reply(200, 'application/json', JSON.stringify(result));
  }
  return reply(404, 'text/plain', 'not found');
}

let site;
let chromium;

async function assetFilesPresent() {
  const missing = FILES.filter((name) => !existsSync(join(ASSETS, name)));
  assert.deepEqual(missing, [], `missing in apps/server/assets/graphiql: ${missing.join(', ')}`);
  const licences = readFileSync(join(ASSETS, 'LICENSES.md'), 'utf8');
  const versions = {
    react: readFileSync(join(ASSETS, 'react.production.min.js'), 'utf8').match(/\.version="(\d+\.\d+\.\d+)"/)?.[1],
    'react-dom': readFileSync(join(ASSETS, 'react-dom.production.min.js'), 'utf8').match(/\.version="(\d+\.\d+\.\d+)/)?.[1],
  };
  for (const name of ['react', 'react-dom']) {
    assert.ok(versions[name], `no version found in ${name}'s build`);
    assert.ok(licences.includes(`${name}@${versions[name]}`), `LICENSES.md does not name ${name}@${versions[name]}`);
  }
  return `${FILES.length} files; react@${versions.react}, react-dom@${versions['react-dom']}`;
}

async function indexHtmlIsSelfContained() {
  const html = readFileSync(join(ASSETS, 'index.html'), 'utf8');
  const references = [...html.matchAll(/\b(?:src|href)\s*=\s*"([^"]*)"/g)].map((match) => match[1]);
  const external = references.filter((ref) => !ref.startsWith('/graphql/assets/') && !ref.startsWith('data:'));
  assert.deepEqual(external, [], `index.html references ${external.join(', ')}`);
  const urls = html.match(/\b(?:https?|wss?):\/\/[^\s"'<>)]+/g) ?? [];
  assert.deepEqual(urls, [], `index.html names external URLs: ${urls.join(', ')}`);
  for (const asset of ['graphiql.min.css', 'react.production.min.js', 'react-dom.production.min.js', 'graphiql.min.js']) {
    assert.ok(references.includes(`/graphql/assets/${asset}`), `index.html does not load /graphql/assets/${asset}`);
  }
  assert.match(html, /<title>GraphiQL<\/title>/, 'the title is not GraphiQL');
  // The Content-Security-Policy pins the inline script by hash: they must agree.
  const inline = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((match) => match[1]);
  const csp = html.match(/http-equiv="Content-Security-Policy"\s+content="([^"]*)"/)?.[1];
  assert.ok(csp, 'index.html has no Content-Security-Policy');
  for (const script of inline) {
    const hash = `'sha256-${createHash('sha256').update(script).digest('base64')}'`;
    assert.ok(csp.includes(hash), `the CSP's script-src lacks the inline script's hash ${hash}`);
  }
  return `${references.length} references, all under /graphql/assets/ or data:; CSP pins ${inline.length} inline script(s)`;
}

async function startSiteAndBrowser() {
  site = await listen(handler);
  // A socket endpoint that only accepts the graphql-transport-ws subprotocol (no GraphQL).
  const sockets = new WebSocketServer({
    server: site.server,
    path: '/graphql/ws',
    handleProtocols: (protocols) => (protocols.has('graphql-transport-ws') ? 'graphql-transport-ws' : false),
  });
  const close = site.close;
  site.close = async () => {
    for (const client of sockets.clients) client.terminate();
    sockets.close();
    await close();
  };
  chromium = await launchChromium();
  return `${site.origin}/graphql, ${await chromium.browser.version()}`;
}

await main(
  'Vendored GraphiQL, offline',
  [
    assetFilesPresent,
    indexHtmlIsSelfContained,
    startSiteAndBrowser,
    ...graphiqlChecks({
      getBrowser: () => {
        assert.ok(chromium, 'Chromium did not start');
        return chromium.browser;
      },
      getGraphqlUrl: () => {
        assert.ok(site, 'the asset server did not start');
        return `${site.origin}/graphql`;
      },
      screenshotPath: join(ARTIFACT_DIR, 'graphiql-offline.png'),
    }),
  ],
  {
    timeoutMs: 45_000,
    totalTimeoutMs: 180_000,
    teardown: async () => {
      await chromium?.close();
      await site?.close();
    },
  },
);
