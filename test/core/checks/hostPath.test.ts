import t from 'tap';
import { evaluate, formatFieldPath } from '../../../src/core/index.js';
import { pod, podSpec, requestFor } from '../../helpers/requests.js';
import { expectDecision } from '../../helpers/decisions.js';
import { oneRule } from '../../helpers/rules.js';

const IMAGE = 'registry.k8s.io/pause:3.10';
const hostVolume = (path: unknown, name = 'h') => ({ name, hostPath: { path, type: 'Directory' } });
const mount = (name: string, readOnly?: boolean) => ({
  name,
  mountPath: '/mnt',
  ...(readOnly === undefined ? {} : { readOnly }),
});
const container = (name: string, mounts: unknown[]) => ({ name, image: IMAGE, volumeMounts: mounts });

interface Case {
  name: string;
  allowedPaths: unknown[];
  spec: Record<string, unknown>;
  /** `message [rule]`, in order; empty when the pod is allowed. */
  messages: string[];
  fields?: string[];
}

const VAR_LOG = [{ pathPrefix: '/var/log' }];
const withVolume = (path: string) => podSpec({ volumes: [hostVolume(path)] });
const notUnder = (path: string, resolved?: string) =>
  `volume "h": hostPath "${path}"${resolved === undefined ? '' : ` (resolves to "${resolved}")`} is not under an allowed path [r]`;

const paths: Case[] = [
  { name: 'the prefix itself', allowedPaths: VAR_LOG, spec: withVolume('/var/log'), messages: [] },
  { name: 'a path below the prefix', allowedPaths: VAR_LOG, spec: withVolume('/var/log/pods'), messages: [] },
  {
    name: '"." components are resolved',
    allowedPaths: VAR_LOG,
    spec: withVolume('/var/log/./pods'),
    messages: [],
  },
  { name: 'a trailing slash', allowedPaths: VAR_LOG, spec: withVolume('/var/log/'), messages: [] },
  { name: 'repeated slashes', allowedPaths: VAR_LOG, spec: withVolume('//var//log'), messages: [] },
  {
    name: '".." that stays below the prefix',
    allowedPaths: VAR_LOG,
    spec: withVolume('/var/log/x/../pods'),
    messages: [],
  },
  {
    name: '".." at the root stays at the root',
    allowedPaths: VAR_LOG,
    spec: withVolume('/../var/log'),
    messages: [],
  },
  {
    name: 'a prefix with a trailing slash still allows the directory itself',
    allowedPaths: [{ pathPrefix: '/var/log/' }],
    spec: withVolume('/var/log'),
    messages: [],
  },
  {
    name: 'a sibling that shares the prefix as a string (distractor)',
    allowedPaths: VAR_LOG,
    spec: withVolume('/var/logs'),
    messages: [notUnder('/var/logs')],
    fields: ['spec.volumes[0].hostPath.path'],
  },
  {
    name: 'traversal out of the prefix, shown resolved',
    allowedPaths: VAR_LOG,
    spec: withVolume('/var/log/../../etc'),
    messages: [notUnder('/var/log/../../etc', '/etc')],
    fields: ['spec.volumes[0].hostPath.path'],
  },
  {
    name: 'traversal to the parent of the prefix',
    allowedPaths: VAR_LOG,
    spec: withVolume('/var/log/..'),
    messages: [notUnder('/var/log/..', '/var')],
  },
  {
    name: 'traversal to the root',
    allowedPaths: VAR_LOG,
    spec: withVolume('/var/log/../../..'),
    messages: [notUnder('/var/log/../../..', '/')],
  },
  {
    name: 'an unrelated path',
    allowedPaths: VAR_LOG,
    spec: withVolume('/etc'),
    messages: [notUnder('/etc')],
  },
  {
    name: 'the parent of the prefix',
    allowedPaths: VAR_LOG,
    spec: withVolume('/var'),
    messages: [notUnder('/var')],
  },
  {
    name: 'a relative path',
    allowedPaths: VAR_LOG,
    spec: withVolume('var/log'),
    messages: ['volume "h": hostPath "var/log" must be an absolute path [r]'],
    fields: ['spec.volumes[0].hostPath.path'],
  },
  {
    name: 'a relative path even under a "/" prefix',
    allowedPaths: [{ pathPrefix: '/' }],
    spec: withVolume('etc'),
    messages: ['volume "h": hostPath "etc" must be an absolute path [r]'],
  },
  {
    name: '"/" allows everything',
    allowedPaths: [{ pathPrefix: '/' }],
    spec: withVolume('/etc/kubernetes'),
    messages: [],
  },
  { name: '"/" allows "/" itself', allowedPaths: [{ pathPrefix: '/' }], spec: withVolume('/'), messages: [] },
  {
    name: 'no allowedPaths: every hostPath is denied',
    allowedPaths: [],
    spec: withVolume('/var/log'),
    messages: [notUnder('/var/log')],
  },
  {
    name: 'any of several prefixes allows',
    allowedPaths: [{ pathPrefix: '/opt' }, { pathPrefix: '/var/log' }],
    spec: withVolume('/var/log/pods'),
    messages: [],
  },
  {
    name: 'only the offending volume is named, with its own index',
    allowedPaths: VAR_LOG,
    spec: podSpec({
      volumes: [hostVolume('/var/log', 'logs'), { name: 'tmp', emptyDir: {} }, hostVolume('/etc', 'etc')],
    }),
    messages: ['volume "etc": hostPath "/etc" is not under an allowed path [r]'],
    fields: ['spec.volumes[2].hostPath.path'],
  },
  {
    name: 'volumes of other types are ignored (distractor)',
    allowedPaths: [],
    spec: podSpec({
      volumes: [
        { name: 'tmp', emptyDir: {} },
        { name: 'cfg', configMap: { name: 'c' } },
        { name: 'pvc', persistentVolumeClaim: { claimName: 'data' } },
        { name: 'token', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } },
      ],
      containers: [container('app', [mount('tmp'), mount('cfg', false)])],
    }),
    messages: [],
  },
];

