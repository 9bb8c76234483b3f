// `portcullis check`, in-process through runCheck and as the shipped binary. Inputs include objects
// printed by the real kubectl, so the CLI is tested on what people will actually pipe into it.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Readable } from 'node:stream';
import t from 'tap';
import { runCheck, type CheckOptions, type CheckRun } from '../../src/cli/check.js';
import { DEFAULT_RULES_PATH } from '../../src/config/ruleset-source.js';
import { isObject } from '../../src/core/index.js';
import { KNOWN_CHECKS } from '../helpers/rules.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = resolve(ROOT, 'bin/portcullis');
const KNOWN = KNOWN_CHECKS;

/** The value at `path` in parsed JSON, or undefined; keeps the tests free of casts. */
function at(value: unknown, ...path: (string | number)[]): unknown {
  let node = value;
  for (const key of path) {
    if (typeof key === 'number') node = Array.isArray(node) ? (node[key] as unknown) : undefined;
    else node = isObject(node) ? node[key] : undefined;
  }
  return node;
}
const list = (value: unknown): unknown[] => (Array.isArray(value) ? (value as unknown[]) : []);
/** 1-based line of the first line of `text` that contains `needle`, after line `after`. */
const lineOf = (text: string, needle: string, after = 0): number =>
  text.split('\n').findIndex((line, i) => i >= after && line.includes(needle)) + 1;

const RULES = `apiVersion: portcullis.io/v1
kind: RuleSet
exemptions:
  namespaces: [kube-system]
rules:
  - name: no-privileged
    check: privileged
  - name: trusted
    check: trustedRegistries
    params:
      registries: [registry.k8s.io]
  - name: seccomp-audit
    check: seccomp
    action: audit
    params: {mutate: false}
  - name: no-cluster-admin
    check: clusterAdminBinding
`;

const podYaml = (name: string, extra = '') => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  securityContext:
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: app
      image: registry.k8s.io/pause:3.10
${extra}`;
const PRIVILEGED_EXTRA = '      securityContext:\n        privileged: true\n';

const MIXED = `# Three objects, in this order.
${podYaml('ok')}---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: team
spec:
  template:
    spec:
      securityContext:
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: app
          image: registry.k8s.io/pause:3.10
          securityContext:
            privileged: true
---
apiVersion: v1
kind: Pod
metadata:
  name: audited
spec:
  containers:
    - name: app
      image: registry.k8s.io/pause:3.10
`;

const LIST = `apiVersion: v1
kind: List
metadata:
  resourceVersion: ""
items:
- apiVersion: v1
  kind: Pod
  metadata:
    name: a
    namespace: apps
  spec:
    securityContext: {seccompProfile: {type: RuntimeDefault}}
    containers:
    - name: app
      image: registry.k8s.io/pause:3.10
- apiVersion: v1
  kind: Pod
  metadata:
    name: b
    namespace: apps
  spec:
    securityContext: {seccompProfile: {type: RuntimeDefault}}
    containers:
    - name: app
      image: docker.io/library/busybox
