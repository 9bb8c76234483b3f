// `portcullis test`, driven as a process (bin/portcullis over dist/, which `npm test` builds first):
// the shipped default's own suite passes, a wrong expectation fails naming its case, a broken test
// file exits 2 with its file and line, and exceptions are tested the way a security team would.

import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import t from 'tap';
import { plainNode } from '../helpers/manifests.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = resolve(ROOT, 'bin/portcullis');

function portcullis(args: string[], cwd = ROOT) {
  const [command, argv] = plainNode([BIN, ...args]);
  return spawnSync(command, argv, { cwd, encoding: 'utf8' });
}

const RULESET = `apiVersion: portcullis.io/v1
kind: RuleSet
exceptionPolicy: { maxLifetimeDays: 60 }
exceptions:
  - name: legacy-exporter
    rules: [no-privileged]
    namespaces: [monitoring]
    names: [exporter]
    reason: "SEC-1234: needs the node's /proc until the eBPF exporter ships"
    granted: 2026-11-01
    expires: 2026-12-15
rules:
  - name: no-privileged
    check: privileged
`;
const pod = (name: string, namespace: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace },
  spec: { containers: [{ name: 'app', image: 'x.io/y', securityContext: { privileged: true } }] },
});
/** A test file; `rules` is relative to the file, as a team keeps tests beside the rules. */
const suite = (now: string, cases: unknown[], rules = '../rules.yaml') =>
  JSON.stringify({ apiVersion: 'portcullis.io/v1', kind: 'Test', rules, now, cases });

const dir = t.testdir({
  'rules.yaml': RULESET,
  'exceptions.test.yaml': suite(
    '2026-12-01T00:00:00Z',
    [
      {
        name: 'the workload the exception names',
        object: pod('exporter', 'monitoring'),
        expect: 'allow',
        rules: { 'no-privileged': 'excepted' },
      },
      {
        name: 'the same pod elsewhere',
        object: pod('exporter', 'default'),
        expect: 'deny',
        rules: { 'no-privileged': 'deny' },
      },
      { name: 'another pod beside it', object: pod('grafana', 'monitoring'), expect: 'deny' },
    ],
    'rules.yaml',
  ),
  expired: {
    'expired.test.yaml': suite('2026-12-15T00:00:00Z', [
      { name: 'the exception has expired', object: pod('exporter', 'monitoring'), expect: 'deny' },
    ]),
  },
  wrong: {
    'wrong.test.yaml': suite('2026-12-01T00:00:00Z', [
      { name: 'right', object: pod('a', 'default'), expect: 'deny' },
      { name: 'this expectation is wrong', object: pod('b', 'default'), expect: 'allow' },
    ]),
  },
  broken: {
    'bad-expect.test.yaml':
      'apiVersion: portcullis.io/v1\nkind: Test\nrules: ../rules.yaml\ncases:\n  - name: x\n    expect: maybe\n    object: {apiVersion: v1, kind: Pod}\n',
    'no-rules.test.yaml':
      'apiVersion: portcullis.io/v1\nkind: Test\nrules: missing.yaml\ncases:\n  - name: x\n    expect: allow\n    object: {apiVersion: v1, kind: Pod}\n',
  },
  empty: {},
  'pods.yaml': `${JSON.stringify(pod('exporter', 'monitoring'))}\n---\n${JSON.stringify(pod('grafana', 'monitoring'))}\n`,
});

t.test("the shipped default's own suite passes", async (t) => {
  const run = portcullis(['test', 'rules/']);
  t.equal(run.status, 0, run.stdout + run.stderr);
  t.match(run.stdout, /^(\d+) of \1 cases passed$/m);
  t.notMatch(run.stdout, /^FAIL/m);
});

t.test('exceptions: the named workload only, and only until it expires', async (t) => {
  const run = portcullis(['test', 'exceptions.test.yaml', 'expired'], dir);
  t.equal(run.status, 0, run.stdout + run.stderr);
  t.equal(run.stdout.match(/^PASS/gm)?.length, 4, 'four cases, all passed');
});

t.test('one wrong expectation fails, naming that case and what it got', async (t) => {
  const run = portcullis(['test', 'wrong'], dir);
  t.equal(run.status, 1);
  t.match(run.stdout, /^PASS .*: right \(Pod default\/a\)$/m);
  t.match(
    run.stdout,
    /^FAIL .*: this expectation is wrong \(Pod default\/b\)\n\s+expected allow, got deny \(container "app": securityContext\.privileged must not be true \[no-privileged\]\)$/m,
  );
  t.match(run.stdout, /^1 of 2 cases passed, 1 failed$/m);
  const junit = portcullis(['test', '-o', 'junit', 'wrong'], dir);
  t.equal(junit.status, 1);
  t.match(junit.stdout, /<testsuite name="[^"]*wrong\.test\.yaml" tests="2" failures="1" errors="0">/);
  t.match(
    junit.stdout,
    /<testcase [^>]*name="this expectation is wrong \(Pod default\/b\)"[^>]*>\s*<failure message="expected allow, got deny/,
  );
  const json = JSON.parse(portcullis(['test', '-o', 'json', 'wrong'], dir).stdout) as { summary: unknown };
  t.same(json.summary, { passed: 1, failed: 1, broken: 0 });
});

t.test('a broken test file exits 2 with its file, line and field', async (t) => {
  const run = portcullis(['test', 'broken'], dir);
  t.equal(run.status, 2);
  t.match(
    run.stderr,
    /broken\/bad-expect\.test\.yaml:6: cases\[0\]\.expect: must be one of: "allow", "deny", "warn", "audit"/,
  );
  t.match(
    run.stderr,
    /broken\/no-rules\.test\.yaml:3: rules: .*missing\.yaml: cannot read RuleSet \(ENOENT\)/,
  );
  const none = portcullis(['test', 'empty'], dir);
  t.equal(none.status, 2, 'no test files at all is not a pass');
  t.match(none.stderr, /no test files/);
});

t.test('check -o json shows the exception applied, and the same one expired', async (t) => {
  const at = (now: string) => {
    const run = portcullis(['check', '--rules', 'rules.yaml', '--now', now, '-o', 'json', 'pods.yaml'], dir);
    return { status: run.status, body: JSON.parse(run.stdout) as { results: Record<string, unknown>[] } };
  };
  const inForce = at('2026-12-01T00:00:00Z');
  t.equal(inForce.status, 1, 'grafana is still denied');
  t.match(inForce.body.results[0], {
    name: 'exporter',
    allowed: true,
    violations: [
      { rule: 'no-privileged', exception: { name: 'legacy-exporter', expires: '2026-12-15T00:00:00.000Z' } },
    ],
  });
  t.match(inForce.body.results[1], { name: 'grafana', allowed: false });
  const expired = at('2026-12-16T00:00:00Z');
  t.match(expired.body.results[0], {
    name: 'exporter',
    allowed: false,
    lapsedExceptions: [{ name: 'legacy-exporter', state: 'expired' }],
  });
});
