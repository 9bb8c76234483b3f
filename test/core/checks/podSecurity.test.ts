import { readFileSync } from 'node:fs';
import t from 'tap';
import { CHECKS, evaluate, mutate, type KubeVersion } from '../../../src/core/index.js';
import { CONTROLS } from '../../../src/core/checks/podSecurity.js';
import { pod, requestFor } from '../../helpers/requests.js';
import { expectDecision } from '../../helpers/decisions.js';
import { oneRule } from '../../helpers/rules.js';
import { deniedInEveryKind, updateSeesTheField } from '../../helpers/pods.js';

const IMAGE = 'registry.k8s.io/pause:3.10';
const RESTRICTED_SC = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };

/** A container the restricted level admits, with `sc` merged into its securityContext. */
const c = (name: string, sc: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  name,
  image: IMAGE,
  securityContext: { ...RESTRICTED_SC, ...sc },
  ...extra,
});
/** A pod spec the restricted level admits, with `overrides` on top. */
const restrictedSpec = (overrides: Record<string, unknown> = {}) => ({
  securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
  initContainers: [c('init')],
  containers: [c('app')],
  ...overrides,
});
const psa = (level: string, version?: string, exemptControls?: string[]) =>
  oneRule('podSecurity', {
    level,
    ...(version === undefined ? {} : { version }),
    ...(exemptControls === undefined ? {} : { exemptControls }),
  });
const judge = (level: string, spec: Record<string, unknown>, version?: string, exempt?: string[]) =>
  evaluate(requestFor('Pod', pod(spec)), psa(level, version, exempt));

const UNMASKED = 'container "app": securityContext.procMount must be unset or Default, not "Unmasked"';
const PROBE_HOST = 'container "app": livenessProbe.httpGet.host must be unset, not "bad.host"';
const NO_PROFILE =
  'pod or container "app": securityContext.seccompProfile.type must be set to RuntimeDefault or Localhost';

t.test('a restricted-compliant pod passes both levels, at every version', async (t) => {
  for (const version of ['v1.0', 'v1.18', 'v1.19', 'v1.25', 'v1.34', 'v1.35', 'v1.37', 'latest']) {
    for (const level of ['baseline', 'restricted']) {
      expectDecision(t, judge(level, restrictedSpec(), version), { messages: [] });
    }
  }
});

t.test('each violation names its control', async (t) => {
  const spec = restrictedSpec({
    securityContext: {
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
      sysctls: [{ name: 'kernel.msgmax', value: '1' }],
      windowsOptions: { hostProcess: true },
    },
    containers: [
      c(
        'app',
        { privileged: true, procMount: 'Unmasked' },
        { livenessProbe: { httpGet: { port: 80, host: 'bad.host' } } },
      ),
    ],
    volumes: [{ name: 'h', hostPath: { path: '/etc' } }],
  });
  expectDecision(t, judge('baseline', spec), {
    messages: [
      'container "app": securityContext.privileged must not be true (control: privileged) [r]',
      'pod: securityContext.windowsOptions.hostProcess must not be true (control: windowsHostProcess) [r]',
      'volume "h": hostPath "/etc" is not under an allowed path (control: hostPathVolumes) [r]',
      `${UNMASKED} (control: procMount) [r]`,
      'pod: securityContext.sysctls[0] "kernel.msgmax" is not a safe sysctl (control: sysctls) [r]',
      `${PROBE_HOST} (control: hostProbesAndHostLifecycle) [r]`,
    ],
    fields: [
      'spec.containers[0].securityContext.privileged',
      'spec.securityContext.windowsOptions.hostProcess',
      'spec.volumes[0].hostPath.path',
      'spec.containers[0].securityContext.procMount',
      'spec.securityContext.sysctls[0].name',
      'spec.containers[0].livenessProbe.httpGet.host',
    ],
  });
  // At restricted, restrictedVolumes replaces hostPathVolumes and procMount_restricted procMount.
  const restricted = judge('restricted', spec).violations.map((v) => v.message);
  t.ok(
    restricted.includes('volume "h": hostPath is not an allowed volume type (control: restrictedVolumes)'),
  );
  t.ok(restricted.includes(`${UNMASKED} (control: procMount_restricted)`));
  t.notOk(
    restricted.some((m) => m.endsWith('(control: hostPathVolumes)') || m.endsWith('(control: procMount)')),
  );
});

