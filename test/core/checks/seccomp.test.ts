import t from 'tap';
import { expectPodCases, type PodCase } from '../../helpers/podchecks.js';
import { evaluate } from '../../../src/core/index.js';
import { pod, requestFor } from '../../helpers/requests.js';
import { oneRule } from '../../helpers/rules.js';

const IMAGE = 'registry.k8s.io/pause:3.10';
const profile = (type: string | undefined) =>
  type === undefined ? {} : { securityContext: { seccompProfile: { type } } };
const c = (name: string, type?: string) => ({ name, image: IMAGE, ...profile(type) });
const spec = (podType: string | undefined, lists: Record<string, unknown[]>) => ({
  ...profile(podType),
  ...lists,
});

const MUST_SET = 'securityContext.seccompProfile.type must be set to RuntimeDefault or Localhost [r]';
const UNCONFINED = 'securityContext.seccompProfile.type must not be Unconfined [r]';
const POD_FIELD = 'spec.securityContext.seccompProfile.type';

const restricted: PodCase[] = [
  {
    name: 'pod-level RuntimeDefault covers every container list',
    spec: spec('RuntimeDefault', {
      initContainers: [c('setup')],
      containers: [c('app'), c('b')],
      ephemeralContainers: [c('dbg')],
    }),
    messages: [],
  },
  { name: 'pod-level Localhost', spec: spec('Localhost', { containers: [c('app')] }), messages: [] },
  {
    name: 'container-level profiles only, in every list',
    spec: spec(undefined, {
      initContainers: [c('setup', 'RuntimeDefault')],
      containers: [c('app', 'RuntimeDefault'), c('b', 'Localhost')],
      ephemeralContainers: [c('dbg', 'RuntimeDefault')],
    }),
    messages: [],
  },
  {
    name: 'container Localhost overriding pod RuntimeDefault',
    spec: spec('RuntimeDefault', { containers: [c('app', 'Localhost')] }),
    messages: [],
  },
  {
    name: 'no securityContext anywhere',
    spec: spec(undefined, { containers: [c('app')] }),
    messages: [`pod or container "app": ${MUST_SET}`],
    fields: [POD_FIELD],
  },
  {
    name: 'one container of several is missing its profile, and only it is named',
    spec: spec(undefined, { containers: [c('app', 'RuntimeDefault'), c('sidecar'), c('c', 'Localhost')] }),
    messages: [`pod or container "sidecar": ${MUST_SET}`],
    fields: [POD_FIELD],
  },
  {
    name: 'every container without a profile is named, init first',
    spec: spec(undefined, { initContainers: [c('setup')], containers: [c('app'), c('b', 'RuntimeDefault')] }),
    messages: [`pod or containers "setup", "app": ${MUST_SET}`],
  },
  {
    name: 'an ephemeral container without a profile',
    spec: spec(undefined, { containers: [c('app', 'RuntimeDefault')], ephemeralContainers: [c('debugger')] }),
    messages: [`pod or container "debugger": ${MUST_SET}`],
  },
  {
    name: 'a seccompProfile without a type is no profile',
    spec: { securityContext: { seccompProfile: {} }, containers: [c('app')] },
    messages: [`pod or container "app": ${MUST_SET}`],
  },
  {
    name: 'Unconfined at pod level, nothing in the containers',
    spec: spec('Unconfined', { containers: [c('app')] }),
    messages: [`pod: ${UNCONFINED}`],
    fields: [POD_FIELD],
  },
  {
    name: 'Unconfined at pod level even when every container sets RuntimeDefault',
    spec: spec('Unconfined', { containers: [c('app', 'RuntimeDefault')] }),
    messages: [`pod: ${UNCONFINED}`],
    fields: [POD_FIELD],
  },
  {
    name: 'container Unconfined overriding pod RuntimeDefault',
    spec: spec('RuntimeDefault', { containers: [c('ok'), c('app', 'Unconfined')] }),
    messages: [`container "app": ${UNCONFINED}`],
    fields: ['spec.containers[1].securityContext.seccompProfile.type'],
  },
  {
    name: 'Unconfined in an init container',
    spec: spec('RuntimeDefault', { initContainers: [c('setup', 'Unconfined')], containers: [c('app')] }),
    messages: [`initContainer "setup": ${UNCONFINED}`],
    fields: ['spec.initContainers[0].securityContext.seccompProfile.type'],
  },
  {
    name: 'Unconfined in an ephemeral container',
    spec: spec('RuntimeDefault', {
      containers: [c('app')],
      ephemeralContainers: [c('debugger', 'Unconfined')],
    }),
    messages: [`ephemeralContainer "debugger": ${UNCONFINED}`],
    fields: ['spec.ephemeralContainers[0].securityContext.seccompProfile.type'],
  },
  {
    name: 'Unconfined in one container and another missing: both reported',
    spec: spec(undefined, { containers: [c('app', 'Unconfined'), c('b')] }),
    messages: [`container "app": ${UNCONFINED}`, `pod or container "b": ${MUST_SET}`],
    fields: ['spec.containers[0].securityContext.seccompProfile.type', POD_FIELD],
  },
  {
    name: 'a type that is neither RuntimeDefault nor Localhost at pod level',
    spec: spec('runtime/default', { containers: [c('app')] }),
    messages: [
      'pod: securityContext.seccompProfile.type must be RuntimeDefault or Localhost, not "runtime/default" [r]',
    ],
    fields: [POD_FIELD],
  },
  {
    name: 'a mis-cased type in a container',
    spec: spec('RuntimeDefault', { containers: [c('app', 'runtimedefault')] }),
    messages: [
      'container "app": securityContext.seccompProfile.type must be RuntimeDefault or Localhost, not "runtimedefault" [r]',
    ],
  },
  {
    name: 'a Windows pod is not checked',
    spec: { os: { name: 'windows' }, ...spec(undefined, { containers: [c('app')] }) },
    messages: [],
  },
  {
    name: 'a Windows pod is not checked, even with Unconfined',
    spec: { os: { name: 'windows' }, ...spec('Unconfined', { containers: [c('app', 'Unconfined')] }) },
    messages: [],
  },
  {
    name: 'an explicit Linux pod is checked (distractor)',
    spec: { os: { name: 'linux' }, ...spec(undefined, { containers: [c('app')] }) },
    messages: [`pod or container "app": ${MUST_SET}`],
  },
];

