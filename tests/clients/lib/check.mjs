// A tiny check runner: named async checks run in order, each bounded by a timeout; one line per
// check; a summary `N passed, N failed`; exit code 1 when any failed. Every check runs even after
// a failure, so one run shows every failure.

import assert from 'node:assert/strict';

export { assert };

/** Rejects with a clear message when `promise` has not settled within `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Reads a required environment variable, or exits 2 with a usage message. */
export function env(name, { optional = false, fallback } = {}) {
  const value = process.env[name];
  if (value === undefined || value === '') {
    if (optional) return fallback;
    console.error(`missing environment variable ${name}`);
    process.exit(2);
  }
  return value;
}

/** A message for any thrown value (assertion errors keep their diff short). */
export function describe(error) {
  if (error instanceof assert.AssertionError) {
    return error.message.split('\n').slice(0, 12).join('\n');
  }
  if (error instanceof Error) {
    const cause = error.cause ? ` (cause: ${describe(error.cause)})` : '';
    return `${error.name}: ${error.message}${cause}`;
  }
  return String(error);
}

/**
 * Runs `checks` (`[name, async fn]` pairs, or functions whose `.name` is used) in order. A
 * check passes when it resolves; what it resolves to (a string) is printed after its name. A
 * check may call `warn(text)` (its second argument) to print a warning line without failing.
 */
export async function runChecks(title, checks, { timeoutMs = 30_000, teardown } = {}) {
  const failures = [];
  let passed = 0;
  console.log(`# ${title}`);
  for (const entry of checks) {
    const [name, fn] = Array.isArray(entry) ? entry : [entry.name, entry];
    const warn = (text) => console.log(`warn ${name}: ${text}`);
    const started = Date.now();
    try {
      const note = await withTimeout(Promise.resolve().then(() => fn({ warn })), timeoutMs, name);
      passed += 1;
      const ms = Date.now() - started;
      console.log(`ok   ${name}${note ? ` — ${note}` : ''} (${ms} ms)`);
    } catch (error) {
      failures.push(name);
      console.log(`FAIL ${name}: ${describe(error)}`);
    }
  }
  if (teardown) {
    try {
      await withTimeout(Promise.resolve().then(teardown), 10_000, 'teardown');
    } catch (error) {
      console.log(`warn teardown: ${describe(error)}`);
    }
  }
  console.log('');
  if (failures.length > 0) console.log(`failed: ${failures.join(', ')}`);
  console.log(`${passed} passed, ${failures.length} failed`);
  return failures.length === 0;
}

/** Runs the checks and exits with 0 (all passed) or 1; a watchdog bounds the whole run. */
export async function main(title, checks, options = {}) {
  const { totalTimeoutMs = 300_000 } = options;
  const watchdog = setTimeout(() => {
    console.log(`FAIL ${title}: the whole run exceeded ${totalTimeoutMs} ms`);
    process.exit(1);
  }, totalTimeoutMs);
  watchdog.unref();
  let ok = false;
  try {
    ok = await runChecks(title, checks, options);
  } catch (error) {
    console.log(`FAIL ${title}: ${describe(error)}`);
  }
  // Exit explicitly: a stray socket or browser handle must not keep the process alive.
  process.exit(ok ? 0 : 1);
}
