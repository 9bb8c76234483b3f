// `portcullis check` on what real repositories hold, driven as a process: empty inputs are an
// error, a broken file is reported while every other file is still judged (in the table, in JSON,
// in SARIF), paths can be ignored, warnings can fail the run, mutations show on request, and a
// RuleSet's errors all come in one pass at their keys' lines.

import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import t from 'tap';
import { plainNode } from '../helpers/manifests.js';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = resolve(ROOT, 'bin/portcullis');

const RULES = `apiVersion: portcullis.io/v1
kind: RuleSet
rules:
  - name: no-privileged
    check: privileged
  - name: seccomp
    check: seccomp
    action: warn
    params: { mutate: false }
  - name: seccomp-default
    check: seccomp
    action: audit
    namespaces: [patched]
`;
const pod = (name: string, extra = '') => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  securityContext: {seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: app
    image: registry.k8s.io/pause:3.10
${extra}`;

const dir = t.testdir({
  'rules.yaml': RULES,
  'bad-rules.yaml': `apiVersion: portcullis.io/v1
kind: RuleSet
rules:
  - name: Bad_Name
    check: hostPath
    params:
      allowedPaths:
        - pathPrefix: relative/path
`,
  'empty.yaml': '',
  'comments.yaml': '# nothing here\n---\n',
  emptydir: {},
  repo: {
    'ok.yaml': pod('ok'),
    'root.yaml': pod('root', '    securityContext: {privileged: true}\n'),
    charts: {
      templates: {
        'deployment.yaml':
          'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Values.name }}\n  labels: {{- include "x" . | nindent 4 }}\n',
      },
    },
    'broken.yaml': 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  name: b\n',
  },
  warned: {
    'no-profile.yaml': pod('plain').replace(
      '  securityContext: {seccompProfile: {type: RuntimeDefault}}\n',
      '',
    ),
  },
});

function check(args: string[], input?: string) {
  const [command, argv] = plainNode([BIN, 'check', '--rules', 'rules.yaml', ...args]);
  return spawnSync(command, argv, { cwd: dir, encoding: 'utf8', ...(input === undefined ? {} : { input }) });
}

t.test('nothing to check is an error, not a pass', async (t) => {
  for (const [name, args, input] of [
    ['an empty file', ['empty.yaml'], undefined],
    ['a file of comments', ['comments.yaml'], undefined],
    ['an empty directory', ['emptydir'], undefined],
    ['empty standard input (kubectl failed upstream)', ['-'], ''],
  ] as const) {
    const run = check([...args], input);
    t.equal(run.status, 2, name);
    t.match(run.stderr, /nothing to check: no Kubernetes object in /, name);
  }
});

t.test('a broken file is reported and every other file still judged', async (t) => {
  const table = check(['repo']);
  t.equal(table.status, 2, 'exit 2: something could not be read');
  t.match(
    table.stdout,
    /^repo\/broken\.yaml:5:3\s+-\s+unreadable\s+error\s+duplicate key "name": Map keys must be unique$/m,
  );
  t.match(
    table.stdout,
    /^repo\/charts\/templates\/deployment\.yaml:5:13\s+-\s+unreadable\s+error\s+/m,
    'the Helm template',
  );
  t.match(
    table.stdout,
    /^repo\/root\.yaml:\d+\s+Pod default\/root\s+no-privileged\s+deny\s+/m,
    'the verdict on the rest',
  );
  t.match(table.stdout, /2 objects checked: 1 denied, .*; 2 inputs unreadable$/m);

  const json = JSON.parse(check(['-o', 'json', 'repo']).stdout) as Record<string, unknown>;
  t.match(json, {
    errors: [
      {
        file: 'repo/broken.yaml',
        line: 5,
        column: 3,
        message: 'duplicate key "name": Map keys must be unique',
      },
      { file: 'repo/charts/templates/deployment.yaml', line: 5, column: 13 },
    ],
    summary: { objects: 2, denied: 1, unreadable: 2 },
  });

  const sarif = JSON.parse(check(['-o', 'sarif', 'repo']).stdout) as Record<string, unknown>;
  t.match(sarif, {
    runs: [
      {
        invocations: [
          {
            executionSuccessful: false,
            toolExecutionNotifications: [
              {
                level: 'error',
                locations: [
                  {
                    physicalLocation: {
                      artifactLocation: { uri: 'repo/broken.yaml', uriBaseId: '%SRCROOT%' },
                      region: { startLine: 5 },
                    },
                  },
                ],
              },
              {},
            ],
          },
        ],
        results: [
          {
            ruleId: 'no-privileged',
            locations: [
              { physicalLocation: { artifactLocation: { uri: 'repo/root.yaml', uriBaseId: '%SRCROOT%' } } },
            ],
          },
        ],
      },
    ],
  });
});

t.test('--ignore skips paths by glob, repeatable', async (t) => {
  const run = check(['--ignore', 'repo/charts/**', '--ignore', '**/broken.yaml', 'repo']);
  t.equal(run.status, 1, 'only the verdicts decide now');
  t.notMatch(run.stdout, /unreadable/);
  t.match(run.stdout, /2 objects checked: 1 denied/);
});

t.test('--fail-on-warn turns a warning into exit 1', async (t) => {
  t.equal(check(['warned']).status, 0, 'a warning alone passes');
  const failed = check(['--fail-on-warn', 'warned']);
  t.equal(failed.status, 1);
  t.match(failed.stdout, /seccomp\s+warn\s+/);
});

t.test('mutations are applied always, shown only with --show-mutations', async (t) => {
  const plain = check(['-n', 'patched', 'warned']);
  t.notMatch(plain.stdout, /\bmutate\b/, 'no mutate row by default');
  t.match(
    plain.stdout,
    /0 audited/,
    'the patched object is what is judged: seccomp-default has nothing to say',
  );
  const shown = check(['-n', 'patched', '--show-mutations', 'warned']);
  t.match(shown.stdout, /seccomp-default\s+mutate\s+\/mutate adds \/spec\/securityContext/);
});

t.test('a RuleSet: every error in one pass, each at its key', async (t) => {
  const [command, argv] = plainNode([BIN, 'check', '--rules', 'bad-rules.yaml', 'repo/ok.yaml']);
  const run = spawnSync(command, argv, { cwd: dir, encoding: 'utf8' });
  t.equal(run.status, 2);
  t.equal(
    run.stderr,
    [
      'portcullis: bad-rules.yaml:4: rules[0].name: must match pattern "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"',
      'portcullis: bad-rules.yaml:8: rules[0].params.allowedPaths[0].pathPrefix: must be an absolute path, not "relative/path"',
      '',
    ].join('\n'),
  );
});