`;

const privilegedPod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', namespace: 'default' },
  spec: {
    securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
    containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10', securityContext: { privileged: true } }],
  },
};
const review = (operation: string, namespace: string, fields: Record<string, unknown>) =>
  JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '2b752327-a529-4ffd-b2e2-478455e0e4f6',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      name: 'p',
      namespace,
      operation,
      userInfo: { username: 'alice', groups: ['system:authenticated'] },
      ...fields,
    },
  });

const dir = t.testdir({
  'rules.yaml': RULES,
  'bad-rules.yaml': RULES.replace('check: clusterAdminBinding', 'check: privilegd'),
  'ok.yaml': podYaml('ok'),
  'mixed.yaml': MIXED,
  'list.yaml': LIST,
  'delete-review.json': review('DELETE', 'default', { object: null, oldObject: privilegedPod }),
  'exempt-review.json': review('CREATE', 'kube-system', { object: privilegedPod }),
  'create-review.json': review('CREATE', 'default', { object: privilegedPod }),
  'duplicate-key.yaml': 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  name: b\n',
  'tabs.yaml': 'apiVersion: v1\nkind: Pod\nmetadata:\n\tname: p\n',
  'not-an-object.yaml': `${podYaml('ok')}---\n- just\n- a list\n`,
  tree: {
    'c.yaml': podYaml('c'),
    'a.yml': podYaml('a', PRIVILEGED_EXTRA),
    b: { 'nested.json': JSON.stringify(privilegedPod) },
    'notes.txt': podYaml('ignored', PRIVILEGED_EXTRA),
    'README.md': '# not a manifest\n',
  },
});
const file = (name: string) => join(dir, name);
const RULES_FILE = file('rules.yaml');

async function check(
  paths: string[],
  options: Partial<CheckOptions> = {},
  stdin: NodeJS.ReadableStream = Readable.from([]),
): Promise<CheckRun> {
  return runCheck(paths, { rules: RULES_FILE, output: 'json', namespace: 'default', ...options }, stdin);
}
const json = (run: CheckRun): unknown => JSON.parse(run.output);

t.test('exit codes', async (t) => {
  const rows: [name: string, paths: string[], options: Partial<CheckOptions>, exitCode: number][] = [
    ['nothing denied', [file('ok.yaml')], {}, 0],
    ['something denied', [file('ok.yaml'), file('mixed.yaml')], {}, 1],
    ['unreadable input', [file('missing.yaml')], {}, 2],
    ['invalid YAML', [file('duplicate-key.yaml')], {}, 2],
    ['invalid RuleSet', [file('ok.yaml')], { rules: file('bad-rules.yaml') }, 2],
    ['the shipped default RuleSet', [file('ok.yaml')], { rules: DEFAULT_RULES_PATH }, 0],
  ];
  for (const [name, paths, options, exitCode] of rows) {
    t.equal((await check(paths, { output: 'table', ...options })).exitCode, exitCode, name);
  }
});

t.test('-o json has the shape of issue 2, results in input order', async (t) => {
  const run = await check([file('ok.yaml'), file('mixed.yaml')]);
  t.equal(run.exitCode, 1);
  t.same(run.errors, []);
  const mixed = file('mixed.yaml');
  t.strictSame(json(run), {
    results: [
      {
        source: `${file('ok.yaml')}#0`,
        apiVersion: 'v1',
        kind: 'Pod',
        namespace: 'default',
        name: 'ok',
        allowed: true,
        violations: [],
      },
      {
        source: `${mixed}#0`,
        apiVersion: 'v1',
        kind: 'Pod',
        namespace: 'default',
        name: 'ok',
        allowed: true,
        violations: [],
      },
      {
        source: `${mixed}#1`,
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        namespace: 'team',
        name: 'web',
        allowed: false,
        violations: [
          {
            rule: 'no-privileged',
            check: 'privileged',
            action: 'deny',
            message: 'container "app": securityContext.privileged must not be true',
            field: 'spec.template.spec.containers[0].securityContext.privileged',
            line: lineOf(MIXED, 'privileged: true'),
          },
        ],
      },
      {
        source: `${mixed}#2`,
        apiVersion: 'v1',
        kind: 'Pod',
        namespace: 'default',
        name: 'audited',
        allowed: true,
        violations: [
          {
            rule: 'seccomp-audit',
            check: 'seccomp',
            action: 'audit',
            message:
              'pod or container "app": securityContext.seccompProfile.type must be set to RuntimeDefault or Localhost',
            field: 'spec.securityContext.seccompProfile.type',
            // The deepest field that exists: the pod spec of the third document, at its key's line.
            line: lineOf(MIXED, 'spec:', lineOf(MIXED, 'name: audited')),
          },
        ],
      },
    ],
    errors: [],
    summary: { objects: 4, denied: 1, warned: 0, audited: 1, allowed: 2, skipped: 0, unreadable: 0 },
  });

  // The keys issue 2 names come in its order (extra keys may follow them).
  const spec = ['source', 'apiVersion', 'kind', 'namespace', 'name', 'allowed', 'violations'];
  const result = at(json(run), 'results', 2);
  t.same(
    Object.keys(isObject(result) ? result : {}).filter((k) => spec.includes(k)),
    spec,
  );
  const violation = at(result, 'violations', 0);
  t.same(Object.keys(isObject(violation) ? violation : {}).slice(0, 4), [
    'rule',
    'check',
    'action',
    'message',
  ]);
});

