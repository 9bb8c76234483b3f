// Keeps the list of checks honest: every check in CHECKS has a unique id, its own module whose
// header names it, a table of tests, and a section in the README.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import t from 'tap';
import { CHECKS, isObject, type CheckDefinition } from '../../src/core/index.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CHECKS_DIR = resolve(ROOT, 'src/core/checks');
const MODULES = readdirSync(CHECKS_DIR)
  .filter((f) => f.endsWith('.ts') && f !== 'index.ts')
  .map((f) => f.slice(0, -'.ts'.length))
  .sort();

const isCheck = (value: unknown): value is CheckDefinition =>
  typeof value === 'object' && value !== null && 'id' in value && 'compileParams' in value;

t.test('ids are unique and each is the key it is listed under', async (t) => {
  const ids = [...CHECKS.values()].map((c) => c.id);
  t.same(ids, [...new Set(ids)], 'no id twice');
  for (const [key, check] of CHECKS) t.equal(check.id, key, `CHECKS["${key}"]`);
  t.ok(CHECKS.size > 0);
});

t.test('one module per check, named after its id, and every module is listed', async (t) => {
  // A Map silently keeps the last of two checks with the same id: counting the modules catches it.
  t.same([...CHECKS.keys()].sort(), MODULES, 'src/core/checks/*.ts and CHECKS name the same checks');
  for (const name of MODULES) {
    const module: unknown = await import(`../../src/core/checks/${name}.js`);
    const exported = Object.values(isObject(module) ? module : {});
    const checks = exported.filter(isCheck);
    t.equal(checks.length, 1, `src/core/checks/${name}.ts exports one check`);
    t.equal(checks[0]?.id, name, `src/core/checks/${name}.ts defines the check "${name}"`);
    t.equal(checks[0], CHECKS.get(name), `CHECKS holds the check of src/core/checks/${name}.ts`);
  }
});

for (const id of CHECKS.keys()) {
  t.test(`check ${id}`, async (t) => {
    const source = readFileSync(resolve(CHECKS_DIR, `${id}.ts`), 'utf8');
    const header = /^\/\*([\s\S]*?)\*\//.exec(source)?.[1] ?? '';
    const firstLine = header
      .split('\n')
      .map((line) => line.replace(/^\s*\*\s?/, '').trim())
      .find((line) => line !== '');
    t.match(firstLine, new RegExp(`^Check: ${id}\\b`), `src/core/checks/${id}.ts opens with "Check: ${id}"`);
    t.match(header, /Params:/, 'the header states the params');
    // Versions are real (pod-security-admission's MinimumVersion): the header lists the ones defined.
    const versions = /Versions: ([^\n]*)/.exec(header)?.[1]?.replace(/\.$/, '').split(/,\s*/);
    t.same(versions, CHECKS.get(id)?.versions, 'the header\'s "Versions:" line lists the check\'s versions');

    t.ok(
      existsSync(resolve(ROOT, `test/core/checks/${id}.test.ts`)),
      `test/core/checks/${id}.test.ts exists`,
    );

    const readme = resolve(ROOT, 'README.md');
    if (!existsSync(readme)) {
      t.fail(`README.md is missing: it must document the check "${id}" (a heading or \`${id}\`)`);
      return;
    }
    const text = readFileSync(readme, 'utf8');
    const heading = new RegExp(`^#+ .*\\b${id}\\b`, 'm').test(text);
    t.ok(heading || text.includes(`\`${id}\``), `README.md documents "${id}" (a heading or \`${id}\`)`);
  });
}
