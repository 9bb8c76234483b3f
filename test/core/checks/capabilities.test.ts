import t from 'tap';
import { CHECKS, compileRuleSet, evaluate, formatRuleSetError } from '../../../src/core/index.js';
import { expectDecision } from '../../helpers/decisions.js';
import {
  expectEveryKind,
  expectMalformed,
  expectUpdateJudged,
  expectPodCases,
  type PodCase,
} from '../../helpers/podchecks.js';
import { pod, podSpec, requestFor } from '../../helpers/requests.js';
import { oneRule, ruleSet } from '../../helpers/rules.js';

const IMAGE = 'registry.k8s.io/pause:3.10';
const caps = (name: string, capabilities: unknown) => ({
  name,
  image: IMAGE,
  securityContext: { capabilities },
});
const RESTRICTED = { allowedAdd: ['NET_BIND_SERVICE'], requiredDrop: ['ALL'] };
const ADD = 'securityContext.capabilities.add must not include';
const DROP_ALL = 'securityContext.capabilities.drop must include "ALL"';

const baseline: PodCase[] = [
  { name: 'no securityContext', spec: podSpec(), messages: [] },
  {
    name: 'every capability of the baseline set',
    spec: podSpec({
      containers: [
        caps('app', {
          add: [
            'AUDIT_WRITE',
            'CHOWN',
            'DAC_OVERRIDE',
            'FOWNER',
            'FSETID',
            'KILL',
            'MKNOD',
            'NET_BIND_SERVICE',
            'SETFCAP',
            'SETGID',
            'SETPCAP',
            'SETUID',
            'SYS_CHROOT',
          ],
        }),
      ],
    }),
    messages: [],
  },
  {
    name: 'dropping anything is fine, even SYS_ADMIN spelt oddly (distractor: drop is not add)',
    spec: podSpec({ containers: [caps('app', { drop: ['SYS_ADMIN', 'cap_net_raw'] })] }),
    messages: [],
  },
  {
    name: 'SYS_ADMIN',
    spec: podSpec({ containers: [caps('app', { add: ['SYS_ADMIN'] })] }),
    messages: [`container "app": ${ADD} "SYS_ADMIN" [r]`],
    fields: ['spec.containers[0].securityContext.capabilities.add[0]'],
  },
  {
    name: 'NET_RAW is not in the baseline set',
    spec: podSpec({ containers: [caps('app', { add: ['CHOWN', 'NET_RAW'] })] }),
    messages: [`container "app": ${ADD} "NET_RAW" [r]`],
    fields: ['spec.containers[0].securityContext.capabilities.add[1]'],
  },
  {
    name: 'CAP_SYS_ADMIN: the prefix does not hide it',
    spec: podSpec({ containers: [caps('app', { add: ['CAP_SYS_ADMIN'] })] }),
    messages: [`container "app": ${ADD} "CAP_SYS_ADMIN" [r]`],
  },
  {
    name: 'sys_admin: lower case does not hide it',
    spec: podSpec({ containers: [caps('app', { add: ['sys_admin'] })] }),
    messages: [`container "app": ${ADD} "sys_admin" [r]`],
  },
  {
    name: 'CAP_CHOWN is denied though CHOWN is allowed, with the spelling to use',
    spec: podSpec({ containers: [caps('app', { add: ['CAP_CHOWN', 'chown', 'Cap_Kill'] })] }),
    messages: [
      `container "app": ${ADD} "CAP_CHOWN" (write "CHOWN") [r]`,
      `container "app": ${ADD} "chown" (write "CHOWN") [r]`,
      `container "app": ${ADD} "Cap_Kill" (write "KILL") [r]`,
    ],
    fields: [
      'spec.containers[0].securityContext.capabilities.add[0]',
      'spec.containers[0].securityContext.capabilities.add[1]',
      'spec.containers[0].securityContext.capabilities.add[2]',
    ],
  },
  {
    name: 'ALL added',
    spec: podSpec({ containers: [caps('app', { add: ['ALL'] })] }),
    messages: [`container "app": ${ADD} "ALL" [r]`],
  },
  {
    name: 'an empty name',
    spec: podSpec({ containers: [caps('app', { add: [''] })] }),
    messages: [`container "app": ${ADD} "" [r]`],
  },
  {
    name: 'init and ephemeral containers, each named',
    spec: podSpec({
      initContainers: [caps('setup', { add: ['NET_ADMIN'] })],
      containers: [caps('app', { add: ['CHOWN'] })],
      ephemeralContainers: [caps('debugger', { add: ['SYS_PTRACE'] })],
    }),
    messages: [
      `initContainer "setup": ${ADD} "NET_ADMIN" [r]`,
      `ephemeralContainer "debugger": ${ADD} "SYS_PTRACE" [r]`,
    ],
    fields: [
      'spec.initContainers[0].securityContext.capabilities.add[0]',
      'spec.ephemeralContainers[0].securityContext.capabilities.add[0]',
    ],
  },
  {
    name: 'a Windows pod is judged at baseline (pod-security-admission exempts only restricted)',
    spec: podSpec({ os: { name: 'windows' }, containers: [caps('app', { add: ['SYS_ADMIN'] })] }),
    messages: [`container "app": ${ADD} "SYS_ADMIN" [r]`],
  },
  {
    name: 'drop ALL is not required at baseline',
    spec: podSpec({ containers: [caps('app', { add: ['KILL'] })] }),
    messages: [],
  },
];

