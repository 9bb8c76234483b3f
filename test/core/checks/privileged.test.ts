import t from 'tap';
import { expectPodCases, type PodCase } from '../../helpers/podchecks.js';
import { evaluate } from '../../../src/core/index.js';
import { pod, podSpec, requestFor } from '../../helpers/requests.js';
import { oneRule } from '../../helpers/rules.js';

const ruleset = oneRule('privileged');
const app = (securityContext: unknown) => ({
  name: 'app',
  image: 'registry.k8s.io/pause:3.10',
  securityContext,
});

const cases: PodCase[] = [
  { name: 'no securityContext', spec: podSpec(), messages: [] },
  {
    name: 'privileged: false (distractor)',
    spec: podSpec({ containers: [app({ privileged: false })] }),
    messages: [],
  },
  {
    name: 'privileged container',
    spec: podSpec({ containers: [app({ privileged: true })] }),
    messages: ['container "app": securityContext.privileged must not be true [r]'],
    fields: ['spec.containers[0].securityContext.privileged'],
  },
  {
    name: 'privileged init container',
    spec: podSpec({ initContainers: [{ ...app({ privileged: true }), name: 'setup' }] }),
    messages: ['initContainer "setup": securityContext.privileged must not be true [r]'],
    fields: ['spec.initContainers[0].securityContext.privileged'],
  },
  {
    name: 'privileged ephemeral container',
    spec: podSpec({ ephemeralContainers: [{ ...app({ privileged: true }), name: 'debugger' }] }),
    messages: ['ephemeralContainer "debugger": securityContext.privileged must not be true [r]'],
  },
  {
    name: 'every offender is listed, the clean one is not',
    spec: podSpec({
      containers: [
        app({ privileged: true }),
        { name: 'ok', image: 'x.io/y' },
        { ...app({ privileged: true }), name: 'b' },
      ],
    }),
    messages: [
      'container "app": securityContext.privileged must not be true [r]',
      'container "b": securityContext.privileged must not be true [r]',
    ],
  },
  {
    name: 'Windows hostProcess container',
    spec: podSpec({ containers: [app({ windowsOptions: { hostProcess: true } })] }),
    messages: ['container "app": securityContext.windowsOptions.hostProcess must not be true [r]'],
  },
  {
    name: 'Windows hostProcess pod',
    spec: podSpec({ securityContext: { windowsOptions: { hostProcess: true } } }),
    messages: ['pod: securityContext.windowsOptions.hostProcess must not be true [r]'],
    fields: ['spec.securityContext.windowsOptions.hostProcess'],
  },
  {
    name: 'hostProcess: false (distractor)',
    spec: podSpec({ securityContext: { windowsOptions: { hostProcess: false } } }),
    messages: [],
  },
];

expectPodCases(t, 'privileged', cases);

t.test('a privileged value that is not a boolean fails closed', async (t) => {
  const decision = evaluate(
    requestFor('Pod', pod(podSpec({ containers: [app({ privileged: 'true' })] }))),
    ruleset,
  );
  t.equal(decision.allowed, false);
  t.same(decision.malformed, {
    path: ['spec', 'containers', 0, 'securityContext', 'privileged'],
    message: 'must be a boolean, not a string',
  });
});
