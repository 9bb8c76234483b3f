import t from 'tap';
import { compileRuleSet, formatRuleSetError } from '../../../src/core/index.js';
import {
  expectEveryKind,
  expectMalformed,
  expectUpdateJudged,
  expectPodCases,
  type PodCase,
} from '../../helpers/podchecks.js';
import { podSpec } from '../../helpers/requests.js';
import { oneRule } from '../../helpers/rules.js';

const IMAGE = 'registry.k8s.io/pause:3.10';
const withPorts = (name: string, ports: unknown[]) => ({ name, image: IMAGE, ports });
const hostPort = (port: unknown) => ({ containerPort: 8080, hostPort: port });

const noneAllowed: PodCase[] = [
  { name: 'no ports', spec: podSpec(), messages: [] },
  {
    name: 'containerPort only (distractor: not a host port)',
    spec: podSpec({ containers: [withPorts('app', [{ containerPort: 80 }, { containerPort: 443 }])] }),
    messages: [],
  },
  {
    name: 'hostPort 0 is unset',
    spec: podSpec({ containers: [withPorts('app', [hostPort(0)])] }),
    messages: [],
  },
  {
    name: 'hostPort null is unset',
    spec: podSpec({ containers: [withPorts('app', [hostPort(null)])] }),
    messages: [],
  },
  {
    name: 'a hostPort',
    spec: podSpec({ containers: [withPorts('app', [hostPort(80)])] }),
    messages: ['container "app": ports[0].hostPort must be unset or 0, not 80 [r]'],
    fields: ['spec.containers[0].ports[0].hostPort'],
  },
  {
    name: 'one finding per offending port, the clean port is not named',
    spec: podSpec({
      containers: [withPorts('app', [hostPort(80), { containerPort: 9090 }, hostPort(443)])],
    }),
    messages: [
      'container "app": ports[0].hostPort must be unset or 0, not 80 [r]',
      'container "app": ports[2].hostPort must be unset or 0, not 443 [r]',
    ],
    fields: ['spec.containers[0].ports[0].hostPort', 'spec.containers[0].ports[2].hostPort'],
  },
  {
    name: 'init and ephemeral containers, in that order after nothing else',
    spec: podSpec({
      initContainers: [withPorts('setup', [hostPort(53)])],
      ephemeralContainers: [withPorts('debugger', [hostPort(2345)])],
    }),
    messages: [
      'initContainer "setup": ports[0].hostPort must be unset or 0, not 53 [r]',
      'ephemeralContainer "debugger": ports[0].hostPort must be unset or 0, not 2345 [r]',
    ],
    fields: ['spec.initContainers[0].ports[0].hostPort', 'spec.ephemeralContainers[0].ports[0].hostPort'],
  },
  {
    name: 'a Windows pod is judged too',
    spec: podSpec({ os: { name: 'windows' }, containers: [withPorts('app', [hostPort(3389)])] }),
    messages: ['container "app": ports[0].hostPort must be unset or 0, not 3389 [r]'],
  },
  {
    name: 'hostNetwork alone is another check (distractor)',
    spec: podSpec({ hostNetwork: true }),
    messages: [],
  },
];

const ALLOWED_TEXT = 'must be unset, 0 or in 8000-8100, 9443';
const ranged: PodCase[] = [
  {
    name: 'the lower edge is inside',
    spec: podSpec({ containers: [withPorts('app', [hostPort(8000)])] }),
    messages: [],
  },
  {
    name: 'the upper edge is inside',
    spec: podSpec({ containers: [withPorts('app', [hostPort(8100)])] }),
    messages: [],
  },
  {
    name: 'a single-port range allows that port',
    spec: podSpec({ containers: [withPorts('app', [hostPort(9443)])] }),
    messages: [],
  },
  {
    name: 'just below the lower edge',
    spec: podSpec({ containers: [withPorts('app', [hostPort(7999)])] }),
    messages: [`container "app": ports[0].hostPort ${ALLOWED_TEXT}, not 7999 [r]`],
  },
  {
    name: 'just above the upper edge',
    spec: podSpec({ containers: [withPorts('app', [hostPort(8101)])] }),
    messages: [`container "app": ports[0].hostPort ${ALLOWED_TEXT}, not 8101 [r]`],
  },
  {
    name: 'beside the single port',
    spec: podSpec({ containers: [withPorts('app', [hostPort(9442), hostPort(9444)])] }),
    messages: [
      `container "app": ports[0].hostPort ${ALLOWED_TEXT}, not 9442 [r]`,
      `container "app": ports[1].hostPort ${ALLOWED_TEXT}, not 9444 [r]`,
    ],
  },
  {
    name: 'a negative port is in no range',
    spec: podSpec({ containers: [withPorts('app', [hostPort(-8050)])] }),
    messages: [`container "app": ports[0].hostPort ${ALLOWED_TEXT}, not -8050 [r]`],
  },
];