const restricted: PodCase[] = [
  {
    name: 'drop ALL, add NET_BIND_SERVICE',
    spec: podSpec({ containers: [caps('app', { drop: ['ALL'], add: ['NET_BIND_SERVICE'] })] }),
    messages: [],
  },
  {
    name: 'drop ALL among others',
    spec: podSpec({ containers: [caps('app', { drop: ['NET_RAW', 'ALL'] })] }),
    messages: [],
  },
  {
    name: 'no securityContext: drop ALL missing',
    spec: podSpec(),
    messages: [`container "app": ${DROP_ALL} [r]`],
    fields: ['spec.containers[0].securityContext.capabilities.drop'],
  },
  {
    name: 'capabilities without drop',
    spec: podSpec({ containers: [caps('app', { add: ['NET_BIND_SERVICE'] })] }),
    messages: [`container "app": ${DROP_ALL} [r]`],
  },
  {
    name: 'dropping every capability by name is not ALL',
    spec: podSpec({ containers: [caps('app', { drop: ['SYS_ADMIN', 'NET_RAW', 'CHOWN'] })] }),
    messages: [`container "app": ${DROP_ALL} [r]`],
  },
  {
    name: 'all in lower case is not ALL (pod-security-admission compares exactly)',
    spec: podSpec({ containers: [caps('app', { drop: ['all'] })] }),
    messages: [`container "app": ${DROP_ALL} (write "ALL", not "all") [r]`],
    fields: ['spec.containers[0].securityContext.capabilities.drop'],
  },
  {
    name: 'CAP_ALL is not ALL',
    spec: podSpec({ containers: [caps('app', { drop: ['CAP_ALL'] })] }),
    messages: [`container "app": ${DROP_ALL} (write "ALL", not "CAP_ALL") [r]`],
  },
  {
    name: 'a baseline capability is not allowed at restricted',
    spec: podSpec({ containers: [caps('app', { drop: ['ALL'], add: ['CHOWN'] })] }),
    messages: [`container "app": ${ADD} "CHOWN" [r]`],
    fields: ['spec.containers[0].securityContext.capabilities.add[0]'],
  },
  {
    name: 'adding and not dropping: both findings, each at its field',
    spec: podSpec({ containers: [caps('app', { add: ['SYS_ADMIN'] })] }),
    messages: [`container "app": ${ADD} "SYS_ADMIN" [r]`, `container "app": ${DROP_ALL} [r]`],
    fields: [
      'spec.containers[0].securityContext.capabilities.add[0]',
      'spec.containers[0].securityContext.capabilities.drop',
    ],
  },
  {
    name: 'init and ephemeral containers must drop ALL too; the compliant one is not named',
    spec: podSpec({
      initContainers: [{ name: 'setup', image: IMAGE }],
      containers: [caps('app', { drop: ['ALL'] })],
      ephemeralContainers: [{ name: 'debugger', image: IMAGE }],
    }),
    messages: [`initContainer "setup": ${DROP_ALL} [r]`, `ephemeralContainer "debugger": ${DROP_ALL} [r]`],
    fields: [
      'spec.initContainers[0].securityContext.capabilities.drop',
      'spec.ephemeralContainers[0].securityContext.capabilities.drop',
    ],
  },
  {
    name: 'a Windows pod is not judged (from v1.25)',
    spec: podSpec({ os: { name: 'windows' }, containers: [caps('app', { add: ['SYS_ADMIN'] })] }),
    messages: [],
  },
  {
    name: 'a Linux pod is judged (distractor for the Windows row)',
    spec: podSpec({ os: { name: 'linux' } }),
    messages: [`container "app": ${DROP_ALL} [r]`],
  },
];

