import t from 'tap';
import { expectPodCases, type PodCase } from '../../helpers/podchecks.js';
import { CHECKS, evaluate } from '../../../src/core/index.js';
import { pod, podSpec, requestFor } from '../../helpers/requests.js';
import { oneRule } from '../../helpers/rules.js';
import { deniedInEveryKind, updateSeesTheField } from '../../helpers/pods.js';

const ruleset = oneRule('volumeTypes');
const withVolumes = (...volumes: Record<string, unknown>[]) => podSpec({ volumes });
const notAllowed = (name: string, type: string) =>
  `volume "${name}": ${type} is not an allowed volume type [r]`;

const cases: PodCase[] = [
  { name: 'no volumes', spec: podSpec(), messages: [] },
  {
    name: 'every type of the restricted list',
    spec: withVolumes(
      { name: 'a', configMap: { name: 'c' } },
      { name: 'b', csi: { driver: 'secrets-store.csi.k8s.io' } },
      { name: 'c', downwardAPI: { items: [] } },
      { name: 'd', emptyDir: {} },
      { name: 'e', ephemeral: { volumeClaimTemplate: { spec: {} } } },
      { name: 'f', image: { reference: 'registry.k8s.io/pause:3.10' } },
      { name: 'g', persistentVolumeClaim: { claimName: 'data' } },
      { name: 'h', projected: { sources: [] } },
      { name: 'i', secret: { secretName: 's' } },
    ),
    messages: [],
  },
  {
    name: 'a volume with no source is what the API server makes an emptyDir',
    spec: withVolumes({ name: 'scratch' }),
    messages: [],
  },
  {
    name: 'a source set to null is absent (distractor)',
    spec: withVolumes({ name: 'scratch', hostPath: null, emptyDir: {} }),
    messages: [],
  },
  {
    name: 'hostPath is denied like any unlisted type',
    spec: withVolumes({ name: 'ok', emptyDir: {} }, { name: 'root', hostPath: { path: '/' } }),
    messages: [notAllowed('root', 'hostPath')],
    fields: ['spec.volumes[1].hostPath'],
  },
  {
    name: 'the node-mounted and network types',
    spec: withVolumes(
      { name: 'n', nfs: { server: 'nfs.local', path: '/' } },
      { name: 'g', gitRepo: { repository: 'https://example.com/x.git' } },
      { name: 'f', flexVolume: { driver: 'x/y' } },
      { name: 'c', cephfs: { monitors: ['m'] } },
      { name: 'i', iscsi: { targetPortal: 't', iqn: 'q', lun: 0 } },
    ),
    messages: [
      notAllowed('n', 'nfs'),
      notAllowed('g', 'gitRepo'),
      notAllowed('f', 'flexVolume'),
      notAllowed('c', 'cephfs'),
      notAllowed('i', 'iscsi'),
    ],
  },
  {
    name: 'a key that is no volume type Kubernetes knows (a typo) is denied',
    spec: withVolumes({ name: 'x', emptydir: {} }),
    messages: ['volume "x": "emptydir" is not a volume type Kubernetes knows [r]'],
    fields: ['spec.volumes[0].emptydir'],
  },
  {
    name: 'allowed replaces the list',
    params: { allowed: ['nfs', 'configMap'] },
    spec: withVolumes(
      { name: 'n', nfs: { server: 's', path: '/' } },
      { name: 'c', configMap: { name: 'c' } },
      { name: 's', secret: { secretName: 's' } },
    ),
    messages: [notAllowed('s', 'secret')],
  },
  {
    name: 'without emptyDir in allowed, a volume with no source is refused too',
    params: { allowed: ['configMap'] },
    spec: withVolumes({ name: 'scratch' }),
    messages: [
      'volume "scratch": a volume with no source is an emptyDir, which is not an allowed volume type [r]',
    ],
    fields: ['spec.volumes[0]'],
  },
  {
    name: 'allowing hostPath here allows every path (the hostPath check judges paths)',
    params: { allowed: ['hostPath', 'emptyDir'] },
    spec: withVolumes({ name: 'root', hostPath: { path: '/' } }),
    messages: [],
  },
  {
    name: 'a Windows pod is judged too',
    spec: { ...withVolumes({ name: 'h', hostPath: { path: 'C:\\' } }), os: { name: 'windows' } },
    messages: [notAllowed('h', 'hostPath')],
  },
];

expectPodCases(t, 'volumeTypes', cases);

t.test('every template kind', async (t) => {
  deniedInEveryKind(
    t,
    ruleset,
    withVolumes({ name: 'docker', hostPath: { path: '/var/run/docker.sock' } }),
    withVolumes({ name: 'docker', emptyDir: {} }),
    { messages: [notAllowed('docker', 'hostPath')], fields: ['spec.volumes[0].hostPath'] },
  );
});

t.test('an UPDATE whose only change is a volume type is judged', async (t) => {
  updateSeesTheField(
    t,
    ruleset,
    withVolumes({ name: 'd', nfs: { server: 's', path: '/' } }),
    withVolumes({ name: 'd', persistentVolumeClaim: { claimName: 'd' } }),
    [notAllowed('d', 'nfs')],
  );
});

t.test('malformed values fail closed', async (t) => {
  const rows: [string, Record<string, unknown>, (string | number)[], string][] = [
    [
      'a known source that is not an object',
      withVolumes({ name: 'x', emptyDir: 'yes' }),
      ['spec', 'volumes', 0, 'emptyDir'],
      'must be an object, not a string',
    ],
    [
      'a volume that is not an object',
      podSpec({ volumes: ['x'] }),
      ['spec', 'volumes', 0],
      'must be an object, not a string',
    ],
    ['volumes not a list', podSpec({ volumes: {} }), ['spec', 'volumes'], 'must be a list, not an object'],
  ];
  for (const [name, s, path, message] of rows) {
    const decision = evaluate(requestFor('Pod', pod(s)), ruleset);
    t.equal(decision.allowed, false, name);
    t.same(decision.malformed, { path, message }, name);
  }
});

t.test('params', async (t) => {
  const check = CHECKS.get('volumeTypes');
  const bad = check?.compileParams({ allowed: ['emptyDir', 'hostpath'] });
  t.equal(bad?.ok, false);
  t.match(bad?.ok === false ? bad.errors : [], [
    { path: ['allowed', 1], message: /^must be one of: "awsElasticBlockStore", / },
  ]);
  t.same(check?.compileParams({ allowed: ['secret', 'secret'] }), {
    ok: false,
    errors: [
      { path: ['allowed'], message: 'must NOT have duplicate items (items ## 0 and 1 are identical)' },
    ],
  });
});
