import t from 'tap';
import { expectPodCases, registeredCheck, runAtVersion, type PodCase } from '../../helpers/podchecks.js';
import { CHECKS, evaluate } from '../../../src/core/index.js';
import { pod, requestFor } from '../../helpers/requests.js';
import { oneRule } from '../../helpers/rules.js';
import { deniedInEveryKind, updateSeesTheField } from '../../helpers/pods.js';

const IMAGE = 'registry.k8s.io/pause:3.10';
const c = (name: string, procMount?: unknown) => ({
  name,
  image: IMAGE,
  ...(procMount === undefined ? {} : { securityContext: { procMount } }),
});
const spec = (lists: Record<string, unknown[]>, extra: Record<string, unknown> = {}) => ({
  ...lists,
  ...extra,
});
const unmasked = (label: string, value = 'Unmasked') =>
  `${label}: securityContext.procMount must be unset or Default, not ${JSON.stringify(value)} [r]`;

const cases: PodCase[] = [
  { name: 'unset everywhere', spec: spec({ containers: [c('app')] }), messages: [] },
  {
    name: 'securityContext without procMount (distractor)',
    spec: spec({ containers: [{ name: 'app', image: IMAGE, securityContext: { privileged: false } }] }),
    messages: [],
  },
  {
    name: 'Default in every list',
    spec: spec({
      initContainers: [c('setup', 'Default')],
      containers: [c('app', 'Default')],
      ephemeralContainers: [c('dbg', 'Default')],
    }),
    messages: [],
  },
  {
    name: 'Unmasked container',
    spec: spec({ containers: [c('app', 'Unmasked')] }),
    messages: [unmasked('container "app"')],
    fields: ['spec.containers[0].securityContext.procMount'],
  },
  {
    name: 'Unmasked init container (a sidecar is an init container)',
    spec: spec({
      initContainers: [{ ...c('proxy', 'Unmasked'), restartPolicy: 'Always' }],
      containers: [c('app')],
    }),
    messages: [unmasked('initContainer "proxy"')],
    fields: ['spec.initContainers[0].securityContext.procMount'],
  },
  {
    name: 'Unmasked ephemeral container',
    spec: spec({ containers: [c('app')], ephemeralContainers: [c('dbg', 'Unmasked')] }),
    messages: [unmasked('ephemeralContainer "dbg"')],
    fields: ['spec.ephemeralContainers[0].securityContext.procMount'],
  },
  {
    name: 'a value that is neither (a typo, wrong case) is denied',
    spec: spec({ containers: [c('a', 'default'), c('b', '')] }),
    messages: [unmasked('container "a"', 'default'), unmasked('container "b"', '')],
  },
  {
    name: 'hostUsers: false relaxes it (v1.35 on)',
    spec: spec(
      { containers: [c('app', 'Unmasked')], initContainers: [c('i', 'Unmasked')] },
      { hostUsers: false },
    ),
    messages: [],
  },
  {
    name: 'hostUsers: true does not (distractor)',
    spec: spec({ containers: [c('app', 'Unmasked')] }, { hostUsers: true }),
    messages: [unmasked('container "app"')],
  },
  {
    name: 'hostUsers: false with relaxInUserNamespace: false (the restricted control)',
    params: { relaxInUserNamespace: false },
    spec: spec({ containers: [c('app', 'Unmasked')] }, { hostUsers: false }),
    messages: [unmasked('container "app"')],
  },
  {
    name: 'Windows pods are judged too (the API refuses procMount there anyway)',
    spec: spec({ containers: [c('app', 'Unmasked')] }, { os: { name: 'windows' } }),
    messages: [unmasked('container "app"')],
  },
];

expectPodCases(t, 'procMount', cases);

t.test('versions: the hostUsers relaxation is in force from v1.35, not at v1.34', async (t) => {
  t.same(registeredCheck('procMount').versions, ['v1.0', 'v1.35']);
  const relaxed = spec({ containers: [c('app', 'Unmasked')] }, { hostUsers: false });
  const judge = (version: 'v1.34' | 'v1.35') => {
    const result = runAtVersion('procMount', version, relaxed);
    return result.ok ? result.value.map((f) => f.message) : result.error.message;
  };
  t.same(judge('v1.34'), [
    'container "app": securityContext.procMount must be unset or Default, not "Unmasked"',
  ]);
  t.same(judge('v1.35'), []);
});

t.test('every template kind', async (t) => {
  deniedInEveryKind(
    t,
    oneRule('procMount'),
    spec({ containers: [c('app', 'Unmasked')] }),
    spec({ containers: [c('app')] }),
    {
      messages: [unmasked('container "app"')],
      fields: ['spec.containers[0].securityContext.procMount'],
    },
  );
});

t.test('an UPDATE whose only change is procMount is judged', async (t) => {
  updateSeesTheField(
    t,
    oneRule('procMount'),
    spec({ containers: [c('app', 'Unmasked')] }),
    spec({ containers: [c('app', 'Default')] }),
    [unmasked('container "app"')],
  );
});

t.test('malformed values fail closed', async (t) => {
  const rows: [string, Record<string, unknown>, (string | number)[], string][] = [
    [
      'procMount not a string',
      spec({ containers: [c('app', true)] }),
      ['spec', 'containers', 0, 'securityContext', 'procMount'],
      'must be a string, not a boolean',
    ],
    [
      'hostUsers not a boolean',
      spec({ containers: [c('app')] }, { hostUsers: 'false' }),
      ['spec', 'hostUsers'],
      'must be a boolean, not a string',
    ],
    [
      'securityContext not an object',
      spec({ containers: [{ name: 'app', image: IMAGE, securityContext: 'x' }] }),
      ['spec', 'containers', 0, 'securityContext'],
      'must be an object, not a string',
    ],
  ];
  for (const [name, s, path, message] of rows) {
    const decision = evaluate(requestFor('Pod', pod(s)), oneRule('procMount'));
    t.equal(decision.allowed, false, name);
    t.same(decision.malformed, { path, message }, name);
  }
});

t.test('params', async (t) => {
  const check = CHECKS.get('procMount');
  t.same(check?.compileParams({ relaxInUserNamespace: 'no' }), {
    ok: false,
    errors: [{ path: ['relaxInUserNamespace'], message: 'must be boolean' }],
  });
  t.same(check?.compileParams({ x: 1 }), { ok: false, errors: [{ path: ['x'], message: 'unknown field' }] });
});