t.test('-o sarif is SARIF 2.1.0 with results located in the file', async (t) => {
  const mixed = file('mixed.yaml');
  const run = await check([mixed], { output: 'sarif' });
  t.equal(run.exitCode, 1);
  const log = json(run);
  t.equal(at(log, 'version'), '2.1.0');
  t.match(at(log, '$schema'), /sarif-2\.1\.0/);
  t.equal(list(at(log, 'runs')).length, 1);
  const driver = at(log, 'runs', 0, 'tool', 'driver');
  t.equal(at(driver, 'name'), 'portcullis');
  t.type(at(driver, 'version'), 'string');
  const rules = list(at(driver, 'rules'));
  t.same(
    rules.map((r) => at(r, 'id')),
    ['no-privileged', 'trusted', 'seccomp-audit', 'no-cluster-admin', 'malformed-object'],
    'one reportingDescriptor per rule (and one for unreadable objects)',
  );
  for (const r of rules)
    t.type(at(r, 'shortDescription', 'text'), 'string', `rule ${String(at(r, 'id'))} is described`);

  const results = list(at(log, 'runs', 0, 'results'));
  t.same(
    results.map((r) => [
      at(r, 'ruleId'),
      at(r, 'level'),
      at(r, 'locations', 0, 'physicalLocation', 'artifactLocation', 'uri'),
      at(r, 'locations', 0, 'physicalLocation', 'region', 'startLine'),
    ]),
    [
      ['no-privileged', 'error', relative(ROOT, mixed), lineOf(MIXED, 'privileged: true')],
      [
        'seccomp-audit',
        'note',
        relative(ROOT, mixed),
        lineOf(MIXED, 'spec:', lineOf(MIXED, 'name: audited')),
      ],
    ],
    'locations relative to the working directory, so code-scanning UIs can place them',
  );
  t.same(
    results.map((r) => at(r, 'locations', 0, 'physicalLocation', 'artifactLocation', 'uriBaseId')),
    ['%SRCROOT%', '%SRCROOT%'],
  );
  t.equal(
    at(log, 'runs', 0, 'originalUriBaseIds', '%SRCROOT%', 'uri'),
    pathToFileURL(`${ROOT}/`).href,
    '%SRCROOT% is the working directory',
  );
  t.equal(at(log, 'runs', 0, 'invocations', 0, 'executionSuccessful'), true);
  for (const r of results) {
    const index = at(r, 'ruleIndex');
    t.equal(
      typeof index === 'number' ? at(rules[index], 'id') : undefined,
      at(r, 'ruleId'),
      'ruleIndex points at its rule',
    );
    t.type(at(r, 'message', 'text'), 'string');
  }
  t.match(
    at(results[0], 'message', 'text'),
    /container "app": securityContext\.privileged must not be true \[no-privileged\]/,
  );
});

t.test('the table: one row per violation, then a summary line', async (t) => {
  const run = await check([file('mixed.yaml')], { output: 'table' });
  const lines = run.output.trimEnd().split('\n');
  t.match(lines[0], /^LOCATION\s+OBJECT\s+RULE\s+ACTION\s+MESSAGE$/);
  t.match(
    lines[1],
    new RegExp(
      `^${file('mixed.yaml')}:${lineOf(MIXED, 'privileged: true')}\\s+Deployment team/web\\s+no-privileged\\s+deny\\s+container "app": securityContext.privileged must not be true$`,
    ),
  );
  t.match(lines[2], /\s+Pod default\/audited\s+seccomp-audit\s+audit\s+pod or container "app"/);
  t.equal(lines.at(-1), '3 objects checked: 1 denied, 0 warned, 1 audited, 1 allowed, 0 skipped');
  t.equal(
    (await check([file('ok.yaml')], { output: 'table' })).output,
    '1 object checked: 0 denied, 0 warned, 0 audited, 1 allowed, 0 skipped\n',
  );
});

t.test('directories are read recursively: .yaml, .yml and .json only, sorted', async (t) => {
  const run = await check([file('tree')]);
  const tree = file('tree');
  t.same(
    list(at(json(run), 'results')).map((r) => [at(r, 'source'), at(r, 'allowed')]),
    [
      [`${tree}/a.yml#0`, false],
      [`${tree}/b/nested.json#0`, false],
      [`${tree}/c.yaml#0`, true],
    ],
  );
  t.equal(run.exitCode, 1);
});

t.test('- reads stdin', async (t) => {
  const run = await check(['-'], {}, Readable.from([podYaml('from-stdin', PRIVILEGED_EXTRA)]));
  t.equal(run.exitCode, 1);
  t.match(list(at(json(run), 'results')), [{ source: '<stdin>#0', name: 'from-stdin', allowed: false }]);
});

