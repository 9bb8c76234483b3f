import t from 'tap';
import {
  expectEveryKind,
  expectMalformed,
  expectUpdateJudged,
  expectPodCases,
  registeredCheck,
  runAtVersion,
  type PodCase,
} from '../../helpers/podchecks.js';
import { podSpec } from '../../helpers/requests.js';
import { oneRule } from '../../helpers/rules.js';

const IMAGE = 'registry.k8s.io/pause:3.10';
const ruleset = oneRule('allowPrivilegeEscalation');
const c = (name: string, securityContext?: unknown) => ({
  name,
  image: IMAGE,
  ...(securityContext === undefined ? {} : { securityContext }),
});
const off = { allowPrivilegeEscalation: false };
const MUST_SET = 'securityContext.allowPrivilegeEscalation must be set to false';
const NOT_TRUE = 'securityContext.allowPrivilegeEscalation must be false, not true';

const cases: PodCase[] = [
  {
    name: 'every container sets false, in every list',
    spec: podSpec({
      initContainers: [c('setup', off)],
      containers: [c('app', off), c('b', off)],
      ephemeralContainers: [c('debugger', off)],
    }),
    messages: [],
  },
  {
    name: 'unset: the runtime default is true',
    spec: podSpec({ containers: [c('app')] }),
    messages: [`container "app": ${MUST_SET} [r]`],
    fields: ['spec.containers[0].securityContext.allowPrivilegeEscalation'],
  },
  {
    name: 'a securityContext without the field',
    spec: podSpec({ containers: [c('app', { runAsNonRoot: true })] }),
    messages: [`container "app": ${MUST_SET} [r]`],
  },
  {
    name: 'null is unset',
    spec: podSpec({ containers: [c('app', { allowPrivilegeEscalation: null })] }),
    messages: [`container "app": ${MUST_SET} [r]`],
  },
  {
    name: 'true',
    spec: podSpec({ containers: [c('app', { allowPrivilegeEscalation: true })] }),
    messages: [`container "app": ${NOT_TRUE} [r]`],
    fields: ['spec.containers[0].securityContext.allowPrivilegeEscalation'],
  },
  {
    name: 'the pod securityContext has no such field (distractor: it does not cover containers)',
    spec: podSpec({
      securityContext: { seccompProfile: { type: 'RuntimeDefault' }, allowPrivilegeEscalation: false },
      containers: [c('app', off)],
    }),
    messages: [],
  },
  {
    name: 'only the offenders are named, init and ephemeral included',
    spec: podSpec({
      initContainers: [c('setup')],
      containers: [c('app', off), c('b', { allowPrivilegeEscalation: true })],
      ephemeralContainers: [c('debugger')],
    }),
    messages: [
      `initContainer "setup": ${MUST_SET} [r]`,
      `container "b": ${NOT_TRUE} [r]`,
      `ephemeralContainer "debugger": ${MUST_SET} [r]`,
    ],
    fields: [
      'spec.initContainers[0].securityContext.allowPrivilegeEscalation',
      'spec.containers[1].securityContext.allowPrivilegeEscalation',
      'spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation',
    ],
  },
  {
    name: 'a Windows pod is not judged (from v1.25)',
    spec: podSpec({ os: { name: 'windows' }, containers: [c('app', { allowPrivilegeEscalation: true })] }),
    messages: [],
  },
  {
    name: 'a Linux pod is judged (distractor for the Windows row)',
    spec: podSpec({ os: { name: 'linux' }, containers: [c('app')] }),
    messages: [`container "app": ${MUST_SET} [r]`],
  },
];

expectPodCases(t, 'allowPrivilegeEscalation', cases);

t.test('versions: Windows pods are judged before v1.25', async (t) => {
  t.same(registeredCheck('allowPrivilegeEscalation').versions, ['v1.0', 'v1.25']);
  const windows = podSpec({ os: { name: 'windows' } });
  for (const [version, findings] of [
    ['v1.24', 1],
    ['v1.25', 0],
  ] as const) {
    const result = runAtVersion('allowPrivilegeEscalation', version, windows);
    t.equal(result.ok && result.value.length, findings, version);
  }
});

t.test('every pod-template kind', async (t) => {
  expectEveryKind(t, ruleset, {
    spec: podSpec({ containers: [c('app', { allowPrivilegeEscalation: true })] }),
    messages: [`container "app": ${NOT_TRUE} [r]`],
    fields: ['spec.containers[0].securityContext.allowPrivilegeEscalation'],
  });
});

t.test('an UPDATE that only flips allowPrivilegeEscalation is judged', async (t) => {
  expectUpdateJudged(t, ruleset, {
    before: podSpec({ containers: [c('app', off)] }),
    after: podSpec({ containers: [c('app', { allowPrivilegeEscalation: true })] }),
    messages: [`container "app": ${NOT_TRUE} [r]`],
  });
});

t.test('wrong types fail closed', async (t) => {
  expectMalformed(t, ruleset, podSpec({ containers: [c('app', { allowPrivilegeEscalation: 'false' })] }), {
    path: ['spec', 'containers', 0, 'securityContext', 'allowPrivilegeEscalation'],
    message: 'must be a boolean, not a string',
  });
  expectMalformed(t, ruleset, podSpec({ containers: [c('app', [off])] }), {
    path: ['spec', 'containers', 0, 'securityContext'],
    message: 'must be an object, not a list',
  });
});