t.test('baseline does not require what only restricted does (distractors)', async (t) => {
  const spec = {
    containers: [{ name: 'app', image: IMAGE }],
    volumes: [{ name: 'n', nfs: { server: 's', path: '/' } }],
  };
  expectDecision(t, judge('baseline', spec), { messages: [] });
  t.same(
    judge('restricted', spec)
      .violations.map((v) => v.message)
      .filter((m) => /restrictedVolumes|seccompProfile/.test(m)),
    [
      'volume "n": nfs is not an allowed volume type (control: restrictedVolumes)',
      `${NO_PROFILE} (control: seccompProfile_restricted)`,
    ],
  );
});

interface VersionEdge {
  name: string;
  level: string;
  spec: Record<string, unknown>;
  before: KubeVersion;
  since: KubeVersion;
  /** The messages at `before` and at `since`. */
  messages: [string[], string[]];
}

const edges: VersionEdge[] = [
  {
    name: 'hostProbesAndHostLifecycle is a control from v1.34',
    level: 'baseline',
    spec: restrictedSpec({
      containers: [c('app', {}, { livenessProbe: { httpGet: { port: 80, host: 'bad.host' } } })],
    }),
    before: 'v1.33',
    since: 'v1.34',
    messages: [[], [`${PROBE_HOST} (control: hostProbesAndHostLifecycle) [r]`]],
  },
  {
    name: 'baseline procMount is relaxed for hostUsers: false from v1.35',
    level: 'baseline',
    spec: restrictedSpec({ hostUsers: false, containers: [c('app', { procMount: 'Unmasked' })] }),
    before: 'v1.34',
    since: 'v1.35',
    messages: [[`${UNMASKED} (control: procMount) [r]`], []],
  },
  {
    name: 'restricted keeps procMount for hostUsers: false: procMount, then procMount_restricted from v1.35',
    level: 'restricted',
    spec: restrictedSpec({ hostUsers: false, containers: [c('app', { procMount: 'Unmasked' })] }),
    before: 'v1.34',
    since: 'v1.35',
    messages: [[`${UNMASKED} (control: procMount) [r]`], [`${UNMASKED} (control: procMount_restricted) [r]`]],
  },
  {
    name: 'restricted requires a seccomp profile from v1.19 (seccompProfile_baseline before)',
    level: 'restricted',
    spec: restrictedSpec({ securityContext: { runAsNonRoot: true } }),
    before: 'v1.18',
    since: 'v1.19',
    messages: [
      [],
      [
        'pod or containers "init", "app": securityContext.seccompProfile.type must be set to RuntimeDefault or Localhost (control: seccompProfile_restricted) [r]',
      ],
    ],
  },
  {
    name: 'the v1.37 sysctls are safe from v1.37',
    level: 'baseline',
    spec: restrictedSpec({
      securityContext: {
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
        sysctls: [{ name: 'net.ipv4.tcp_notsent_lowat', value: '16384' }],
      },
    }),
    before: 'v1.36',
    since: 'v1.37',
    messages: [
      [
        'pod: securityContext.sysctls[0] "net.ipv4.tcp_notsent_lowat" is not a safe sysctl (control: sysctls) [r]',
      ],
      [],
    ],
  },
];

for (const edge of edges) {
  t.test(edge.name, async (t) => {
    expectDecision(t, judge(edge.level, edge.spec, edge.before), { messages: edge.messages[0] });
    expectDecision(t, judge(edge.level, edge.spec, edge.since), { messages: edge.messages[1] });
  });
}

