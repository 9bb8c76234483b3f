import t from 'tap';
import {
  expectEveryKind,
  expectMalformed,
  expectUpdateJudged,
  expectPodCases,
  type PodCase,
} from '../../helpers/podchecks.js';
import { podSpec } from '../../helpers/requests.js';
import { oneRule } from '../../helpers/rules.js';

const ruleset = oneRule('hostNamespaces');

const cases: PodCase[] = [
  { name: 'none set', spec: podSpec(), messages: [] },
  {
    name: 'all three false (distractor)',
    spec: podSpec({ hostNetwork: false, hostPID: false, hostIPC: false }),
    messages: [],
  },
  {
    name: 'null counts as unset (distractor)',
    spec: podSpec({ hostNetwork: null, hostPID: null }),
    messages: [],
  },
  {
    name: 'hostNetwork',
    spec: podSpec({ hostNetwork: true }),
    messages: ['pod: hostNetwork must not be true [r]'],
    fields: ['spec.hostNetwork'],
  },
  {
    name: 'hostPID',
    spec: podSpec({ hostPID: true }),
    messages: ['pod: hostPID must not be true [r]'],
    fields: ['spec.hostPID'],
  },
  {
    name: 'hostIPC',
    spec: podSpec({ hostIPC: true }),
    messages: ['pod: hostIPC must not be true [r]'],
    fields: ['spec.hostIPC'],
  },
  {
    name: 'all three: one finding each, at its own field',
    spec: podSpec({ hostIPC: true, hostPID: true, hostNetwork: true }),
    messages: [
      'pod: hostNetwork must not be true [r]',
      'pod: hostPID must not be true [r]',
      'pod: hostIPC must not be true [r]',
    ],
    fields: ['spec.hostNetwork', 'spec.hostPID', 'spec.hostIPC'],
  },
  {
    name: 'one true among false ones',
    spec: podSpec({ hostNetwork: false, hostPID: true, hostIPC: false }),
    messages: ['pod: hostPID must not be true [r]'],
  },
  {
    name: 'a Windows pod is judged too (no exemption in the Standards)',
    spec: podSpec({ os: { name: 'windows' }, hostNetwork: true }),
    messages: ['pod: hostNetwork must not be true [r]'],
  },
  {
    name: 'a field of the same name in a container is not the pod field (distractor)',
    spec: podSpec({ containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10', hostPID: true }] }),
    messages: [],
  },
];

expectPodCases(t, 'hostNamespaces', cases);

t.test('every pod-template kind', async (t) => {
  expectEveryKind(t, ruleset, {
    spec: podSpec({ hostPID: true }),
    messages: ['pod: hostPID must not be true [r]'],
    fields: ['spec.hostPID'],
  });
});

t.test('an UPDATE that only sets hostNetwork is judged', async (t) => {
  expectUpdateJudged(t, ruleset, {
    before: podSpec(),
    after: podSpec({ hostNetwork: true }),
    messages: ['pod: hostNetwork must not be true [r]'],
  });
});

t.test('a value that is not a boolean fails closed', async (t) => {
  for (const field of ['hostNetwork', 'hostPID', 'hostIPC']) {
    expectMalformed(t, ruleset, podSpec({ [field]: 'true' }), {
      path: ['spec', field],
      message: 'must be a boolean, not a string',
    });
  }
  expectMalformed(t, ruleset, podSpec({ hostNetwork: 1 }), {
    path: ['spec', 'hostNetwork'],
    message: 'must be a boolean, not a number',
  });
});

t.test('params are refused', async (t) => {
  t.throws(() => oneRule('hostNamespaces', { allowHostNetwork: true }), /allowHostNetwork/);
});
