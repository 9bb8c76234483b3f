// What a `cel` rule adds to a request: `evaluate` of the bench's Pod CREATE under rules/default.yaml
// against the same RuleSet plus a typical three-validation cel rule on pods, in this process,
// alternating round by round so the machine's load falls on both. In-process on purpose: the
// rule's cost is a few microseconds, far below what the HTTP rounds of bench/admission.mjs resolve;
// /validate runs exactly this `evaluate`. Runs alone (`node bench/cel.mjs`) or from admission.mjs.
// Each round is timed twice: wall clock, and this process' CPU time (process.cpuUsage), which a
// shared machine's load inflates far less than the wall clock (time spent waiting for a core is
// not counted). Medians of the rounds; the figures that matter are the differences and ratios.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { loadRuleSetFile } from '../dist/config/ruleset-source.js';
import { compileRuleSet, evaluate } from '../dist/core/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ROUNDS = 15;
const PER_ROUND = 2000;

/** Three validations of the kinds teams write: images, labels, a spec field; all pass on the fixture. */
export const TYPICAL_CEL_RULE = {
  name: 'team-pod-policy',
  check: 'cel',
  params: {
    matchConstraints: {
      resourceRules: [
        { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods'] },
      ],
    },
    validations: [
      {
        expression:
          "object.spec.containers.all(c, c.image.startsWith('ghcr.io/portcullis/') || c.image.contains('@sha256:'))",
        messageExpression: "'untrusted image in pod ' + object.metadata.name",
      },
      {
        expression: "'app.kubernetes.io/name' in object.metadata.?labels.orValue({})",
        message: 'pods carry app.kubernetes.io/name',
      },
      { expression: '!object.spec.?hostNetwork.orValue(false)', message: 'no host network' },
    ],
  },
};

export async function measureCelRule() {
  const loaded = await loadRuleSetFile(join(ROOT, 'rules/default.yaml'));
  if (!loaded.ok) throw new Error(loaded.errors.join('; '));
  const document = loaded.loaded.ruleset.document;
  const withCel = compileRuleSet({ ...document, rules: [...document.rules, TYPICAL_CEL_RULE] });
  if (!withCel.ok) throw new Error(JSON.stringify(withCel.errors));
  const rulesets = { base: loaded.loaded.ruleset, cel: withCel.ruleset };
  const review = JSON.parse(readFileSync(join(ROOT, 'bench/fixtures/pod-create-review.json'), 'utf8'));
  // A fresh request each time (as JSON parsing gives the server): per-request views are rebuilt.
  const fresh = () => ({ ...review.request });
  for (const ruleset of Object.values(rulesets)) {
    const decision = evaluate(fresh(), ruleset);
    if (!decision.allowed) throw new Error(`the fixture is denied: ${JSON.stringify(decision.violations)}`);
  }
  const wallUs = { base: [], cel: [] };
  const cpuUs = { base: [], cel: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? ['base', 'cel'] : ['cel', 'base'];
    for (const name of order) {
      const ruleset = rulesets[name];
      const cpuBefore = process.cpuUsage();
      const begun = performance.now();
      for (let i = 0; i < PER_ROUND; i++) evaluate(fresh(), ruleset);
      wallUs[name].push(((performance.now() - begun) * 1000) / PER_ROUND);
      const cpu = process.cpuUsage(cpuBefore);
      cpuUs[name].push((cpu.user + cpu.system) / PER_ROUND);
    }
  }
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const summary = (us) => {
    const base = median(us.base);
    const cel = median(us.cel);
    return { evaluateUs: { base, withCelRule: cel }, addedUs: cel - base, ratio: cel / base };
  };
  return { validations: 3, ...summary(wallUs), cpu: summary(cpuUs) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await measureCelRule();
  const line = (what, m) =>
    `${what}: evaluate, rules/default.yaml: ${m.evaluateUs.base.toFixed(1)} µs; plus a 3-validation cel rule: ` +
    `${m.evaluateUs.withCelRule.toFixed(1)} µs (+${m.addedUs.toFixed(1)} µs, ratio ${m.ratio.toFixed(2)}; target: under +10 µs)\n`;
  process.stdout.write(line('wall clock', r) + line('CPU time  ', r.cpu));
  process.stdout.write(`${JSON.stringify({ celRule: r })}\n`);
}