t.test('a kind: List is unpacked item by item', async (t) => {
  const run = await check([file('list.yaml')]);
  t.equal(run.exitCode, 1);
  const results = list(at(json(run), 'results'));
  t.same(
    results.map((r) => [at(r, 'source'), at(r, 'namespace'), at(r, 'name'), at(r, 'allowed')]),
    [
      [`${file('list.yaml')}#0.items[0]`, 'apps', 'a', true],
      [`${file('list.yaml')}#0.items[1]`, 'apps', 'b', false],
    ],
  );
  t.match(at(results[1], 'violations'), [
    {
      rule: 'trusted',
      message: 'container "app": image "docker.io/library/busybox" is not from a trusted registry',
      field: 'spec.containers[0].image',
      line: lineOf(LIST, 'image: docker.io/library/busybox'),
    },
  ]);
});

t.test('an AdmissionReview is judged as its request', async (t) => {
  const rows: [name: string, exitCode: number, expected: Record<string, unknown>][] = [
    ['delete-review.json', 0, { allowed: true, skipped: 'DELETE is not judged', violations: [] }],
    [
      'exempt-review.json',
      0,
      {
        allowed: true,
        namespace: 'kube-system',
        skipped: 'namespace "kube-system" matches exemptions.namespaces',
      },
    ],
    [
      'create-review.json',
      1,
      {
        allowed: false,
        namespace: 'default',
        violations: [{ rule: 'no-privileged', field: 'spec.containers[0].securityContext.privileged' }],
      },
    ],
  ];
  for (const [name, exitCode, expected] of rows) {
    const run = await check([file(name)]);
    t.equal(run.exitCode, exitCode, name);
    t.match(
      list(at(json(run), 'results')),
      [{ source: `${file(name)}#0`, kind: 'Pod', name: 'p', ...expected }],
      name,
    );
  }
});

t.test('a saved AdmissionReview of a CONNECT is judged as the webhook judges it', async (t) => {
  const captured = readFileSync(
    new URL('../fixtures/admission/pod-exec-connect.json', import.meta.url),
    'utf8',
  );
  // What someone pastes from an audit trail: only what says who ran what, where.
  const trimmed = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      operation: 'CONNECT',
      name: 'web',
      namespace: 'shop',
      userInfo: { username: 'bob' },
      object: {
        kind: 'PodExecOptions',
        apiVersion: 'v1',
        container: 'app',
        command: ['nsenter', '-t', '1', 'sh'],
      },
    },
  });
  const attach = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      operation: 'CONNECT',
      name: 'web',
      object: { kind: 'PodAttachOptions', apiVersion: 'v1', stdin: true, tty: true },
    },
  });
  const connect = t.testdir({
    'captured.json': captured,
    'trimmed.json': trimmed,
    'attach.json': attach,
    'labels.yaml': `apiVersion: portcullis.io/v1
kind: RuleSet
rules:
  - name: debuggable-only
    check: podExec
    params: { podSelector: { matchLabels: { debuggable: 'true' } }, allowInteractive: false }
`,
  });
  const shipped = await check(
    [join(connect, 'captured.json'), join(connect, 'trimmed.json'), join(connect, 'attach.json')],
    {
      rules: DEFAULT_RULES_PATH,
    },
  );
  t.equal(shipped.exitCode, 1);
  t.match(list(at(json(shipped), 'results')), [
    {
      kind: 'PodExecOptions',
      namespace: 'default',
      name: 'web',
      allowed: false,
      violations: [
        {
          rule: 'no-secret-reads',
          message:
            'exec "sh -c \'cat /var/run/secrets/x\'" into pod default/web container web: command matches "*/var/run/secrets/*"',
          field: 'command',
        },
      ],
    },
    {
      kind: 'PodExecOptions',
      namespace: 'shop',
      name: 'web',
      allowed: false,
      violations: [
        {
          rule: 'no-host-entry',
          message: 'exec "nsenter -t 1 sh" into pod shop/web container app: command matches "*nsenter*"',
        },
      ],
    },
    { kind: 'PodAttachOptions', namespace: 'default', name: 'web', allowed: true, violations: [] },
  ]);
  const labels = await check([join(connect, 'attach.json')], { rules: join(connect, 'labels.yaml') });
  t.match(list(at(json(labels), 'results')), [
    {
      allowed: false,
      violations: [
        {
          message:
            "attach to pod default/web: the pod's labels are unknown (portcullis check does not look pods up), so it is not known to carry debuggable=true",
        },
        {
          message: 'attach to pod default/web: interactive sessions (stdin and tty) are not allowed',
          field: 'tty',
        },
      ],
    },
  ]);
});