for (const [label, params, cases] of [
  ['baseline (default params)', {}, baseline],
  ['restricted: allowedAdd [NET_BIND_SERVICE], requiredDrop [ALL]', RESTRICTED, restricted],
] as const) {
  t.test(label, async (t) => {
    expectPodCases(t, 'capabilities', cases, params);
  });
}

t.test('requiredDrop other than ALL: dropping ALL satisfies it, each missing name is listed', async (t) => {
  const ruleset = oneRule('capabilities', { requiredDrop: ['NET_RAW', 'SYS_ADMIN'] });
  const judge = (capabilities: unknown) =>
    evaluate(requestFor('Pod', pod(podSpec({ containers: [caps('app', capabilities)] }))), ruleset);
  expectDecision(t, judge({ drop: ['ALL'] }), { messages: [] });
  expectDecision(t, judge({ drop: ['SYS_ADMIN', 'NET_RAW'] }), { messages: [] });
  expectDecision(t, judge({ drop: ['SYS_ADMIN'] }), {
    messages: ['container "app": securityContext.capabilities.drop must include "NET_RAW" [r]'],
  });
  expectDecision(t, judge({ drop: ['cap_net_raw'] }), {
    messages: [
      'container "app": securityContext.capabilities.drop must include "NET_RAW", "SYS_ADMIN" (write "NET_RAW", not "cap_net_raw") [r]',
    ],
  });
});

t.test('the versions follow pod-security-admission: Windows exempt at restricted from v1.25', async (t) => {
  const windows = pod(podSpec({ os: { name: 'windows' } }));
  const definition = CHECKS.get('capabilities');
  if (definition === undefined) throw new Error('capabilities is not registered');
  t.same(definition.versions, ['v1.0', 'v1.25']);
  for (const [version, allowed] of [
    ['v1.22', false],
    ['v1.24', false],
    ['v1.25', true],
    ['v1.37', true],
  ] as const) {
    const compiled = definition.compileParams(RESTRICTED, version);
    if (!compiled.ok) throw new Error('restricted params do not compile');
    const result = compiled.compiled.run({ request: requestFor('Pod', windows), context: {} });
    t.same(
      result,
      {
        ok: true,
        value: allowed
          ? []
          : [
              {
                path: ['spec', 'containers', 0, 'securityContext', 'capabilities', 'drop'],
                message: `container "app": ${DROP_ALL}`,
              },
            ],
      },
      `restricted at ${version}`,
    );
  }
  // Baseline params judge a Windows pod at every version: that control has no exemption.
  const baselineLatest = definition.compileParams({});
  if (!baselineLatest.ok) throw new Error('baseline params do not compile');
  const windowsAdding = pod(
    podSpec({ os: { name: 'windows' }, containers: [caps('app', { add: ['SYS_ADMIN'] })] }),
  );
  const result = baselineLatest.compiled.run({ request: requestFor('Pod', windowsAdding), context: {} });
  t.equal(result.ok && result.value.length, 1, 'baseline at latest judges the Windows pod');
});

