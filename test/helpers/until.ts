/**
 * Polls `probe` until it returns something other than `undefined` or `false`, and resolves with
 * it; rejects after `timeoutMs`, naming `what`. For what happens asynchronously (a watch opened, a
 * file reloaded, a batch sent), so no test sleeps a fixed time and hopes.
 */
export async function until<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (performance.now() > deadline) throw new Error(`${what} not met in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