t.test('latest is v1.37, and a newer version is judged as the newest', async (t) => {
  const spec = restrictedSpec({
    securityContext: {
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
      sysctls: [
        { name: 'net.ipv4.tcp_slow_start_after_idle', value: '0' },
        { name: 'kernel.msgmax', value: '1' },
      ],
    },
  });
  const expected = [
    'pod: securityContext.sysctls[1] "kernel.msgmax" is not a safe sysctl (control: sysctls) [r]',
  ];
  for (const version of [undefined, 'latest', 'v1.37', 'v1.40']) {
    expectDecision(t, judge('baseline', spec, version), { messages: expected });
  }
});

t.test('Windows pods: seccomp is not required, hostProcess is still refused', async (t) => {
  const windows = {
    os: { name: 'windows' },
    securityContext: { runAsNonRoot: true },
    containers: [c('app')],
  };
  const seccompVerdict = judge('restricted', windows).violations.filter((v) => v.message.includes('seccomp'));
  t.same(seccompVerdict, []);
  const hostProcess = { ...windows, containers: [c('app', { windowsOptions: { hostProcess: true } })] };
  t.same(
    judge('baseline', hostProcess).violations.map((v) => v.message),
    [
      'container "app": securityContext.windowsOptions.hostProcess must not be true (control: windowsHostProcess)',
    ],
  );
});

t.test('exemptControls', async (t) => {
  const spec = restrictedSpec({
    securityContext: { runAsNonRoot: true },
    containers: [c('app', { procMount: 'Unmasked' })],
  });
  t.test('an exempted control is not judged', async (t) => {
    expectDecision(t, judge('baseline', spec, 'latest', ['procMount']), { messages: [] });
  });
  t.test('exempting a restricted control brings back the baseline control it replaced', async (t) => {
    expectDecision(
      t,
      judge('restricted', spec, 'latest', ['seccompProfile_restricted', 'procMount_restricted']),
      {
        messages: [`${UNMASKED} (control: procMount) [r]`],
      },
    );
    const unconfined = restrictedSpec({
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'Unconfined' } },
    });
    expectDecision(t, judge('restricted', unconfined, 'latest', ['seccompProfile_restricted']), {
      messages: [
        'pod: securityContext.seccompProfile.type must not be Unconfined (control: seccompProfile_baseline) [r]',
      ],
    });
  });
});

t.test('params name the field', async (t) => {
  const check = CHECKS.get('podSecurity');
  if (check === undefined) throw new Error('podSecurity is not registered');
  const issues = (params: unknown) => {
    const result = check.compileParams(params);
    return result.ok ? [] : result.errors;
  };
  t.same(issues({}), [{ path: ['level'], message: 'is required' }]);
  t.same(issues({ level: 'privileged' }), [
    { path: ['level'], message: 'must be one of: "baseline", "restricted"' },
  ]);
  t.same(issues({ level: 'baseline', version: '1.30' }), [
    { path: ['version'], message: 'must be "latest" or a Kubernetes minor version like "v1.37", not "1.30"' },
  ]);
  t.same(issues({ level: 'baseline', version: 'v2.0' }), [
    { path: ['version'], message: 'must be "latest" or a Kubernetes minor version like "v1.37", not "v2.0"' },
  ]);
  t.same(issues({ level: 'baseline', exemptControls: ['restrictedVolumes'] }), [
    { path: ['exemptControls', 0], message: '"restrictedVolumes" is not a control of level baseline' },
  ]);
  t.match(issues({ level: 'restricted', exemptControls: ['hostPath'] }), [
    { path: ['exemptControls', 0], message: /^must be one of: "privileged", "windowsHostProcess", / },
  ]);
  t.same(issues({ level: 'restricted', mode: 'enforce' }), [{ path: ['mode'], message: 'unknown field' }]);
});

