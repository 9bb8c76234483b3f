// RuleSet sources have bounds: a text over 256 KiB is refused before it is
// parsed, a file over it before it is read, and aliases may not expand a document past its own
// size. Refused with a clear message through the same gate as any broken edit: the last good
// RuleSet stays, nothing crashes.

import { mkdtemp, open, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseDocuments } from '../../src/config/documents.js';
import { watchRulesFile } from '../../src/config/rules-file-watch.js';
import { loadRuleSetFile, MAX_RULESET_BYTES, parseRuleSet } from '../../src/config/ruleset-source.js';
import { captureLog } from '../helpers/log.js';
import { Recorder, rulesText } from '../helpers/ruleset-recorder.js';

const dir = await mkdtemp(join(tmpdir(), 'portcullis-bounds-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const tooLarge = (origin: string, bytes: number) =>
  `${origin}: is ${bytes} bytes, over the ${MAX_RULESET_BYTES} bytes (256 KiB) a RuleSet may have`;

/** A valid RuleSet padded with a comment to exactly `bytes` bytes. */
function padded(bytes: number): string {
  const text = rulesText('acme');
  return `${text}#${'x'.repeat(bytes - Buffer.byteLength(text) - 2)}\n`;
}

/**
 * `aliases` aliases of one anchored list of `items` strings, in a RuleSet's params: under the alias
 * count yaml allows, and a few hundred KB of text, but tens of MB once expanded.
 */
function aliasBomb(items: number, aliases: number): string {
  const list = Array.from({ length: items }, () => '"aaaaaa"').join(',');
  const refs = Array.from({ length: aliases }, (_, i) => `    y${i}: *big\n`).join('');
  return `apiVersion: portcullis.io/v1\nkind: RuleSet\nrules:\n- name: a\n  check: privileged\n  params:\n    x: &big [${list}]\n${refs}`;
}

t.test('size: at the limit is parsed, one byte over is refused unparsed', async (t) => {
  t.equal(Buffer.byteLength(padded(MAX_RULESET_BYTES)), MAX_RULESET_BYTES);
  t.ok(parseRuleSet(padded(MAX_RULESET_BYTES), 'rules.yaml').ok, 'exactly 1 MiB loads');
  t.same(parseRuleSet(padded(MAX_RULESET_BYTES + 1), 'rules.yaml'), {
    ok: false,
    errors: [tooLarge('rules.yaml', MAX_RULESET_BYTES + 1)],
  });
  // Bytes, not characters: 100,000 three-byte characters are 300 KB.
  const wide = `${rulesText('acme')}#${'€'.repeat(100_000)}\n`;
  t.same(parseRuleSet(wide, 'rules.yaml'), {
    ok: false,
    errors: [tooLarge('rules.yaml', Buffer.byteLength(wide))],
  });
});

t.test('a 51 MB broken file is refused from its size, without being read', async (t) => {
  const path = join(dir, 'huge.yaml');
  const file = await open(path, 'w');
  await file.truncate(51_000_000); // sparse: its size is all there is to see
  await file.close();
  const rssBefore = process.memoryUsage().rss;
  t.same(await loadRuleSetFile(path), { ok: false, errors: [tooLarge(path, 51_000_000)] });
  t.ok(process.memoryUsage().rss - rssBefore < 20_000_000, 'nothing the size of the file was allocated');
});

t.test('alias expansion is bounded, whatever the alias count', async (t) => {
  const bomb = aliasBomb(25_000, 98);
  t.ok(
    Buffer.byteLength(bomb) < MAX_RULESET_BYTES,
    `the bomb is ${bomb.length} bytes, within the size bound`,
  );
  const started = performance.now();
  const load = parseRuleSet(bomb, 'rules.yaml');
  t.same(load, {
    ok: false,
    errors: [
      `rules.yaml:1:1: aliases expand this document by more than ${bomb.length} characters, more than its own text: write the values out or use fewer aliases`,
    ],
  });
  t.comment(`refused in ${Math.round(performance.now() - started)} ms`);

  // Nested aliases (billion laughs) within yaml's own alias count: refused by the expansion bound.
  let laughs = 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n';
  for (let i = 1; i < 9; i++)
    laughs += `a${i}: &a${i} [${Array.from({ length: 9 }, () => `*a${i - 1}`).join(', ')}]\n`;
  const parsed = parseDocuments(laughs);
  t.equal(parsed.ok, false, 'billion laughs refused');

  // Distractors: ordinary reuse is fine, and a `*` that is not an alias costs nothing.
  const reuse = `${rulesText('acme')}x-registries: &regs [registry.k8s.io, ghcr.io/acme]\ny: *regs\nz: *regs\n`;
  t.ok(parseDocuments(reuse).ok, 'a block reused twice is parsed');
  t.ok(parseDocuments(`a: ['*', "*", 'x*y']\n`).ok, 'stars in strings are not aliases');
  // Expansion up to the document's own size is allowed: a 200 KB list aliased once.
  t.ok(parseDocuments(aliasBomb(10_000, 1)).ok, 'one alias of a large node is parsed');
  t.equal(parseDocuments(aliasBomb(10_000, 2)).ok, false, 'two double the document: refused');
});

t.test('the file watcher refuses an oversize edit and keeps the last good RuleSet', async (t) => {
  const path = join(dir, 'rules.yaml');
  // Replaced whole, as the kubelet does: a poll never reads a half-written file.
  const replace = async (text: string) => {
    await writeFile(`${path}.tmp`, text);
    await rename(`${path}.tmp`, path);
  };
  await writeFile(path, rulesText('acme'));
  const recorder = new Recorder();
  const captured = captureLog();
  const watch = await watchRulesFile({
    path,
    log: captured.log,
    onRuleSet: recorder.onRuleSet,
    onInvalid: recorder.onInvalid,
    pollIntervalMs: 200,
  });
  t.teardown(() => watch.stop());
  t.equal((await recorder.next()).kind, 'ruleset');

  await replace(padded(2 * MAX_RULESET_BYTES));
  const refused = await recorder.next(15_000);
  t.same(refused.kind === 'invalid' && refused.errors, [tooLarge(path, 2 * MAX_RULESET_BYTES)]);
  t.same(await recorder.during(500), [], 'refused once, not on every poll');

  await replace(aliasBomb(25_000, 98));
  const bomb = await recorder.next(15_000);
  t.match(bomb.kind === 'invalid' && bomb.errors, [
    /^.+rules\.yaml:1:1: aliases expand this document by more than /,
  ]);

  await replace(rulesText('fixed'));
  t.equal((await recorder.next(15_000)).kind, 'ruleset', 'the fix loads');
});
