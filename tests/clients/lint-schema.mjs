// Lints the committed SDL (apps/server/schema.graphql) with graphql-schema-linter and the rules
// of .graphql-schema-linterrc beside this file; prints every error, the count per rule (every
// configured rule, zeros included) and `N passed, N failed` (rules without / with errors).
// Exits 1 when any error was found.
//
//   node lint-schema.mjs [path/to/schema.graphql]

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const CONFIG = join(HERE, '.graphql-schema-linterrc');
const SCHEMA = process.argv[2] ?? join(HERE, '../../apps/server/schema.graphql');
const require = createRequire(import.meta.url);
const CLI = join(dirname(require.resolve('graphql-schema-linter/package.json')), 'lib/cli.js');

const { rules } = JSON.parse(readFileSync(CONFIG, 'utf8'));
const run = spawnSync(process.execPath, [CLI, '--config-directory', HERE, '--format', 'json', SCHEMA], {
  encoding: 'utf8',
  timeout: 60_000,
});
if (run.error) {
  console.error(`graphql-schema-linter did not run: ${run.error.message}`);
  process.exit(2);
}
let report;
try {
  report = JSON.parse(run.stdout);
} catch {
  console.error(`graphql-schema-linter gave no JSON report (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
  process.exit(2);
}

const counts = Object.fromEntries(rules.map((rule) => [rule, 0]));
for (const error of report.errors) {
  const rule = error.rule ?? 'invalid-graphql-schema';
  counts[rule] = (counts[rule] ?? 0) + 1;
  const where = error.location
    ? `${relative(process.cwd(), error.location.file ?? SCHEMA)}:${error.location.line}:${error.location.column}`
    : relative(process.cwd(), SCHEMA);
  console.log(`${where}  ${rule}  ${error.message}`);
}
if (report.errors.length > 0) console.log('');
console.log(`# graphql-schema-linter on ${relative(process.cwd(), SCHEMA)}: errors per rule`);
for (const [rule, count] of Object.entries(counts)) {
  console.log(`${count === 0 ? 'ok  ' : 'FAIL'} ${rule}${count === 0 ? '' : `: ${count}`}`);
}
const failed = Object.values(counts).filter((count) => count > 0).length;
console.log(`${report.errors.length} error(s)`);
console.log(`${Object.keys(counts).length - failed} passed, ${failed} failed`);
process.exit(report.errors.length === 0 && run.status === 0 ? 0 : 1);
