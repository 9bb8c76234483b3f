// `serve --rules PATH` on a real temp directory: the kubelet's projection of a ConfigMap volume done
// step by step as its AtomicWriter does it, a broken edit, plain edits, the poll fallback.

import { mkdir, mkdtemp, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import t from 'tap';
import { watchRulesFile, type RulesWatch } from '../../src/config/rules-file-watch.js';
import { captureLog } from '../helpers/log.js';
import { BROKEN_RULES_ERROR, brokenRulesText, Recorder, rulesText } from '../helpers/ruleset-recorder.js';

/** What these helpers need of a tap test. */
interface Teardown {
  teardown(fn: () => unknown): void;
}

async function tempDir(t: Teardown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-rules-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

let generation = 0;

/**
 * What the kubelet does to a ConfigMap volume on every update (pkg/volume/util/atomic_writer.go):
 * the files in a new `..<timestamp>` directory, a `..data_tmp` symlink to it renamed over `..data`,
 * a `KEY -> ..data/KEY` symlink per key (made once), the previous timestamped directory removed.
 * Returns the moment of the swap: the update is visible from then on.
 */
async function project(dir: string, files: Record<string, string>): Promise<number> {
  generation += 1;
  const stamp = `..2026_11_23_10_00_${String(generation % 60).padStart(2, '0')}.${100 + generation}`;
  await mkdir(join(dir, stamp));
  for (const [key, text] of Object.entries(files)) await writeFile(join(dir, stamp, key), text);
  const previous = await readlink(join(dir, '..data')).catch(() => undefined);
  await symlink(stamp, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  const swappedAt = performance.now();
  for (const key of Object.keys(files)) {
    await symlink(join('..data', key), join(dir, key)).catch((err: unknown) => {
      if (!(err instanceof Error && 'code' in err && err.code === 'EEXIST')) throw err;
    });
  }
  if (previous !== undefined) await rm(join(dir, previous), { recursive: true });
  return swappedAt;
}

function stats(latencies: number[]): string {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return `n=${sorted.length} min=${at(0).toFixed(1)} ms median=${at(0.5).toFixed(1)} ms max=${at(1).toFixed(1)} ms`;
}

async function start(t: Teardown, path: string, extra: { fsWatch?: boolean; pollIntervalMs?: number } = {}) {
  const recorder = new Recorder();
  const captured = captureLog();
  const watch: RulesWatch = await watchRulesFile({
    path,
    log: captured.log,
    onRuleSet: recorder.onRuleSet,
    onInvalid: recorder.onInvalid,
    ...extra,
  });
  t.teardown(() => watch.stop());
  return { recorder, captured, watch };
}

for (const via of ['directory', 'rules.yaml symlink'] as const) {
  t.test(`kubelet ConfigMap projection, --rules naming the ${via}`, async (t) => {
    const dir = await tempDir(t);
    await project(dir, { 'rules.yaml': rulesText('team-0'), 'other-key': 'x' });
    const { recorder, captured } = await start(t, via === 'directory' ? dir : join(dir, 'rules.yaml'));
    const origin = join(dir, 'rules.yaml');

    const first = await recorder.next();
    t.equal(first.kind, 'ruleset', 'the initial RuleSet is delivered before watchRulesFile resolves');
    t.equal(first.kind === 'ruleset' && first.loaded.origin, origin);

    const latencies: number[] = [];
    let lastGood = '';
    for (let i = 1; i <= 10; i++) {
      const swappedAt = await project(dir, { 'rules.yaml': rulesText(`team-${i}`), 'other-key': 'x' });
      const d = await recorder.next();
      t.equal(d.kind, 'ruleset', `update ${i} is loaded`);
      if (d.kind === 'ruleset') lastGood = d.loaded.hash;
      latencies.push(d.at - swappedAt);
    }
    t.comment(`reload latency after the ..data swap: ${stats(latencies)}`);
    t.ok(Math.max(...latencies) < 1000, 'every reload well under 1 s');
    t.same(await recorder.during(300), [], 'one update, one delivery (the debounce merges the dance)');

    // A broken edit: refused with the exact field, nothing replaces the last good RuleSet.
    await project(dir, { 'rules.yaml': brokenRulesText() });
    const refused = await recorder.next();
    t.same(refused.kind === 'invalid' && refused.errors, [`${origin}:9: ${BROKEN_RULES_ERROR}`]);
    t.same(await recorder.during(300), [], 'no RuleSet delivered for the broken edit');
    const logged = captured
      .lines()
      .find((l) => l['msg'] === 'RuleSet refused; the last good RuleSet stays in force');
    t.same(
      logged?.['errors'],
      [`${origin}:9: ${BROKEN_RULES_ERROR}`],
      'the refusal is logged with the field',
    );

    // Restoring the content in force is delivered: it ends the failure.
    await project(dir, { 'rules.yaml': rulesText('team-10') });
    const restored = await recorder.next();
    t.equal(restored.kind === 'ruleset' && restored.loaded.hash, lastGood);

    // Only a comment changes: same hash, nothing delivered.
    await project(dir, { 'rules.yaml': rulesText('team-10', 'reworded comment') });
    t.same(await recorder.during(400), [], 'a comment-only edit is not a new RuleSet');
  });
}

t.test('a plain file edited in place and replaced by rename, as editors do', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'portcullis-rules.yaml');
  await writeFile(file, rulesText('a'));
  const { recorder } = await start(t, file);
  t.equal((await recorder.next()).kind, 'ruleset');

  const latencies: number[] = [];
  for (let i = 0; i < 5; i++) {
    const before = performance.now();
    await writeFile(file, rulesText(`in-place-${i}`));
    const d = await recorder.next();
    t.equal(d.kind, 'ruleset', `in-place write ${i}`);
    latencies.push(d.at - before);

    const tmp = join(dir, `.portcullis-rules.yaml.swp${i}`);
    await writeFile(tmp, rulesText(`renamed-${i}`));
    const swapped = performance.now();
    await rename(tmp, file);
    const e = await recorder.next();
    t.equal(e.kind, 'ruleset', `rename over the file ${i}`);
    latencies.push(e.at - swapped);
  }
  t.comment(`reload latency after a plain edit: ${stats(latencies)}`);
  t.ok(Math.max(...latencies) < 1000);

  await writeFile(file, brokenRulesText());
  const refused = await recorder.next();
  t.same(refused.kind === 'invalid' && refused.errors, [`${file}:9: ${BROKEN_RULES_ERROR}`]);
});

t.test('a missing file is refused, then loaded once it appears', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'rules.yaml');
  const { recorder } = await start(t, file);
  const missing = await recorder.next();
  t.same(missing.kind === 'invalid' && missing.errors, [`${file}: cannot read RuleSet (ENOENT)`]);
  await writeFile(file, rulesText('late'));
  t.equal((await recorder.next()).kind, 'ruleset');
});

t.test('without fs.watch events the poll still finds the change', async (t) => {
  const dir = await tempDir(t);
  await project(dir, { 'rules.yaml': rulesText('p0') });
  const { recorder } = await start(t, dir, { fsWatch: false, pollIntervalMs: 100 });
  t.equal((await recorder.next()).kind, 'ruleset');
  await project(dir, { 'rules.yaml': rulesText('p1') });
  t.equal((await recorder.next(1_000)).kind, 'ruleset');
  t.same(await recorder.during(350), [], 'polling an unchanged file delivers nothing');
});

t.test('stop() ends the watch: later edits are not delivered', async (t) => {
  const dir = await tempDir(t);
  await project(dir, { 'rules.yaml': rulesText('s0') });
  const { recorder, watch } = await start(t, dir);
  t.equal((await recorder.next()).kind, 'ruleset');
  await watch.stop();
  await project(dir, { 'rules.yaml': rulesText('s1') });
  t.same(await recorder.during(400), []);
});