const baseline: PodCase[] = [
  {
    name: 'a missing profile is allowed',
    spec: spec(undefined, { containers: [c('app'), c('b')] }),
    messages: [],
  },
  {
    name: 'RuntimeDefault is allowed',
    spec: spec('RuntimeDefault', { containers: [c('app')] }),
    messages: [],
  },
  {
    name: 'Unconfined at pod level is denied',
    spec: spec('Unconfined', { containers: [c('app')] }),
    messages: [`pod: ${UNCONFINED}`],
  },
  {
    name: 'Unconfined in a container is denied, the missing one is not',
    spec: spec(undefined, { containers: [c('app'), c('b', 'Unconfined')] }),
    messages: [`container "b": ${UNCONFINED}`],
    fields: ['spec.containers[1].securityContext.seccompProfile.type'],
  },
  {
    name: 'an unknown type is not Unconfined',
    spec: spec('runtime/default', { containers: [c('app')] }),
    messages: [],
  },
];

for (const [level, params, cases] of [
  ['restricted (default params)', {}, restricted],
  ['requireProfile: false (baseline)', { requireProfile: false }, baseline],
] as const) {
  t.test(level, async (t) => {
    expectPodCases(t, 'seccomp', cases, params);
  });
}

t.test('a profile type that is not a string fails closed', async (t) => {
  const decision = evaluate(
    requestFor('Pod', pod({ securityContext: { seccompProfile: { type: 1 } }, containers: [c('app')] })),
    oneRule('seccomp'),
  );
  t.equal(decision.allowed, false);
  t.same(decision.malformed, {
    path: ['spec', 'securityContext', 'seccompProfile', 'type'],
    message: 'must be a string, not a number',
  });
});
