import t from 'tap';
import { expectPodCases, registeredCheck, runAtVersion, type PodCase } from '../../helpers/podchecks.js';
import { CHECKS, evaluate, type KubeVersion } from '../../../src/core/index.js';
import { pod, podSpec, requestFor } from '../../helpers/requests.js';
import { oneRule } from '../../helpers/rules.js';
import { deniedInEveryKind, updateSeesTheField } from '../../helpers/pods.js';

const ruleset = oneRule('sysctls');
const withSysctls = (...names: unknown[]) =>
  podSpec({ securityContext: { sysctls: names.map((name) => ({ name, value: '1' })) } });
const unsafe = (i: number, name: string) =>
  `pod: securityContext.sysctls[${i}] "${name}" is not a safe sysctl [r]`;

const cases: PodCase[] = [
  { name: 'no securityContext', spec: { containers: [{ name: 'app', image: 'x.io/y' }] }, messages: [] },
  { name: 'no sysctls', spec: podSpec(), messages: [] },
  { name: 'an empty list', spec: withSysctls(), messages: [] },
  {
    name: 'every name of the v1.0 safe set',
    spec: withSysctls(
      'kernel.shm_rmid_forced',
      'net.ipv4.ip_local_port_range',
      'net.ipv4.tcp_syncookies',
      'net.ipv4.ping_group_range',
      'net.ipv4.ip_unprivileged_port_start',
    ),
    messages: [],
  },
  {
    name: 'the names added up to v1.37 (latest)',
    spec: withSysctls(
      'net.ipv4.ip_local_reserved_ports',
      'net.ipv4.tcp_keepalive_time',
      'net.ipv4.tcp_fin_timeout',
      'net.ipv4.tcp_keepalive_intvl',
      'net.ipv4.tcp_keepalive_probes',
      'net.ipv4.tcp_rmem',
      'net.ipv4.tcp_wmem',
      'net.ipv4.tcp_slow_start_after_idle',
      'net.ipv4.tcp_notsent_lowat',
    ),
    messages: [],
  },
  {
    name: 'an unsafe sysctl, among safe ones; only it is named',
    spec: withSysctls('net.ipv4.tcp_syncookies', 'kernel.msgmax', 'net.ipv4.ping_group_range'),
    messages: [unsafe(1, 'kernel.msgmax')],
    fields: ['spec.securityContext.sysctls[1].name'],
  },
  {
    name: 'node-wide ones',
    spec: withSysctls('kernel.core_pattern', 'vm.overcommit_memory', 'net.core.somaxconn'),
    messages: [
      unsafe(0, 'kernel.core_pattern'),
      unsafe(1, 'vm.overcommit_memory'),
      unsafe(2, 'net.core.somaxconn'),
    ],
  },
  {
    name: 'a safe name spelled with slashes is not the safe name (as pod-security-admission)',
    spec: withSysctls('net/ipv4/tcp_syncookies'),
    messages: [unsafe(0, 'net/ipv4/tcp_syncookies')],
  },
  {
    name: 'a look-alike of a safe name (distractor)',
    spec: withSysctls('net.ipv4.tcp_syncookies2', 'kernel.shm_rmid_forced.x'),
    messages: [unsafe(0, 'net.ipv4.tcp_syncookies2'), unsafe(1, 'kernel.shm_rmid_forced.x')],
  },
  {
    name: 'allowed adds a name',
    params: { allowed: ['net.core.somaxconn'] },
    spec: withSysctls('net.core.somaxconn', 'kernel.shm_rmid_forced', 'kernel.msgmax'),
    messages: [unsafe(2, 'kernel.msgmax')],
  },
];

expectPodCases(t, 'sysctls', cases);

