// The tiny test runner of the browser and unit tests: every test runs (a failure does not stop the
// others) and the summary is one line, `N passed, M failed`. TEST_ONLY=regex picks tests by name.

export const results = [];

export async function test(name, fn) {
  // TEST_ONLY=regex runs only the tests whose names match (for working on one; CI runs them all).
  if (process.env.TEST_ONLY && !new RegExp(process.env.TEST_ONLY).test(name)) return;
  const started = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`FAIL ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)\n     ${(e && e.stack) || e}`);
  }
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Prints the summary line and ends the process (a pending timer must not keep node alive). */
export function finish() {
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