t.test('every pod-template kind', async (t) => {
  expectEveryKind(t, oneRule('capabilities'), {
    spec: podSpec({ containers: [caps('app', { add: ['CAP_SYS_ADMIN'] })] }),
    messages: [`container "app": ${ADD} "CAP_SYS_ADMIN" [r]`],
    fields: ['spec.containers[0].securityContext.capabilities.add[0]'],
  });
});

t.test('an UPDATE that only adds a capability is judged', async (t) => {
  expectUpdateJudged(t, oneRule('capabilities'), {
    before: podSpec({ containers: [caps('app', { add: ['CHOWN'] })] }),
    after: podSpec({ containers: [caps('app', { add: ['CHOWN', 'SYS_ADMIN'] })] }),
    messages: [`container "app": ${ADD} "SYS_ADMIN" [r]`],
  });
});

t.test('an UPDATE that only removes drop ALL is judged', async (t) => {
  expectUpdateJudged(t, oneRule('capabilities', RESTRICTED), {
    before: podSpec({ containers: [caps('app', { drop: ['ALL'] })] }),
    after: podSpec({ containers: [caps('app', { drop: [] })] }),
    messages: [`container "app": ${DROP_ALL} [r]`],
  });
});

t.test('wrong types fail closed', async (t) => {
  const ruleset = oneRule('capabilities', RESTRICTED);
  const at = (...rest: (string | number)[]) => ['spec', 'containers', 0, 'securityContext', ...rest];
  expectMalformed(t, ruleset, podSpec({ containers: [caps('app', { add: 'SYS_ADMIN' })] }), {
    path: at('capabilities', 'add'),
    message: 'must be a list, not a string',
  });
  expectMalformed(t, ruleset, podSpec({ containers: [caps('app', { drop: ['ALL', 7] })] }), {
    path: at('capabilities', 'drop', 1),
    message: 'must be a string, not a number',
  });
  expectMalformed(t, ruleset, podSpec({ containers: [caps('app', ['SYS_ADMIN'])] }), {
    path: at('capabilities'),
    message: 'must be an object, not a list',
  });
  expectMalformed(
    t,
    ruleset,
    podSpec({ containers: [{ name: 'app', image: IMAGE, securityContext: 'privileged' }] }),
    {
      path: at(),
      message: 'must be an object, not a string',
    },
  );
});

t.test('names in params must be spelt as the Standards spell them', async (t) => {
  const errors = (params: unknown) => {
    const result = compileRuleSet({
      apiVersion: 'portcullis.io/v1',
      kind: 'RuleSet',
      rules: [{ name: 'r', check: 'capabilities', params }],
    });
    return result.ok ? [] : result.errors.map(formatRuleSetError);
  };
  t.same(errors({ allowedAdd: ['NET_ADMIN', 'CAP_SYS_TIME', 'sys_nice'], requiredDrop: ['all'] }), [
    'rules[0].params.allowedAdd[1]: must be a capability name in upper case without "CAP_" (like "SYS_TIME"), not "CAP_SYS_TIME"',
    'rules[0].params.allowedAdd[2]: must be a capability name in upper case without "CAP_" (like "SYS_NICE"), not "sys_nice"',
    'rules[0].params.requiredDrop[0]: must be a capability name in upper case without "CAP_" (like "ALL"), not "all"',
  ]);
  t.same(errors({ allowedAdd: 'NET_ADMIN' }), ['rules[0].params.allowedAdd: must be array']);
  t.same(errors({ allowedCapabilities: [] }), ['rules[0].params.allowedCapabilities: unknown field']);
  t.same(errors(RESTRICTED), []);
  t.ok(
    ruleSet([{ name: 'r', check: 'capabilities', params: { allowedAdd: [] } }]),
    'an empty allowedAdd is valid',
  );
});