t.test('every control compiles at every version, and names a registered check', async (t) => {
  for (const control of CONTROLS) {
    t.equal(
      CHECKS.get(control.check.id),
      control.check,
      `${control.id} uses the registry's ${control.check.id}`,
    );
    for (let minor = 0; minor <= 37; minor++) {
      const result = control.check.compileParams(control.params, `v1.${minor}`);
      if (!result.ok) t.fail(`${control.id} at v1.${minor}: ${JSON.stringify(result.errors)}`);
    }
  }
  t.ok(CONTROLS.length > 0);
});

t.test('every template kind', async (t) => {
  deniedInEveryKind(
    t,
    psa('restricted'),
    restrictedSpec({ volumes: [{ name: 'g', gitRepo: { repository: 'https://example.com/x.git' } }] }),
    restrictedSpec({ volumes: [{ name: 'g', emptyDir: {} }] }),
    {
      messages: ['volume "g": gitRepo is not an allowed volume type (control: restrictedVolumes) [r]'],
      fields: ['spec.volumes[0].gitRepo'],
    },
  );
});

t.test('an UPDATE whose only change is a judged field is judged', async (t) => {
  updateSeesTheField(
    t,
    psa('baseline'),
    restrictedSpec({
      containers: [c('app', {}, { readinessProbe: { tcpSocket: { port: 80, host: 'bad.host' } } })],
    }),
    restrictedSpec({ containers: [c('app', {}, { readinessProbe: { tcpSocket: { port: 80 } } })] }),
    [
      'container "app": readinessProbe.tcpSocket.host must be unset, not "bad.host" (control: hostProbesAndHostLifecycle) [r]',
    ],
  );
});

t.test('a malformed field read by any control fails the request closed', async (t) => {
  const decision = judge('baseline', restrictedSpec({ hostUsers: 'no' }));
  t.equal(decision.allowed, false);
  t.same(decision.malformed, { path: ['spec', 'hostUsers'], message: 'must be a boolean, not a string' });
  const probe = judge('baseline', restrictedSpec({ containers: [c('app', {}, { startupProbe: 'x' })] }));
  t.same(probe.malformed, {
    path: ['spec', 'containers', 0, 'startupProbe'],
    message: 'must be an object, not a string',
  });
});

t.test('podSecurity judges only: /mutate adds no seccomp profile', async (t) => {
  const request = requestFor('Pod', pod({ containers: [{ name: 'app', image: IMAGE }] }));
  t.same(mutate(request, psa('restricted')), { patch: [], rules: [] });
});

t.test('the README lists every control of the table, with its check and version', async (t) => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  for (const control of CONTROLS) {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${control.id}\` `));
    t.ok(row, `README has a row for ${control.id}`);
    t.match(row ?? '', `\`${control.check.id}\``, `${control.id}: its check`);
    t.match(
      row ?? '',
      new RegExp(`\\| ${control.since.replace('.', '\\.')} +\\|$`),
      `${control.id}: from ${control.since}`,
    );
    if (control.replaces !== undefined) t.match(row ?? '', `replaces \`${control.replaces}\``);
  }
});

t.test("the table holds pod-security-admission's controls, each at its level", async (t) => {
  const ids = (level: string) =>
    CONTROLS.filter((c) => c.level === level)
      .map((c) => c.id)
      .sort();
  t.same(ids('baseline'), [
    'appArmorProfile',
    'capabilities_baseline',
    'hostNamespaces',
    'hostPathVolumes',
    'hostPorts',
    'hostProbesAndHostLifecycle',
    'privileged',
    'procMount',
    'seLinuxOptions',
    'seccompProfile_baseline',
    'sysctls',
    'windowsHostProcess',
  ]);
  t.same(ids('restricted'), [
    'allowPrivilegeEscalation',
    'capabilities_restricted',
    'procMount_restricted',
    'restrictedVolumes',
    'runAsNonRoot',
    'runAsUser',
    'seccompProfile_restricted',
  ]);
});