t.test('unreadable input: exit 2 with the file and line', async (t) => {
  const rows: [name: string, paths: string[], errors: string[]][] = [
    [
      'a duplicate key',
      [file('duplicate-key.yaml')],
      [`${file('duplicate-key.yaml')}:5:3: duplicate key "name": Map keys must be unique`],
    ],
    ['tabs', [file('tabs.yaml')], [`${file('tabs.yaml')}:4:1: Tabs are not allowed as indentation`]],
    [
      'a document that is not an object',
      [file('not-an-object.yaml')],
      [
        `${file('not-an-object.yaml')}:${lineOf(`${podYaml('ok')}---\n- just`, '- just')}: document 1 is not a Kubernetes object (needs apiVersion and kind)`,
      ],
    ],
    ['a missing file', [file('missing.yaml')], [`${file('missing.yaml')}: cannot read (ENOENT)`]],
  ];
  for (const [name, paths, errors] of rows) {
    const run = await check(paths);
    t.equal(run.exitCode, 2, name);
    t.same(run.errors, errors, name);
    t.same(at(json(run), 'summary', 'unreadable'), 1, `${name}: the report says so`);
  }
});

t.test('an invalid --rules: exit 2 naming the field and its line', async (t) => {
  const run = await check([file('ok.yaml')], { rules: file('bad-rules.yaml') });
  t.equal(run.exitCode, 2);
  t.same(run.errors, [
    `${file('bad-rules.yaml')}:${lineOf(RULES, 'check: clusterAdminBinding')}: rules[3].check: unknown check "privilegd"; ${KNOWN}`,
  ]);
});

t.test('the binary', async (t) => {
  // bin/portcullis runs dist/, which `npm test` builds first (its `pretest` script).
  const built = resolve(ROOT, 'dist/cli/main.js');
  t.ok(existsSync(built), 'dist/cli/main.js is built');

  // Run as a user's shell would. tap's coverage hook puts its loader back into every child's
  // NODE_OPTIONS (it wraps child_process), and under it Node loads the extension-less ES module bin
  // as CommonJS and fails; `env -u` clears it after the wrapper has run.
  const run = (args: string[], input?: string) =>
    spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, BIN, ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      ...(input === undefined ? {} : { input }),
    });

  const help = run(['check', '--help']);
  t.equal(help.status, 0, 'check --help exits 0');
  for (const text of [
    'Usage: portcullis check',
    '--rules <file>',
    '-o, --output <format>',
    'Exit status: 0',
  ]) {
    t.ok(help.stdout.includes(text), `check --help documents ${text}`);
  }
  const top = run(['--help']);
  t.equal(top.status, 0, '--help exits 0');
  t.match(top.stdout, /check \[options\] <paths\.\.\.>/);

  const denied = run(['check', '--rules', RULES_FILE, '-o', 'json', file('ok.yaml'), file('mixed.yaml')]);
  t.equal(denied.status, 1);
  t.same(
    JSON.parse(denied.stdout),
    json(await check([file('ok.yaml'), file('mixed.yaml')])),
    'same JSON as runCheck',
  );

  t.equal(run(['check', '--rules', RULES_FILE, file('ok.yaml')]).status, 0);
  const stdin = run(['check', '--rules', RULES_FILE, '-o', 'json', '-'], podYaml('piped', PRIVILEGED_EXTRA));
  t.equal(stdin.status, 1);
  t.match(JSON.parse(stdin.stdout), { results: [{ source: '<stdin>#0', name: 'piped', allowed: false }] });

  const broken = run(['check', '--rules', RULES_FILE, file('duplicate-key.yaml')]);
  t.equal(broken.status, 2);
  t.equal(
    broken.stderr,
    `portcullis: ${file('duplicate-key.yaml')}:5:3: duplicate key "name": Map keys must be unique\n`,
  );
  const badRules = run(['check', '--rules', file('bad-rules.yaml'), file('ok.yaml')]);
  t.equal(badRules.status, 2);
  t.match(badRules.stderr, /rules\[3\]\.check: unknown check "privilegd"/);
  t.equal(run(['check', '-o', 'xml', file('ok.yaml')]).status, 2, 'a usage error exits 2');
});

