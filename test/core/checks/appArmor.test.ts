import t from 'tap';
import { evaluate } from '../../../src/core/index.js';
import { expectDecision } from '../../helpers/decisions.js';
import {
  expectEveryKind,
  expectMalformed,
  expectUpdateJudged,
  objectOfKind,
  expectPodCases,
  type PodCase,
} from '../../helpers/podchecks.js';
import { podSpec, requestFor } from '../../helpers/requests.js';
import { oneRule } from '../../helpers/rules.js';

const IMAGE = 'registry.k8s.io/pause:3.10';
const ruleset = oneRule('appArmor');
const profile = (type: unknown) => ({ appArmorProfile: { type } });
const c = (name: string, securityContext?: unknown) => ({
  name,
  image: IMAGE,
  ...(securityContext === undefined ? {} : { securityContext }),
});
const KEY = 'container.apparmor.security.beta.kubernetes.io/';
const TYPE_TEXT = 'securityContext.appArmorProfile.type must be RuntimeDefault or Localhost';
const annotationText = (container: string, value: string) =>
  `pod: annotation ${KEY}${container} must be runtime/default or localhost/<profile>, not ${JSON.stringify(value)} [r]`;

const cases: PodCase[] = [
  { name: 'nothing set', spec: podSpec(), messages: [] },
  {
    name: 'RuntimeDefault and Localhost fields',
    spec: podSpec({
      securityContext: { appArmorProfile: { type: 'RuntimeDefault' } },
      containers: [c('app', { appArmorProfile: { type: 'Localhost', localhostProfile: 'k8s-nginx' } })],
    }),
    messages: [],
  },
  {
    name: 'allowed annotations: runtime/default, localhost/*, empty',
    spec: podSpec({ containers: [c('a'), c('b'), c('c')] }),
    annotations: { [`${KEY}a`]: 'runtime/default', [`${KEY}b`]: 'localhost/k8s-nginx', [`${KEY}c`]: '' },
    messages: [],
  },
  {
    name: 'Unconfined at pod level',
    spec: podSpec({ securityContext: profile('Unconfined') }),
    messages: [`pod: ${TYPE_TEXT}, not "Unconfined" [r]`],
    fields: ['spec.securityContext.appArmorProfile.type'],
  },
  {
    name: 'Unconfined in a container under a RuntimeDefault pod',
    spec: podSpec({
      securityContext: profile('RuntimeDefault'),
      containers: [c('ok'), c('app', profile('Unconfined'))],
    }),
    messages: [`container "app": ${TYPE_TEXT}, not "Unconfined" [r]`],
    fields: ['spec.containers[1].securityContext.appArmorProfile.type'],
  },
  {
    name: 'init and ephemeral containers',
    spec: podSpec({
      initContainers: [c('setup', profile('Unconfined'))],
      ephemeralContainers: [c('debugger', profile('Unconfined'))],
    }),
    messages: [
      `initContainer "setup": ${TYPE_TEXT}, not "Unconfined" [r]`,
      `ephemeralContainer "debugger": ${TYPE_TEXT}, not "Unconfined" [r]`,
    ],
    fields: [
      'spec.initContainers[0].securityContext.appArmorProfile.type',
      'spec.ephemeralContainers[0].securityContext.appArmorProfile.type',
    ],
  },
  {
    name: 'a type that is neither allowed nor Unconfined (the field compares exactly)',
    spec: podSpec({ containers: [c('app', profile('runtime/default'))] }),
    messages: [`container "app": ${TYPE_TEXT}, not "runtime/default" [r]`],
  },
  {
    name: 'an appArmorProfile without a type',
    spec: podSpec({ containers: [c('app', { appArmorProfile: {} })] }),
    messages: [
      'container "app": securityContext.appArmorProfile.type must be set to RuntimeDefault or Localhost [r]',
    ],
  },
  {
    name: 'the unconfined annotation',
    spec: podSpec(),
    annotations: { [`${KEY}app`]: 'unconfined' },
    messages: [annotationText('app', 'unconfined')],
    fields: [`metadata.annotations.${KEY}app`],
  },
  {
    name: 'annotations: one finding each, sorted by key; the allowed one is not named',
    spec: podSpec({ containers: [c('b'), c('a'), c('ok')] }),
    annotations: {
      [`${KEY}b`]: 'Unconfined',
      [`${KEY}ok`]: 'runtime/default',
      [`${KEY}a`]: 'docker-default',
    },
    messages: [annotationText('a', 'docker-default'), annotationText('b', 'Unconfined')],
  },
  {
    name: 'the annotation is judged even when the field says RuntimeDefault',
    spec: podSpec({ containers: [c('app', profile('RuntimeDefault'))] }),
    annotations: { [`${KEY}app`]: 'unconfined' },
    messages: [annotationText('app', 'unconfined')],
  },
  {
    name: 'a field and an annotation: both reported',
    spec: podSpec({ securityContext: profile('Unconfined') }),
    annotations: { [`${KEY}app`]: 'unconfined' },
    messages: [`pod: ${TYPE_TEXT}, not "Unconfined" [r]`, annotationText('app', 'unconfined')],
  },
  {
    name: 'an annotation of another prefix (distractor)',
    spec: podSpec(),
    annotations: {
      'apparmor.security.beta.kubernetes.io/app': 'unconfined',
      'container.seccomp.security.alpha.kubernetes.io/app': 'unconfined',
      'example.com/apparmor': 'unconfined',
    },
    messages: [],
  },
  {
    name: 'a seccomp Unconfined is another check (distractor)',
    spec: podSpec({ containers: [c('app', { seccompProfile: { type: 'Unconfined' } })] }),
    messages: [],
  },
  {
    name: 'a Windows pod is judged too',
    spec: podSpec({ os: { name: 'windows' }, securityContext: profile('Unconfined') }),
    messages: [`pod: ${TYPE_TEXT}, not "Unconfined" [r]`],
  },
];