for (const [label, params, cases] of [
  ['default params: no host port allowed', {}, noneAllowed],
  [
    'allowed: [8000-8100, 9443]',
    {
      allowed: [
        { min: 8000, max: 8100 },
        { min: 9443, max: 9443 },
      ],
    },
    ranged,
  ],
] as const) {
  t.test(label, async (t) => {
    expectPodCases(t, 'hostPorts', cases, params);
  });
}

const ruleset = oneRule('hostPorts');

t.test('every pod-template kind', async (t) => {
  expectEveryKind(t, ruleset, {
    spec: podSpec({ containers: [withPorts('app', [hostPort(80)])] }),
    messages: ['container "app": ports[0].hostPort must be unset or 0, not 80 [r]'],
    fields: ['spec.containers[0].ports[0].hostPort'],
  });
});

t.test('an UPDATE that only adds a hostPort is judged', async (t) => {
  expectUpdateJudged(t, ruleset, {
    before: podSpec({ containers: [withPorts('app', [{ containerPort: 8080 }])] }),
    after: podSpec({ containers: [withPorts('app', [hostPort(8080)])] }),
    messages: ['container "app": ports[0].hostPort must be unset or 0, not 8080 [r]'],
  });
});

t.test('wrong types fail closed', async (t) => {
  expectMalformed(t, ruleset, podSpec({ containers: [withPorts('app', [hostPort('80')])] }), {
    path: ['spec', 'containers', 0, 'ports', 0, 'hostPort'],
    message: 'must be an integer, not a string',
  });
  expectMalformed(t, ruleset, podSpec({ containers: [withPorts('app', [hostPort(80.5)])] }), {
    path: ['spec', 'containers', 0, 'ports', 0, 'hostPort'],
    message: 'must be an integer, not a number',
  });
  expectMalformed(t, ruleset, podSpec({ containers: [withPorts('app', ['80:80'])] }), {
    path: ['spec', 'containers', 0, 'ports', 0],
    message: 'must be an object, not a string',
  });
  expectMalformed(
    t,
    ruleset,
    podSpec({ containers: [{ name: 'app', image: IMAGE, ports: { hostPort: 80 } }] }),
    {
      path: ['spec', 'containers', 0, 'ports'],
      message: 'must be a list, not an object',
    },
  );
});

t.test('bad params name their field', async (t) => {
  const errors = (params: unknown) => {
    const result = compileRuleSet({
      apiVersion: 'portcullis.io/v1',
      kind: 'RuleSet',
      rules: [{ name: 'r', check: 'hostPorts', params }],
    });
    return result.ok ? [] : result.errors.map(formatRuleSetError);
  };
  t.same(errors({ allowed: [{ min: 9000, max: 8000 }] }), [
    'rules[0].params.allowed[0].max: must not be below min (9000)',
  ]);
  t.same(errors({ allowed: [{ min: 0, max: 80 }] }), ['rules[0].params.allowed[0].min: must be >= 1']);
  t.same(errors({ allowed: [{ min: 80, max: 65536 }] }), [
    'rules[0].params.allowed[0].max: must be <= 65535',
  ]);
  t.same(errors({ allowed: [{ min: 80 }] }), ['rules[0].params.allowed[0].max: is required']);
  t.same(errors({ allowed: [{ min: 80, max: 90, step: 2 }] }), [
    'rules[0].params.allowed[0].step: unknown field',
  ]);
});