t.test('versions: the safe set grows at v1.27, v1.29, v1.32 and v1.37, and each edge is exact', async (t) => {
  t.same(registeredCheck('sysctls').versions, ['v1.0', 'v1.27', 'v1.29', 'v1.32', 'v1.37']);
  const allowedAt = (version: KubeVersion, name: string): boolean => {
    const result = runAtVersion('sysctls', version, withSysctls(name));
    if (!result.ok) throw new Error(result.error.message);
    return result.value.length === 0;
  };
  const edges: [name: string, since: KubeVersion, before: KubeVersion][] = [
    ['net.ipv4.ip_local_reserved_ports', 'v1.27', 'v1.26'],
    ['net.ipv4.tcp_keepalive_time', 'v1.29', 'v1.28'],
    ['net.ipv4.tcp_fin_timeout', 'v1.29', 'v1.28'],
    ['net.ipv4.tcp_keepalive_intvl', 'v1.29', 'v1.28'],
    ['net.ipv4.tcp_keepalive_probes', 'v1.29', 'v1.28'],
    ['net.ipv4.tcp_rmem', 'v1.32', 'v1.31'],
    ['net.ipv4.tcp_wmem', 'v1.32', 'v1.31'],
    ['net.ipv4.tcp_slow_start_after_idle', 'v1.37', 'v1.36'],
    ['net.ipv4.tcp_notsent_lowat', 'v1.37', 'v1.36'],
  ];
  for (const [name, since, before] of edges) {
    t.equal(allowedAt(before, name), false, `${name} is unsafe at ${before}`);
    t.equal(allowedAt(since, name), true, `${name} is safe from ${since}`);
  }
  t.equal(allowedAt('v1.0', 'kernel.shm_rmid_forced'), true, 'the v1.0 set at v1.0');
  t.equal(allowedAt('v1.37', 'kernel.msgmax'), false, 'never kernel.msgmax');
});

t.test('every template kind', async (t) => {
  deniedInEveryKind(t, ruleset, withSysctls('kernel.msgmax'), withSysctls('net.ipv4.tcp_syncookies'), {
    messages: [unsafe(0, 'kernel.msgmax')],
    fields: ['spec.securityContext.sysctls[0].name'],
  });
});

t.test('an UPDATE whose only change is a sysctl is judged', async (t) => {
  updateSeesTheField(t, ruleset, withSysctls('kernel.msgmax'), withSysctls('kernel.shm_rmid_forced'), [
    unsafe(0, 'kernel.msgmax'),
  ]);
});

t.test('malformed values fail closed', async (t) => {
  const rows: [string, Record<string, unknown>, (string | number)[], string][] = [
    [
      'a name that is not a string',
      withSysctls(7),
      ['spec', 'securityContext', 'sysctls', 0, 'name'],
      'must be a string, not a number',
    ],
    [
      'an entry without a name',
      podSpec({ securityContext: { sysctls: [{ value: '1' }] } }),
      ['spec', 'securityContext', 'sysctls', 0, 'name'],
      'is missing (must be a string)',
    ],
    [
      'an entry that is not an object',
      podSpec({ securityContext: { sysctls: ['kernel.msgmax'] } }),
      ['spec', 'securityContext', 'sysctls', 0],
      'must be an object, not a string',
    ],
    [
      'sysctls not a list',
      podSpec({ securityContext: { sysctls: { name: 'x' } } }),
      ['spec', 'securityContext', 'sysctls'],
      'must be a list, not an object',
    ],
  ];
  for (const [name, s, path, message] of rows) {
    const decision = evaluate(requestFor('Pod', pod(s)), ruleset);
    t.equal(decision.allowed, false, name);
    t.same(decision.malformed, { path, message }, name);
  }
});

t.test('params name the bad entry', async (t) => {
  const check = CHECKS.get('sysctls');
  t.same(check?.compileParams({ allowed: ['net.core.somaxconn', 'Kernel.Msg*', ''] }), {
    ok: false,
    errors: [{ path: ['allowed', 2], message: 'must NOT have fewer than 1 characters' }],
  });
  t.same(check?.compileParams({ allowed: ['net.core.somaxconn', 'kernel.msg*'] }), {
    ok: false,
    errors: [{ path: ['allowed', 1], message: '"kernel.msg*" is not a sysctl name' }],
  });
  t.same(check?.compileParams({ allowed: ['a.b', 'a.b'] }), {
    ok: false,
    errors: [
      { path: ['allowed'], message: 'must NOT have duplicate items (items ## 1 and 0 are identical)' },
    ],
  });
});
