// PostGraphile v4 as the peer of `just bench` (issue 6): serves the bench database over GraphQL
// at http://127.0.0.1:$PORT/graphql, nothing else (no GraphiQL, no mutations, no query log).
//
//   DATABASE_URL=postgres://… PORT=5055 [BENCH_RLS_USER_ID=<uuid>] node server.js
//
// Who the queries run as:
// - default: the DATABASE_URL user (in the suite the database owner, a superuser), so row-level
//   security is bypassed, as for the hand-written SQL limit;
// - BENCH_RLS_USER_ID set: every request runs as our API's requests do, in a transaction with
//   `SET LOCAL ROLE authenticated` and `request.jwt.claim.sub` = that user (PostGraphile's
//   pgSettings), so the same RLS policies are evaluated.
// The schema is introspected as the connecting user; `ignoreRBAC` is PostGraphile's default (true),
// so the GraphQL schema is the same in both modes.
'use strict';

const http = require('http');
const { postgraphile } = require('postgraphile');

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  console.error('server.js: DATABASE_URL is not set');
  process.exit(2);
}
const port = Number(process.env.PORT || 5055);
const rlsUser = process.env.BENCH_RLS_USER_ID || '';

const middleware = postgraphile(databaseUrl, process.env.BENCH_SCHEMA || 'public', {
  graphqlRoute: '/graphql',
  graphiql: false,
  disableDefaultMutations: true,
  disableQueryLog: true,
  retryOnInitFail: false,
  dynamicJson: true,
  setofFunctionsContainNulls: false,
  ignoreRBAC: true,
  watchPg: false,
  enableQueryBatching: false,
  extendedErrors: ['hint', 'detail', 'errcode'],
  pgSettings: rlsUser
    ? { role: 'authenticated', 'request.jwt.claim.sub': rlsUser }
    : undefined,
});

const server = http.createServer(middleware);
server.keepAliveTimeout = 65000;
server.listen(port, '127.0.0.1', () => {
  console.log(
    `postgraphile ${require('postgraphile/package.json').version} listening on http://127.0.0.1:${port}/graphql` +
      (rlsUser ? ` (role authenticated, user ${rlsUser})` : ' (as the connecting user)'),
  );
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