expectPodCases(t, 'appArmor', cases);

t.test('every pod-template kind: the field, and the annotation on the template', async (t) => {
  t.test('field', async (t) => {
    expectEveryKind(t, ruleset, {
      spec: podSpec({ containers: [c('app', profile('Unconfined'))] }),
      messages: [`container "app": ${TYPE_TEXT}, not "Unconfined" [r]`],
      fields: ['spec.containers[0].securityContext.appArmorProfile.type'],
    });
  });
  t.test('annotation', async (t) => {
    expectEveryKind(t, ruleset, {
      spec: podSpec(),
      annotations: { [`${KEY}app`]: 'unconfined' },
      messages: [annotationText('app', 'unconfined')],
      fields: [`metadata.annotations.${KEY}app`],
    });
  });
});

t.test('an UPDATE that only sets the field is judged', async (t) => {
  expectUpdateJudged(t, ruleset, {
    before: podSpec(),
    after: podSpec({ containers: [c('app', profile('Unconfined'))] }),
    messages: [`container "app": ${TYPE_TEXT}, not "Unconfined" [r]`],
  });
});

t.test('an UPDATE that only adds the annotation is judged', async (t) => {
  const before = objectOfKind('Deployment', podSpec());
  const after = objectOfKind('Deployment', podSpec(), { [`${KEY}app`]: 'unconfined' });
  const changed = evaluate(
    requestFor('Deployment', after, { operation: 'UPDATE', oldObject: before }),
    ruleset,
  );
  expectDecision(t, changed, { messages: [annotationText('app', 'unconfined')] });
  const unchanged = evaluate(
    requestFor('Deployment', after, { operation: 'UPDATE', oldObject: after }),
    ruleset,
  );
  t.equal(unchanged.skipped?.kind, 'unchanged');
});

t.test('wrong types fail closed', async (t) => {
  expectMalformed(t, ruleset, podSpec({ containers: [c('app', profile(1))] }), {
    path: ['spec', 'containers', 0, 'securityContext', 'appArmorProfile', 'type'],
    message: 'must be a string, not a number',
  });
  expectMalformed(t, ruleset, podSpec({ securityContext: { appArmorProfile: 'Unconfined' } }), {
    path: ['spec', 'securityContext', 'appArmorProfile'],
    message: 'must be an object, not a string',
  });
  const annotated = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', annotations: { [`${KEY}app`]: { profile: 'unconfined' } } },
    spec: podSpec(),
  };
  const decision = evaluate(requestFor('Pod', annotated), ruleset);
  t.equal(decision.allowed, false);
  t.same(decision.malformed, {
    path: ['metadata', 'annotations', `${KEY}app`],
    message: 'must be a string, not an object',
  });
});