const RO = [{ pathPrefix: '/var/log', readOnly: true }];
const roSpec = (containers: Record<string, unknown>) =>
  podSpec({ volumes: [hostVolume('/var/log', 'logs')], ...containers });
const rwMessage = (who: string) =>
  `${who}: volumeMount "logs" of hostPath "/var/log" must set readOnly: true [r]`;

const readOnly: Case[] = [
  {
    name: 'readOnly entry, every mount in every container list is readOnly',
    allowedPaths: RO,
    spec: roSpec({
      initContainers: [container('setup', [mount('logs', true)])],
      containers: [container('app', [mount('logs', true)]), container('sidecar', [mount('logs', true)])],
      ephemeralContainers: [container('debugger', [mount('logs', true)])],
    }),
    messages: [],
  },
  {
    name: 'readOnly entry, the volume is not mounted at all',
    allowedPaths: RO,
    spec: roSpec({ containers: [container('app', [])] }),
    messages: [],
  },
  {
    name: 'readOnly entry, an initContainer mounts it with readOnly: false',
    allowedPaths: RO,
    spec: roSpec({
      initContainers: [container('setup', [mount('logs', false)])],
      containers: [container('app', [mount('logs', true)])],
    }),
    messages: [rwMessage('initContainer "setup"')],
    fields: ['spec.initContainers[0].volumeMounts[0].readOnly'],
  },
  {
    name: 'readOnly entry, a mount that leaves readOnly unset',
    allowedPaths: RO,
    spec: roSpec({ containers: [container('app', [mount('other'), mount('logs')])] }),
    messages: [rwMessage('container "app"')],
    fields: ['spec.containers[0].volumeMounts[1].readOnly'],
  },
  {
    name: 'readOnly entry, an ephemeral container mounts it writable',
    allowedPaths: RO,
    spec: roSpec({
      containers: [container('app', [mount('logs', true)])],
      ephemeralContainers: [container('debugger', [mount('logs', false)])],
    }),
    messages: [rwMessage('ephemeralContainer "debugger"')],
    fields: ['spec.ephemeralContainers[0].volumeMounts[0].readOnly'],
  },
  {
    name: 'readOnly entry, every writable mount is named',
    allowedPaths: RO,
    spec: roSpec({
      containers: [
        container('a', [mount('logs')]),
        container('ok', [mount('logs', true)]),
        container('b', [mount('logs', false)]),
      ],
    }),
    messages: [rwMessage('container "a"'), rwMessage('container "b"')],
    fields: ['spec.containers[0].volumeMounts[0].readOnly', 'spec.containers[2].volumeMounts[0].readOnly'],
  },
  {
    name: 'readOnly entry, a writable mount of another volume (distractor)',
    allowedPaths: RO,
    spec: podSpec({
      volumes: [hostVolume('/var/log', 'logs'), { name: 'scratch', emptyDir: {} }],
      containers: [container('app', [mount('logs', true), mount('scratch', false)])],
    }),
    messages: [],
  },
  {
    name: 'two entries allow the path, one not readOnly: the writable one wins',
    allowedPaths: [{ pathPrefix: '/var/log', readOnly: true }, { pathPrefix: '/var' }],
    spec: roSpec({ containers: [container('app', [mount('logs', false)])] }),
    messages: [],
  },
  {
    name: 'a writable entry that does not allow the path does not relax a readOnly one (distractor)',
    allowedPaths: [{ pathPrefix: '/var/log', readOnly: true }, { pathPrefix: '/var/lib' }],
    spec: roSpec({ containers: [container('app', [mount('logs', false)])] }),
    messages: [rwMessage('container "app"')],
  },
  {
    name: 'readOnly: false entry, a writable mount',
    allowedPaths: [{ pathPrefix: '/var/log', readOnly: false }],
    spec: roSpec({ containers: [container('app', [mount('logs', false)])] }),
    messages: [],
  },
];

