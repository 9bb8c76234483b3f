import t from 'tap';
import {
  expectEveryKind,
  expectMalformed,
  expectUpdateJudged,
  expectPodCases,
  registeredCheck,
  runAtVersion,
  securityContextField,
  type PodCase,
} from '../../helpers/podchecks.js';
import { oneRule } from '../../helpers/rules.js';

const ruleset = oneRule('runAsUser');
const { container: c, spec } = securityContextField('runAsUser');
const NOT_ROOT = 'securityContext.runAsUser must not be 0';

const cases: PodCase[] = [
  { name: 'unset everywhere', spec: spec(undefined, { containers: [c('app')] }), messages: [] },
  {
    name: 'non-zero everywhere, 1 included',
    spec: spec(1000, { initContainers: [c('setup', 1)], containers: [c('app', 65534)] }),
    messages: [],
  },
  {
    name: 'pod 0',
    spec: spec(0, { containers: [c('app')] }),
    messages: [`pod: ${NOT_ROOT} [r]`],
    fields: ['spec.securityContext.runAsUser'],
  },
  {
    name: 'pod 0 is denied even when every container overrides it',
    spec: spec(0, { containers: [c('app', 1000)] }),
    messages: [`pod: ${NOT_ROOT} [r]`],
  },
  {
    name: 'a container 0 under a non-root pod',
    spec: spec(1000, { containers: [c('ok'), c('app', 0)] }),
    messages: [`container "app": ${NOT_ROOT} [r]`],
    fields: ['spec.containers[1].securityContext.runAsUser'],
  },
  {
    name: 'pod and every kind of container: one finding each, at its field',
    spec: spec(0, {
      initContainers: [c('setup', 0)],
      containers: [c('app', 0), c('ok', 1)],
      ephemeralContainers: [c('debugger', 0)],
    }),
    messages: [
      `pod: ${NOT_ROOT} [r]`,
      `initContainer "setup": ${NOT_ROOT} [r]`,
      `container "app": ${NOT_ROOT} [r]`,
      `ephemeralContainer "debugger": ${NOT_ROOT} [r]`,
    ],
    fields: [
      'spec.securityContext.runAsUser',
      'spec.initContainers[0].securityContext.runAsUser',
      'spec.containers[0].securityContext.runAsUser',
      'spec.ephemeralContainers[0].securityContext.runAsUser',
    ],
  },
  {
    name: 'runAsGroup 0 is not runAsUser (distractor)',
    spec: {
      securityContext: { runAsGroup: 0 },
      containers: [{ ...c('app'), securityContext: { runAsGroup: 0 } }],
    },
    messages: [],
  },
  {
    name: 'runAsNonRoot false is another check (distractor)',
    spec: { securityContext: { runAsNonRoot: false }, containers: [c('app')] },
    messages: [],
  },
  {
    name: 'a Windows pod is judged too',
    spec: spec(0, { containers: [c('app')] }, { os: { name: 'windows' } }),
    messages: [`pod: ${NOT_ROOT} [r]`],
  },
  {
    name: 'hostUsers: false relaxes it (v1.35)',
    spec: spec(0, { containers: [c('app', 0)] }, { hostUsers: false }),
    messages: [],
  },
  {
    name: 'hostUsers: true does not (distractor)',
    spec: spec(0, { containers: [c('app')] }, { hostUsers: true }),
    messages: [`pod: ${NOT_ROOT} [r]`],
  },
];

expectPodCases(t, 'runAsUser', cases);

t.test('versions: the hostUsers: false relaxation is in force from v1.35', async (t) => {
  t.same(registeredCheck('runAsUser').versions, ['v1.0', 'v1.35']);
  const userNamespaced = spec(0, { containers: [c('app')] }, { hostUsers: false });
  for (const [version, findings] of [
    ['v1.34', 1],
    ['v1.35', 0],
  ] as const) {
    const result = runAtVersion('runAsUser', version, userNamespaced);
    t.equal(result.ok && result.value.length, findings, version);
  }
});

t.test('every pod-template kind', async (t) => {
  expectEveryKind(t, ruleset, {
    spec: spec(undefined, { containers: [c('app', 0)] }),
    messages: [`container "app": ${NOT_ROOT} [r]`],
    fields: ['spec.containers[0].securityContext.runAsUser'],
  });
});

t.test('an UPDATE that only sets runAsUser: 0 is judged', async (t) => {
  expectUpdateJudged(t, ruleset, {
    before: spec(undefined, { containers: [c('app', 1000)] }),
    after: spec(undefined, { containers: [c('app', 0)] }),
    messages: [`container "app": ${NOT_ROOT} [r]`],
  });
});

t.test('wrong types fail closed', async (t) => {
  expectMalformed(t, ruleset, spec('0', { containers: [c('app')] }), {
    path: ['spec', 'securityContext', 'runAsUser'],
    message: 'must be an integer, not a string',
  });
  expectMalformed(t, ruleset, spec(undefined, { containers: [c('app', 0.5)] }), {
    path: ['spec', 'containers', 0, 'securityContext', 'runAsUser'],
    message: 'must be an integer, not a number',
  });
  expectMalformed(t, ruleset, spec(undefined, { containers: [c('app', false)] }), {
    path: ['spec', 'containers', 0, 'securityContext', 'runAsUser'],
    message: 'must be an integer, not a boolean',
  });
});