const kubectlVersion = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
const noKubectl =
  kubectlVersion.error === undefined ? false : `kubectl is not on PATH (${kubectlVersion.error.message})`;

t.test('objects printed by kubectl', { skip: noKubectl }, async (t) => {
  const kubectl = (...args: string[]) => {
    const out = spawnSync('kubectl', [...args, '--dry-run=client'], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${out.stderr}`);
    return out.stdout;
  };
  const rows: {
    name: string;
    text: string;
    expected: Record<string, unknown>;
    violations: [rule: string, message: string, field: string][];
    /** As in the cluster, /mutate's seccomp default is applied before the rules judge. */
    mutated?: string;
  }[] = [
    {
      name: 'create deployment --image=nginx',
      text: kubectl('create', 'deployment', 'web', '--image=nginx', '-o', 'yaml'),
      expected: {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        namespace: 'default',
        name: 'web',
        allowed: false,
      },
      violations: [
        [
          'trusted-registries',
          'container "nginx": image "nginx" (docker.io/library/nginx) is not from a trusted registry',
          'spec.template.spec.containers[0].image',
        ],
      ],
      mutated: '/spec/template/spec/securityContext',
    },
    {
      name: 'create job from a trusted registry, as JSON',
      text: kubectl('create', 'job', 'j', '--image=ghcr.io/portcullis/x', '-o', 'json'),
      expected: { apiVersion: 'batch/v1', kind: 'Job', name: 'j', allowed: true },
      violations: [],
      mutated: '/spec/template/spec/securityContext',
    },
    {
      name: 'create cronjob --image=busybox',
      text: kubectl('create', 'cronjob', 'c', '--image=busybox', '--schedule=* * * * *', '-o', 'yaml'),
      expected: { apiVersion: 'batch/v1', kind: 'CronJob', name: 'c', allowed: false },
      violations: [
        [
          'trusted-registries',
          'container "c": image "busybox" (docker.io/library/busybox) is not from a trusted registry',
          'spec.jobTemplate.spec.template.spec.containers[0].image',
        ],
      ],
      mutated: '/spec/jobTemplate/spec/template/spec/securityContext',
    },
    {
      name: 'create clusterrolebinding to cluster-admin',
      text: kubectl(
        'create',
        'clusterrolebinding',
        'root',
        '--clusterrole=cluster-admin',
        '--user=mallory',
        '-o',
        'yaml',
      ),
      expected: { kind: 'ClusterRoleBinding', namespace: null, name: 'root', allowed: false },
      violations: [
        [
          'no-cluster-admin-binding',
          'ClusterRoleBinding must not grant ClusterRole "cluster-admin" to User "mallory"',
          'subjects[0]',
        ],
      ],
    },
    {
      name: 'create rolebinding to a Role named cluster-admin',
      text: kubectl(
        'create',
        'rolebinding',
        'rb',
        '--role=cluster-admin',
        '--user=x',
        '-n',
        'team',
        '-o',
        'yaml',
      ),
      expected: { kind: 'RoleBinding', namespace: 'team', name: 'rb', allowed: true },
      violations: [],
    },
    {
      name: "create clusterrole god --verb='*' --resource='*'",
      text: kubectl('create', 'clusterrole', 'god', '--verb=*', '--resource=*', '-o', 'yaml'),
      expected: { kind: 'ClusterRole', namespace: null, name: 'god', allowed: false },
      violations: [
        ['no-rbac-privilege', 'ClusterRole "god" grants * on * in the core API group', 'rules[0]'],
      ],
    },
    {
      name: 'create clusterrolebinding of the bootstrap admin (known without being in the input)',
      text: kubectl('create', 'clusterrolebinding', 'x', '--clusterrole=admin', '--user=bob', '-o', 'yaml'),
      expected: { kind: 'ClusterRoleBinding', name: 'x', allowed: false },
      violations: [
        [
          'no-cluster-admin-binding',
          'ClusterRoleBinding "x": roleRef ClusterRole "admin" grants get on secrets and create on pods in every namespace to User "bob"',
          'subjects[0]',
        ],
      ],
    },
    {
      name: 'create rolebinding of admin for a user in one namespace',
      text: kubectl(
        'create',
        'rolebinding',
        'a',
        '--clusterrole=admin',
        '--user=alice',
        '-n',
        'team',
        '-o',
        'yaml',
      ),
      expected: { kind: 'RoleBinding', namespace: 'team', name: 'a', allowed: true },
      violations: [],
    },
  ];
  for (const row of rows) {
    const run = await check(['-'], { rules: DEFAULT_RULES_PATH }, Readable.from([row.text]));
    t.equal(run.exitCode, row.violations.length === 0 ? 0 : 1, row.name);
    const result = at(json(run), 'results', 0);
    t.match(result, { source: '<stdin>#0', ...row.expected }, row.name);
    t.same(
      list(at(result, 'violations')).map((v) => [at(v, 'rule'), at(v, 'message'), at(v, 'field')]),
      row.violations,
      row.name,
    );
    t.same(
      row.mutated === undefined ? undefined : at(result, 'mutated'),
      row.mutated === undefined
        ? undefined
        : {
            rules: ['require-seccomp'],
            patch: [{ op: 'add', path: row.mutated, value: { seccompProfile: { type: 'RuntimeDefault' } } }],
          },
      `${row.name}: mutation`,
    );
    if (row.mutated === undefined) t.notOk(at(result, 'mutated'), `${row.name}: no mutation`);
    for (const v of list(at(result, 'violations'))) {
      const line = at(v, 'line');
      t.ok(
        typeof line === 'number' && line >= 1 && line <= row.text.split('\n').length,
        `${row.name}: line ${String(line)} is in the text`,
      );
    }
  }
  // The image line of the kubectl Deployment is where the table points.
  const deployment = rows[0]?.text ?? '';
  const table = await check(
    ['-'],
    { rules: DEFAULT_RULES_PATH, output: 'table' },
    Readable.from([deployment]),
  );
  t.match(
    table.output,
    new RegExp(
      `<stdin>:${lineOf(deployment, 'image: nginx')}\\s+Deployment default/web\\s+trusted-registries`,
    ),
  );
});

t.test(
  'a binding is judged by the ClusterRoles of the same input, whatever their order',
  { skip: noKubectl },
  async (t) => {
    const kubectl = (...args: string[]) => {
      const out = spawnSync('kubectl', [...args, '--dry-run=client'], { encoding: 'utf8' });
      if (out.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${out.stderr}`);
      return out.stdout;
    };
    const god = kubectl('create', 'clusterrole', 'god', '--verb=*', '--resource=*', '-o', 'yaml').replace(
      '- ""',
      "- '*'",
    );
    const bindings = [
      kubectl('create', 'clusterrolebinding', 'x', '--clusterrole=god', '--user=mallory', '-o', 'yaml'),
      kubectl('create', 'clusterrolebinding', 'y', '--clusterrole=unseen', '--user=bob', '-o', 'yaml'),
    ];
    const text = [...bindings, god].join('---\n');
    const run = await check(['-'], { rules: DEFAULT_RULES_PATH }, Readable.from([text]));
    t.equal(run.exitCode, 1);
    const results = list(at(json(run), 'results'));
    t.same(
      results.map((r) => [
        at(r, 'name'),
        at(r, 'allowed'),
        list(at(r, 'violations')).map((v) => [at(v, 'action'), at(v, 'message')]),
      ]),
      [
        [
          'x',
          false,
          [
            [
              'deny',
              'ClusterRoleBinding "x": roleRef ClusterRole "god" grants * on * (cluster-admin in effect) to User "mallory"',
            ],
          ],
        ],
        [
          'y',
          true,
          [
            [
              'warn',
              'ClusterRoleBinding "y": roleRef ClusterRole "unseen" is not known to Portcullis (not in the cluster, the input or the bootstrap policy), so what it grants was not judged',
            ],
          ],
        ],
        ['god', false, [['deny', 'ClusterRole "god" grants * on * (cluster-admin in effect)']]],
      ],
    );
    const alone = await check(['-'], { rules: DEFAULT_RULES_PATH }, Readable.from([bindings[0] ?? '']));
    t.same(
      list(at(at(json(alone), 'results', 0), 'violations')).map((v) => at(v, 'action')),
      ['warn'],
      'without the ClusterRole in the input, the same binding is reported, not judged',
    );
  },
);