for (const [group, cases] of [
  ['paths', paths],
  ['readOnly', readOnly],
] as const) {
  t.test(group, async (t) => {
    for (const c of cases) {
      t.test(c.name, async (t) => {
        const decision = evaluate(
          requestFor('Pod', pod(c.spec)),
          oneRule('hostPath', { allowedPaths: c.allowedPaths }),
        );
        expectDecision(t, decision, c);
      });
    }
  });
}

t.test('a malformed hostPath fails closed', async (t) => {
  const malformed: { name: string; volume: unknown; path: string; message: string }[] = [
    {
      name: 'path is not a string',
      volume: hostVolume(42),
      path: 'spec.volumes[0].hostPath.path',
      message: 'must be a string, not a number',
    },
    {
      name: 'path is a list',
      volume: hostVolume(['/var/log']),
      path: 'spec.volumes[0].hostPath.path',
      message: 'must be a string, not a list',
    },
    {
      name: 'path is missing',
      volume: { name: 'h', hostPath: {} },
      path: 'spec.volumes[0].hostPath.path',
      message: 'is missing (must be a string)',
    },
    {
      name: 'hostPath is not an object',
      volume: { name: 'h', hostPath: '/var/log' },
      path: 'spec.volumes[0].hostPath',
      message: 'must be an object, not a string',
    },
  ];
  const ruleset = oneRule('hostPath', { allowedPaths: [{ pathPrefix: '/' }] });
  for (const m of malformed) {
    const decision = evaluate(requestFor('Pod', pod(podSpec({ volumes: [m.volume] }))), ruleset);
    t.equal(decision.allowed, false, m.name);
    t.same(decision.violations, [], m.name);
    t.equal(decision.malformed && formatFieldPath(decision.malformed.path), m.path, m.name);
    t.equal(decision.malformed?.message, m.message, m.name);
  }

  const mountNotBoolean = podSpec({
    volumes: [hostVolume('/var/log', 'logs')],
    containers: [container('app', [{ name: 'logs', mountPath: '/l', readOnly: 'true' }])],
  });
  const decision = evaluate(
    requestFor('Pod', pod(mountNotBoolean)),
    oneRule('hostPath', { allowedPaths: RO }),
  );
  t.equal(decision.allowed, false, 'a readOnly that is not a boolean');
  t.same(decision.malformed, {
    path: ['spec', 'containers', 0, 'volumeMounts', 0, 'readOnly'],
    message: 'must be a boolean, not a string',
  });
});
