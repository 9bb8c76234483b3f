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

const ruleset = oneRule('runAsNonRoot');
const { container: c, spec } = securityContextField('runAsNonRoot');
const POD_FIELD = 'spec.securityContext.runAsNonRoot';
const MUST_SET = 'securityContext.runAsNonRoot must be set to true';
const NOT_FALSE = 'securityContext.runAsNonRoot must not be false';

const cases: PodCase[] = [
  {
    name: 'pod-level true covers every list',
    spec: spec(true, {
      initContainers: [c('setup')],
      containers: [c('app')],
      ephemeralContainers: [c('dbg')],
    }),
    messages: [],
  },
  {
    name: 'true on every container, pod unset',
    spec: spec(undefined, {
      initContainers: [c('setup', true)],
      containers: [c('app', true)],
      ephemeralContainers: [c('dbg', true)],
    }),
    messages: [],
  },
  {
    name: 'nothing set',
    spec: spec(undefined, { containers: [c('app')] }),
    messages: [`pod or container "app": ${MUST_SET} [r]`],
    fields: [POD_FIELD],
  },
  {
    name: 'an empty pod securityContext is unset',
    spec: { securityContext: {}, containers: [c('app')] },
    messages: [`pod or container "app": ${MUST_SET} [r]`],
  },
  {
    name: 'only the containers without it are named, init and ephemeral included',
    spec: spec(undefined, {
      initContainers: [c('setup')],
      containers: [c('app', true), c('b')],
      ephemeralContainers: [c('debugger')],
    }),
    messages: [`pod or containers "setup", "b", "debugger": ${MUST_SET} [r]`],
    fields: [POD_FIELD],
  },
  {
    name: 'pod false',
    spec: spec(false, { containers: [c('app')] }),
    messages: [`pod: ${NOT_FALSE} [r]`],
    fields: [POD_FIELD],
  },
  {
    name: 'pod false is denied even when every container sets true',
    spec: spec(false, { containers: [c('app', true)] }),
    messages: [`pod: ${NOT_FALSE} [r]`],
  },
  {
    name: 'a container false overriding pod true',
    spec: spec(true, { containers: [c('ok'), c('app', false)] }),
    messages: [`container "app": ${NOT_FALSE} [r]`],
    fields: ['spec.containers[1].securityContext.runAsNonRoot'],
  },
  {
    name: 'an init container false',
    spec: spec(true, { initContainers: [c('setup', false)], containers: [c('app')] }),
    messages: [`initContainer "setup": ${NOT_FALSE} [r]`],
    fields: ['spec.initContainers[0].securityContext.runAsNonRoot'],
  },
  {
    name: 'a container false and another unset, pod unset: both reported',
    spec: spec(undefined, { containers: [c('app', false), c('b')] }),
    messages: [`container "app": ${NOT_FALSE} [r]`, `pod or container "b": ${MUST_SET} [r]`],
    fields: ['spec.containers[0].securityContext.runAsNonRoot', POD_FIELD],
  },
  {
    name: 'runAsUser non-zero is not runAsNonRoot (distractor: another check)',
    spec: { securityContext: { runAsUser: 1000 }, containers: [c('app')] },
    messages: [`pod or container "app": ${MUST_SET} [r]`],
  },
  {
    name: 'a Windows pod is judged too',
    spec: spec(undefined, { containers: [c('app')] }, { os: { name: 'windows' } }),
    messages: [`pod or container "app": ${MUST_SET} [r]`],
  },
  {
    name: 'hostUsers: false relaxes it (v1.35)',
    spec: spec(false, { containers: [c('app', false)] }, { hostUsers: false }),
    messages: [],
  },
  {
    name: 'hostUsers: true does not (distractor)',
    spec: spec(undefined, { containers: [c('app')] }, { hostUsers: true }),
    messages: [`pod or container "app": ${MUST_SET} [r]`],
  },
];

expectPodCases(t, 'runAsNonRoot', cases);

t.test('versions: the hostUsers: false relaxation is in force from v1.35', async (t) => {
  t.same(registeredCheck('runAsNonRoot').versions, ['v1.0', 'v1.35']);
  const userNamespaced = spec(undefined, { containers: [c('app')] }, { hostUsers: false });
  for (const [version, findings] of [
    ['v1.34', 1],
    ['v1.35', 0],
  ] as const) {
    const result = runAtVersion('runAsNonRoot', version, userNamespaced);
    t.equal(result.ok && result.value.length, findings, version);
  }
});

t.test('every pod-template kind', async (t) => {
  expectEveryKind(t, ruleset, {
    spec: spec(true, { containers: [c('app', false)] }),
    messages: [`container "app": ${NOT_FALSE} [r]`],
    fields: ['spec.containers[0].securityContext.runAsNonRoot'],
  });
});

t.test('an UPDATE that only flips runAsNonRoot is judged', async (t) => {
  expectUpdateJudged(t, ruleset, {
    before: spec(true, { containers: [c('app')] }),
    after: spec(false, { containers: [c('app')] }),
    messages: [`pod: ${NOT_FALSE} [r]`],
  });
});

t.test('an UPDATE that only drops hostUsers: false is judged', async (t) => {
  expectUpdateJudged(t, ruleset, {
    before: spec(undefined, { containers: [c('app')] }, { hostUsers: false }),
    after: spec(undefined, { containers: [c('app')] }),
    messages: [`pod or container "app": ${MUST_SET} [r]`],
  });
});

t.test('wrong types fail closed', async (t) => {
  expectMalformed(t, ruleset, spec('true', { containers: [c('app')] }), {
    path: ['spec', 'securityContext', 'runAsNonRoot'],
    message: 'must be a boolean, not a string',
  });
  expectMalformed(t, ruleset, spec(true, { containers: [c('app', 1)] }), {
    path: ['spec', 'containers', 0, 'securityContext', 'runAsNonRoot'],
    message: 'must be a boolean, not a number',
  });
  expectMalformed(t, ruleset, spec(true, { containers: [c('app')] }, { hostUsers: 'false' }), {
    path: ['spec', 'hostUsers'],
    message: 'must be a boolean, not a string',
  });
});
