import t from 'tap';
import { expectPodCases, type PodCase } from '../../helpers/podchecks.js';
import { CHECKS, evaluate } from '../../../src/core/index.js';
import { pod, requestFor } from '../../helpers/requests.js';
import { oneRule } from '../../helpers/rules.js';
import { deniedInEveryKind, updateSeesTheField } from '../../helpers/pods.js';

const IMAGE = 'registry.k8s.io/pause:3.10';
const ruleset = oneRule('hostProbes');
const c = (name: string, extra: Record<string, unknown> = {}) => ({ name, image: IMAGE, ...extra });
const http = (host?: unknown) => ({
  httpGet: { port: 8080, path: '/healthz', ...(host === undefined ? {} : { host }) },
});
const tcp = (host?: unknown) => ({ tcpSocket: { port: 8080, ...(host === undefined ? {} : { host }) } });
const must = (label: string, field: string, host: string) =>
  `${label}: ${field}.host must be unset, not ${JSON.stringify(host)} [r]`;

const cases: PodCase[] = [
  { name: 'no probes', spec: { containers: [c('app')] }, messages: [] },
  {
    name: 'probes and hooks without host (distractor)',
    spec: {
      containers: [
        c('app', {
          livenessProbe: http(),
          readinessProbe: tcp(),
          startupProbe: { exec: { command: ['true'] } },
          lifecycle: { postStart: http(), preStop: { sleep: { seconds: 5 } } },
        }),
      ],
    },
    messages: [],
  },
  {
    name: 'an empty host is the pod IP (allowed)',
    spec: { containers: [c('app', { livenessProbe: http(''), readinessProbe: tcp('') })] },
    messages: [],
  },
  {
    name: 'a host header is not the host field (distractor)',
    spec: {
      containers: [
        c('app', {
          livenessProbe: { httpGet: { port: 80, httpHeaders: [{ name: 'Host', value: 'bad.host' }] } },
        }),
      ],
    },
    messages: [],
  },
  {
    name: 'livenessProbe.httpGet.host',
    spec: { containers: [c('app', { livenessProbe: http('bad.host') })] },
    messages: [must('container "app"', 'livenessProbe.httpGet', 'bad.host')],
    fields: ['spec.containers[0].livenessProbe.httpGet.host'],
  },
  {
    name: 'readinessProbe.tcpSocket.host on an init container (a sidecar)',
    spec: {
      initContainers: [c('proxy', { restartPolicy: 'Always', readinessProbe: tcp('8.8.8.8') })],
      containers: [c('app')],
    },
    messages: [must('initContainer "proxy"', 'readinessProbe.tcpSocket', '8.8.8.8')],
    fields: ['spec.initContainers[0].readinessProbe.tcpSocket.host'],
  },
  {
    name: 'startupProbe on loopback, both handlers',
    spec: { containers: [c('app', { startupProbe: { ...http('127.0.0.1'), ...tcp('::1') } })] },
    messages: [
      must('container "app"', 'startupProbe.httpGet', '127.0.0.1'),
      must('container "app"', 'startupProbe.tcpSocket', '::1'),
    ],
  },
  {
    name: 'lifecycle hooks, httpGet and the deprecated tcpSocket',
    spec: {
      containers: [
        c('app', { lifecycle: { postStart: http('169.254.169.254'), preStop: tcp('node.local') } }),
      ],
    },
    messages: [
      must('container "app"', 'lifecycle.postStart.httpGet', '169.254.169.254'),
      must('container "app"', 'lifecycle.preStop.tcpSocket', 'node.local'),
    ],
    fields: [
      'spec.containers[0].lifecycle.postStart.httpGet.host',
      'spec.containers[0].lifecycle.preStop.tcpSocket.host',
    ],
  },
  {
    name: 'an ephemeral container',
    spec: { containers: [c('app')], ephemeralContainers: [c('dbg', { readinessProbe: http('10.0.0.1') })] },
    messages: [must('ephemeralContainer "dbg"', 'readinessProbe.httpGet', '10.0.0.1')],
  },
  {
    name: 'a Windows pod is judged too',
    spec: { os: { name: 'windows' }, containers: [c('app', { livenessProbe: http('bad.host') })] },
    messages: [must('container "app"', 'livenessProbe.httpGet', 'bad.host')],
  },
];

expectPodCases(t, 'hostProbes', cases);

t.test('every template kind', async (t) => {
  deniedInEveryKind(
    t,
    ruleset,
    { containers: [c('app', { livenessProbe: http('bad.host') })] },
    { containers: [c('app', { livenessProbe: http() })] },
    {
      messages: [must('container "app"', 'livenessProbe.httpGet', 'bad.host')],
      fields: ['spec.containers[0].livenessProbe.httpGet.host'],
    },
  );
});

t.test('an UPDATE whose only change is a probe host is judged', async (t) => {
  updateSeesTheField(
    t,
    ruleset,
    { containers: [c('app', { readinessProbe: tcp('bad.host') })] },
    { containers: [c('app', { readinessProbe: tcp() })] },
    [must('container "app"', 'readinessProbe.tcpSocket', 'bad.host')],
  );
});

t.test('malformed values fail closed', async (t) => {
  const rows: [string, Record<string, unknown>, (string | number)[], string][] = [
    [
      'host not a string',
      { containers: [c('app', { livenessProbe: http(8080) })] },
      ['spec', 'containers', 0, 'livenessProbe', 'httpGet', 'host'],
      'must be a string, not a number',
    ],
    [
      'probe not an object',
      { containers: [c('app', { readinessProbe: 'tcp' })] },
      ['spec', 'containers', 0, 'readinessProbe'],
      'must be an object, not a string',
    ],
    [
      'httpGet not an object',
      { containers: [c('app', { startupProbe: { httpGet: [] } })] },
      ['spec', 'containers', 0, 'startupProbe', 'httpGet'],
      'must be an object, not a list',
    ],
    [
      'lifecycle not an object',
      { containers: [c('app', { lifecycle: 1 })] },
      ['spec', 'containers', 0, 'lifecycle'],
      'must be an object, not a number',
    ],
    [
      'hook not an object',
      { containers: [c('app', { lifecycle: { preStop: true } })] },
      ['spec', 'containers', 0, 'lifecycle', 'preStop'],
      'must be an object, not a boolean',
    ],
  ];
  for (const [name, s, path, message] of rows) {
    const decision = evaluate(requestFor('Pod', pod(s)), ruleset);
    t.equal(decision.allowed, false, name);
    t.same(decision.malformed, { path, message }, name);
  }
});

t.test('params', async (t) => {
  t.same(CHECKS.get('hostProbes')?.compileParams({ hosts: [] }), {
    ok: false,
    errors: [{ path: ['hosts'], message: 'unknown field' }],
  });
});
