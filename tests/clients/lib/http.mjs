// Raw HTTP requests with node:http: full control of the method, every header (Origin,
// Access-Control-Request-*) and large bodies, and tolerant of a server that answers before it
// has read the whole body (413).

import http from 'node:http';
import https from 'node:https';

/**
 * Sends one request; resolves `{ status, headers, text, json() }`. `body` is a string or Buffer
 * (sent with its Content-Length). Bounded by `timeoutMs`.
 */
export function request(url, { method = 'GET', headers = {}, body, timeoutMs = 10_000 } = {}) {
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  const payload = body === undefined ? undefined : Buffer.from(body);
  const allHeaders = { ...headers };
  if (payload !== undefined) allHeaders['content-length'] = String(payload.length);
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (fn, value) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        fn(value);
      }
    };
    const req = client.request(
      target,
      { method, headers: allHeaders, agent: false },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('error', (error) => finish(reject, error));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          finish(resolve, {
            status: res.statusCode,
            headers: res.headers,
            text,
            json() {
              try {
                return JSON.parse(text);
              } catch {
                throw new Error(
                  `${method} ${target.pathname}: status ${res.statusCode}, body is not JSON: ${JSON.stringify(text.slice(0, 200))}`,
                );
              }
            },
          });
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish(reject, new Error(`${method} ${url}: no response within ${timeoutMs} ms`));
    }, timeoutMs);
    // A server may answer (413) and close while the body is still being written: the write
    // error (EPIPE/ECONNRESET) then only matters when no response arrived.
    req.on('error', (error) => {
      setTimeout(() => finish(reject, error), 500);
    });
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** POSTs a GraphQL request as JSON. */
export function postGraphql(url, payload, { headers = {}, timeoutMs } = {}) {
  return request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...headers },
    body: JSON.stringify(payload),
    timeoutMs,
  });
}

/** The media type of a response (without parameters), lower-cased. */
export function mediaType(response) {
  return String(response.headers['content-type'] ?? '')
    .split(';')[0]
    .trim()
    .toLowerCase();
}

/** A short description of a response for failure messages. */
export function show(response) {
  return `status ${response.status}, content-type ${JSON.stringify(response.headers['content-type'] ?? null)}, body ${JSON.stringify(response.text.slice(0, 300))}`;
}
