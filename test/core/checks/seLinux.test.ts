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
const ruleset = oneRule('seLinux');
const options = (seLinuxOptions: unknown) => ({ seLinuxOptions });
const c = (name: string, securityContext?: unknown) => ({
  name,
  image: IMAGE,
  ...(securityContext === undefined ? {} : { securityContext }),
});
const TYPES = 'unset or one of container_t, container_init_t, container_kvm_t, container_engine_t';
const typeText = (who: string, type: string) =>
  `${who}: securityContext.seLinuxOptions.type must be ${TYPES}, not ${JSON.stringify(type)} [r]`;

const cases: PodCase[] = [
  { name: 'nothing set', spec: podSpec(), messages: [] },
  {
    name: 'every allowed type, and level (never judged)',
    spec: podSpec({
      securityContext: options({ type: 'container_t', level: 's0:c123,c456' }),
      initContainers: [c('setup', options({ type: 'container_init_t' }))],
      containers: [
        c('vm', options({ type: 'container_kvm_t' })),
        c('engine', options({ type: 'container_engine_t' })),
      ],
      ephemeralContainers: [c('dbg', options({ level: 's0:c1,c2' }))],
    }),
    messages: [],
  },
  {
    name: 'empty strings are unset',
    spec: podSpec({ containers: [c('app', options({ type: '', user: '', role: '' }))] }),
    messages: [],
  },
  {
    name: 'spc_t at pod level',
    spec: podSpec({ securityContext: options({ type: 'spc_t' }) }),
    messages: [typeText('pod', 'spc_t')],
    fields: ['spec.securityContext.seLinuxOptions.type'],
  },
  {
    name: 'unconfined_t in a container',
    spec: podSpec({ containers: [c('ok'), c('app', options({ type: 'unconfined_t' }))] }),
    messages: [typeText('container "app"', 'unconfined_t')],
    fields: ['spec.containers[1].securityContext.seLinuxOptions.type'],
  },
  {
    name: 'the type compares exactly (Container_T is not container_t)',
    spec: podSpec({ containers: [c('app', options({ type: 'Container_T' }))] }),
    messages: [typeText('container "app"', 'Container_T')],
  },
  {
    name: 'user and role: one finding each, at its field',
    spec: podSpec({
      containers: [c('app', options({ user: 'system_u', role: 'system_r', type: 'container_t' }))],
    }),
    messages: [
      'container "app": securityContext.seLinuxOptions.user must be unset, not "system_u" [r]',
      'container "app": securityContext.seLinuxOptions.role must be unset, not "system_r" [r]',
    ],
    fields: [
      'spec.containers[0].securityContext.seLinuxOptions.user',
      'spec.containers[0].securityContext.seLinuxOptions.role',
    ],
  },
  {
    name: 'pod, init and ephemeral containers, each named',
    spec: podSpec({
      securityContext: options({ user: 'root' }),
      initContainers: [c('setup', options({ type: 'spc_t' }))],
      ephemeralContainers: [c('debugger', options({ role: 'sysadm_r' }))],
    }),
    messages: [
      'pod: securityContext.seLinuxOptions.user must be unset, not "root" [r]',
      typeText('initContainer "setup"', 'spc_t'),
      'ephemeralContainer "debugger": securityContext.seLinuxOptions.role must be unset, not "sysadm_r" [r]',
    ],
    fields: [
      'spec.securityContext.seLinuxOptions.user',
      'spec.initContainers[0].securityContext.seLinuxOptions.type',
      'spec.ephemeralContainers[0].securityContext.seLinuxOptions.role',
    ],
  },
  {
    name: 'a Windows pod is judged too',
    spec: podSpec({ os: { name: 'windows' }, securityContext: options({ type: 'spc_t' }) }),
    messages: [typeText('pod', 'spc_t')],
  },
  {
    name: 'seLinuxChangePolicy is not an option (distractor)',
    spec: podSpec({ securityContext: { seLinuxChangePolicy: 'Recursive' } }),
    messages: [],
  },
];

expectPodCases(t, 'seLinux', cases);

t.test('versions: container_engine_t is allowed from v1.31', async (t) => {
  t.same(registeredCheck('seLinux').versions, ['v1.0', 'v1.31']);
  const engine = podSpec({ containers: [c('app', options({ type: 'container_engine_t' }))] });
  const run = (version: 'v1.30' | 'v1.31') => runAtVersion('seLinux', version, engine);
  t.same(run('v1.30'), {
    ok: true,
    value: [
      {
        path: ['spec', 'containers', 0, 'securityContext', 'seLinuxOptions', 'type'],
        message:
          'container "app": securityContext.seLinuxOptions.type must be unset or one of container_t, container_init_t, container_kvm_t, not "container_engine_t"',
      },
    ],
  });
  t.same(run('v1.31'), { ok: true, value: [] });
});

t.test('every pod-template kind', async (t) => {
  expectEveryKind(t, ruleset, {
    spec: podSpec({ containers: [c('app', options({ type: 'spc_t' }))] }),
    messages: [typeText('container "app"', 'spc_t')],
    fields: ['spec.containers[0].securityContext.seLinuxOptions.type'],
  });
});

t.test('an UPDATE that only changes the SELinux type is judged', async (t) => {
  expectUpdateJudged(t, ruleset, {
    before: podSpec({ containers: [c('app', options({ type: 'container_t' }))] }),
    after: podSpec({ containers: [c('app', options({ type: 'spc_t' }))] }),
    messages: [typeText('container "app"', 'spc_t')],
  });
});

t.test('wrong types fail closed', async (t) => {
  expectMalformed(t, ruleset, podSpec({ containers: [c('app', options({ type: ['spc_t'] }))] }), {
    path: ['spec', 'containers', 0, 'securityContext', 'seLinuxOptions', 'type'],
    message: 'must be a string, not a list',
  });
  expectMalformed(t, ruleset, podSpec({ securityContext: options('spc_t') }), {
    path: ['spec', 'securityContext', 'seLinuxOptions'],
    message: 'must be an object, not a string',
  });
  expectMalformed(t, ruleset, podSpec({ securityContext: options({ user: 0 }) }), {
    path: ['spec', 'securityContext', 'seLinuxOptions', 'user'],
    message: 'must be a string, not a number',
  });
});
