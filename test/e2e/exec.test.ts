// kubectl exec, cp, attach, port-forward and debug through Portcullis on a real kube-apiserver, with
// real kubectl (issue 11). Own etcd + kube-apiserver on loopback; `portcullis serve` watching its rules
// ConfigMap as the shipped ServiceAccount; the webhook configurations as `kubectl kustomize
// manifests/` renders them, only clientConfig pointed at the local server.
//
// No kubelet runs, so no pod ever runs: a Pod object is created directly and stays Pending. That is
// enough, because the API server calls admission for a CONNECT before it looks for the pod's node:
// an exec Portcullis allows then fails with "pod web does not have a host assigned", past
// admission. kubectl itself needs the pod to exist (it reads it first), and port-forward also wants
// it Running, so that pod's status is written through the status subresource.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Test } from 'tap';
import {
  applyShippedManifests,
  shippedManifests,
  freePort,
  must,
  poll,
  registerWebhooks,
  run,
  runSuite,
  startCluster,
  startPortcullis,
  type Binaries,
  type RunResult,
} from './harness.js';
import { toYaml } from './webhooks.js';

const SHOP = 'shop';
const LAB = 'lab';
const WEBHOOK = 'workloads.portcullis.io';
const DENIED = `admission webhook "${WEBHOOK}" denied the request: `;
const PAST_ADMISSION = 'does not have a host assigned';
// A trusted registry's (the shipped trusted-registries rule), never pulled: no kubelet runs.
const DEBUG_IMAGE = 'registry.k8s.io/e2e-test-images/busybox:1.36.1-1';

async function suite(t: Test, binaries: Binaries): Promise<void> {
  const e2e = await startCluster(t, binaries, { name: 'exec', auditPolicy: AUDIT_POLICY });
  const { workdir, cluster, kubectl, auditLog } = e2e;

  // --- what ships, plus the rules this suite needs in namespace lab ---------------------------
  const shipped = shippedManifests();
  await applyShippedManifests(e2e, shipped, {
    ...shipped.ruleSet,
    rules: [...shipped.ruleSet.rules, ...LAB_RULES],
  });
  for (const ns of [SHOP, LAB]) await must(kubectl(['create', 'namespace', ns]), `namespace ${ns}`);

  // --- Portcullis as its ServiceAccount --------------------------------------------------------
  const { port, certs } = await startPortcullis(e2e);
  const portcullisAudit = e2e.serveAuditLog;

  // --- pods that never run, and the webhooks -------------------------------------------------
  await must(
    kubectl(
      ['apply', '-f', '-'],
      toYaml([pod(SHOP, 'web'), pod(LAB, 'plain'), pod(LAB, 'debug', { debuggable: 'true' })]),
    ),
    'the pods',
  );
  await must(
    kubectl([
      'patch',
      'pod',
      'debug',
      '-n',
      LAB,
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"phase":"Running"}}',
    ]),
    'pod lab/debug Running (port-forward checks the phase first)',
  );
  // An ephemeral container that reads the token, added while Portcullis is not yet registered: a
  // later kubectl debug into the same pod must not be refused for it (only what is added is judged).
  const debug = (ns: string, name: string, container: string, args: readonly string[]): Promise<RunResult> =>
    kubectl(['debug', name, '-n', ns, `--image=${DEBUG_IMAGE}`, '--target=app', '-c', container, ...args]);
  await must(
    debug(SHOP, 'web', 'before', [
      '--',
      'cat',
      '/proc/1/root/var/run/secrets/kubernetes.io/serviceaccount/token',
    ]),
    'kubectl debug before Portcullis is registered',
  );
  await registerWebhooks(e2e, port, certs.caBundle);
  const exec = (ns: string, name: string, command: string[]): Promise<RunResult> =>
    kubectl(['exec', name, '-n', ns, '-c', 'app', '--', ...command]);
  const live = await poll(async () => {
    const r = await exec(SHOP, 'web', ['cat', '/var/run/secrets/probe']);
    return r.stderr.includes('[no-secret-reads]') ? true : undefined;
  }, 15_000);
  if (live !== true) throw new Error('the CONNECT webhook never took effect');

  // --- the verdicts ---------------------------------------------------------------------------
  const TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';
  await t.test('a denied kubectl exec prints the rule message', async (t) => {
    const r = await exec(SHOP, 'web', ['cat', TOKEN_PATH]);
    t.not(r.code, 0);
    t.match(
      r.stderr,
      `${DENIED}exec "cat ${TOKEN_PATH}" into pod shop/web container app: command matches "*/var/run/secrets/*" [no-secret-reads]`,
    );
    const host = await exec(SHOP, 'web', ['sh', '-c', 'nsenter -t 1 -m -u -i -n sh']);
    t.match(
      host.stderr,
      `${DENIED}exec "sh -c 'nsenter -t 1 -m -u -i -n sh'" into pod shop/web container app: command matches "*nsenter*" [no-host-entry]`,
    );
  });

  await t.test('an allowed kubectl exec gets past admission (then finds no node)', async (t) => {
    const r = await exec(SHOP, 'web', ['ls', '-l', '/tmp']);
    t.not(r.code, 0, 'no kubelet to run it');
    t.match(r.stderr, PAST_ADMISSION);
    t.notMatch(r.stderr, 'denied the request');
  });

  await t.test('kubectl cp out of the secrets directory is an exec of tar, and is denied', async (t) => {
    const r = await kubectl(['cp', `${SHOP}/web:${TOKEN_PATH}`, join(workdir, 'stolen'), '-c', 'app']);
    t.not(r.code, 0);
    t.match(
      r.stderr,
      /denied the request: exec "tar [^"]*\/var\/run\/secrets\/[^"]*" into pod shop\/web container app: command matches "\*\/var\/run\/secrets\/\*" \[no-secret-reads\]/,
    );
  });

  await t.test('podSelector: the pod is looked up with the shipped RBAC plus get on pods', async (t) => {
    const before = await exec(LAB, 'debug', ['ls']);
    t.match(
      before.stderr,
      /denied the request: exec "ls" into pod lab\/debug container app: the pod's labels are unknown \(the API server answered 403 for pod lab\/debug: pods "debug" is forbidden: User "system:serviceaccount:portcullis:portcullis" cannot get resource "pods"[^)]*\), so it is not known to carry debuggable=true \[debuggable-only\]/,
      'the shipped RBAC does not grant it: the lookup fails, and the deny rule fails closed',
    );
    // What the README says to run.
    await must(
      kubectl(['create', 'clusterrole', 'portcullis-pod-reader', '--verb=get', '--resource=pods']),
      'clusterrole',
    );
    await must(
      kubectl([
        'create',
        'clusterrolebinding',
        'portcullis-pod-reader',
        '--clusterrole=portcullis-pod-reader',
        '--serviceaccount=portcullis:portcullis',
      ]),
      'clusterrolebinding',
    );
    const labelled = await poll(async () => {
      const r = await exec(LAB, 'debug', ['ls']);
      return r.stderr.includes(PAST_ADMISSION) ? r : undefined;
    }, 10_000);
    t.ok(labelled, 'into the labelled pod: past admission');
    const plain = await exec(LAB, 'plain', ['ls']);
    t.match(
      plain.stderr,
      `${DENIED}exec "ls" into pod lab/plain container app: the pod is not labelled debuggable=true [debuggable-only]`,
    );
  });

  await t.test(
    'an interactive session is refused where allowInteractive is false',
    { skip: hasScript() ? false : 'script(1) is not installed: no terminal for kubectl -t' },
    async (t) => {
      // kubectl sends tty only from a terminal: script(1) gives it one.
      const r = await run(
        'script',
        [
          '-qec',
          `kubectl --kubeconfig ${cluster.kubeconfig} exec -it debug -n ${LAB} -c app -- sh`,
          '/dev/null',
        ],
        { timeoutMs: 30_000 },
      );
      t.match(
        r.stdout + r.stderr,
        `${DENIED}exec "sh" into pod lab/debug container app: interactive sessions (stdin and tty) are not allowed [no-interactive-lab]`,
      );
    },
  );

  await t.test('attach is judged and port-forward refused by their rules', async (t) => {
    const attach = await kubectl(['attach', 'web', '-n', SHOP, '-c', 'app']);
    t.match(attach.stderr, PAST_ADMISSION, 'attach is not covered by the shipped exec rules: past admission');
    const forward = await kubectl(['port-forward', 'pod/debug', '-n', LAB, `${await freePort()}:80`]);
    t.not(forward.code, 0);
    t.match(
      forward.stderr,
      `${DENIED}port-forward to pod lab/debug: user "portcullis-admin" is not among the allowed users and groups [no-port-forward-lab]`,
    );
  });

  // --- kubectl debug: the door beside exec ------------------------------------------------------
  const TOKEN_VIA_PROC = `/proc/1/root${TOKEN_PATH}`;
  await t.test('a denied kubectl debug prints the rule message', async (t) => {
    const r = await debug(SHOP, 'web', 'dbg', ['--', 'cat', TOKEN_VIA_PROC]);
    t.not(r.code, 0);
    t.match(
      r.stderr,
      `${DENIED}debug container "dbg" (image ${DEBUG_IMAGE}) into pod shop/web: command matches "*/var/run/secrets/*" [no-secret-reads]`,
    );
    const args = await debug(SHOP, 'web', 'dbg', [
      '--arguments-only',
      '--',
      'nsenter',
      '-t',
      '1',
      '-m',
      'sh',
    ]);
    t.match(
      args.stderr,
      `${DENIED}debug container "dbg" (image ${DEBUG_IMAGE}) into pod shop/web: args match "*nsenter*" [no-host-entry]`,
      'args without a command (busybox has no ENTRYPOINT: they are the command)',
    );
    const privileged = await debug(SHOP, 'web', 'dbg', ['--profile=sysadmin', '--', 'ls']);
    t.match(
      privileged.stderr,
      `${DENIED}ephemeralContainer "dbg": securityContext.privileged must not be true [no-privileged]`,
      'the pod rules judge the ephemeral container too',
    );
  });

  await t.test('a debug container whose env takes a Secret, written by hand, is denied', async (t) => {
    // kubectl debug has no flag for env: a client that may patch pods/ephemeralcontainers (and not
    // read secrets) writes the pod's ephemeral containers itself, as kubectl debug does underneath.
    const addEphemeral = async (ns: string, name: string, container: Record<string, unknown>) => {
      const got = await must(kubectl(['get', 'pod', name, '-n', ns, '-o', 'json']), `get pod ${name}`);
      const pod = JSON.parse(got.stdout) as { spec: { ephemeralContainers?: unknown[] } };
      pod.spec.ephemeralContainers = [
        ...(pod.spec.ephemeralContainers ?? []),
        { image: DEBUG_IMAGE, command: ['env'], targetContainerName: 'app', ...container },
      ];
      return kubectl(
        ['replace', '--raw', `/api/v1/namespaces/${ns}/pods/${name}/ephemeralcontainers`, '-f', '-'],
        pod,
      );
    };
    const denied = await addEphemeral(SHOP, 'web', {
      name: 'dbg-env',
      env: [{ name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } }],
      envFrom: [{ prefix: 'DB_', secretRef: { name: 'db' } }],
    });
    t.not(denied.code, 0);
    const into = `debug container "dbg-env" (image ${DEBUG_IMAGE}) into pod shop/web`;
    t.match(
      denied.stderr,
      `${DENIED}${into}: env "DB_PASSWORD" takes key "password" of secret "db" [no-secret-reads]`,
    );
    t.match(
      denied.stderr,
      `${into}: envFrom takes every key of secret "db" (prefixed "DB_") [no-secret-reads]`,
    );
    const settings = await addEphemeral(LAB, 'plain', {
      name: 'dbg-settings',
      env: [{ name: 'LEVEL', valueFrom: { configMapKeyRef: { name: 'settings', key: 'level' } } }],
    });
    t.equal(
      settings.code,
      0,
      settings.code === 0 ? 'a configMapKeyRef is no secret: added' : settings.stderr,
    );
  });

  await t.test(
    'an allowed kubectl debug adds its container; the one already there is not judged',
    async (t) => {
      const r = await debug(SHOP, 'web', 'dbg-ok', ['--', 'ls', '/proc/1/root/etc']);
      t.equal(r.code, 0, r.stderr);
      const pod = await must(kubectl(['get', 'pod', 'web', '-n', SHOP, '-o', 'json']), 'get pod web');
      const names = (
        JSON.parse(pod.stdout) as { spec: { ephemeralContainers?: { name: string }[] } }
      ).spec.ephemeralContainers?.map((c) => c.name);
      t.same(names, ['before', 'dbg-ok']);
    },
  );

  await t.test(
    'an interactive kubectl debug is refused where allowInteractive is false',
    { skip: hasScript() ? false : 'script(1) is not installed: no terminal for kubectl -t' },
    async (t) => {
      const r = await run(
        'script',
        [
          '-qec',
          `kubectl --kubeconfig ${cluster.kubeconfig} debug -it debug -n ${LAB} --image=${DEBUG_IMAGE} -c dbg-it`,
          '/dev/null',
        ],
        { timeoutMs: 30_000 },
      );
      t.match(
        r.stdout + r.stderr,
        `${DENIED}debug container "dbg-it" (image ${DEBUG_IMAGE}) into pod lab/debug: interactive sessions (stdin and tty) are not allowed [no-interactive-lab]`,
      );
    },
  );

  // --- the record -----------------------------------------------------------------------------
  await t.test('Portcullis audits every try: who ran what in which pod', async (t) => {
    const events = readLines(portcullisAudit).filter((e) => e.objectRef?.subresource !== undefined);
    const tries = (command: string, name = 'web'): PortcullisEvent[] =>
      events.filter((e) => e.objectRef?.name === name && e.annotations['portcullis.io/command'] === command);
    const denied = tries(`cat ${TOKEN_PATH}`);
    t.equal(denied.length, 2, 'kubectl tried WebSocket, then SPDY: two events');
    for (const e of denied) {
      t.same(
        [
          e.user.username,
          e.verb,
          e.objectRef,
          e.annotations['portcullis.io/decision'],
          e.annotations['portcullis.io/violations'],
          e.annotations['portcullis.io/container'],
          e.annotations['portcullis.io/stdin'],
          e.annotations['portcullis.io/tty'],
          e.responseStatus.code,
        ],
        [
          'portcullis-admin',
          'connect',
          { resource: 'pods', subresource: 'exec', namespace: SHOP, name: 'web', apiVersion: 'v1' },
          'deny',
          'no-secret-reads=deny',
          'app',
          'false',
          'false',
          403,
        ],
      );
    }
    t.not(denied[0]?.auditID, denied[1]?.auditID, 'two requests');
    const allowed = tries('ls -l /tmp');
    t.equal(allowed.length, 2, 'the allowed exec: two events too');
    t.same(
      allowed.map((e) => [e.annotations['portcullis.io/decision'], e.responseStatus.code]),
      [
        ['allow', 200],
        ['allow', 200],
      ],
    );
    const attach = events.filter((e) => e.objectRef?.subresource === 'attach');
    t.ok(attach.length >= 1, 'attach is recorded');
    t.same(attach[0]?.annotations['portcullis.io/container'], 'app');
    t.ok(
      events.some(
        (e) =>
          e.objectRef?.subresource === 'portforward' && e.annotations['portcullis.io/decision'] === 'deny',
      ),
      'the refused port-forward is recorded',
    );
  });

  await t.test('Portcullis audits every kubectl debug with its container, image and command', async (t) => {
    const events = readLines(portcullisAudit).filter(
      (e) => e.objectRef?.subresource === 'ephemeralcontainers',
    );
    const byContainer = (name: string) =>
      events
        .filter((e) => e.annotations['portcullis.io/container'] === name)
        .map((e) => [
          e.user.username,
          e.verb,
          e.annotations['portcullis.io/decision'],
          e.annotations['portcullis.io/command'],
          e.annotations['portcullis.io/image'],
          e.annotations['portcullis.io/stdin'],
          e.annotations['portcullis.io/tty'],
        ]);
    t.same(byContainer('dbg').slice(0, 2), [
      ['portcullis-admin', 'update', 'deny', `cat ${TOKEN_VIA_PROC}`, DEBUG_IMAGE, 'false', 'false'],
      [
        'portcullis-admin',
        'update',
        'deny',
        `<entrypoint> nsenter -t 1 -m sh`,
        DEBUG_IMAGE,
        'false',
        'false',
      ],
    ]);
    t.same(byContainer('dbg-ok'), [
      ['portcullis-admin', 'update', 'allow', 'ls /proc/1/root/etc', DEBUG_IMAGE, 'false', 'false'],
    ]);
    const apiserver = readLines(auditLog).filter(
      (e) => e.stage === 'ResponseComplete' && e.objectRef?.subresource === 'ephemeralcontainers',
    );
    t.same(
      apiserver
        .filter((e) => e.annotations[`${WEBHOOK}/container`] === 'dbg')
        .slice(0, 1)
        .map((e) => [
          e.annotations[`${WEBHOOK}/command`],
          e.annotations[`${WEBHOOK}/rules`],
          e.responseStatus.code,
        ]),
      [[`cat ${TOKEN_VIA_PROC}`, 'no-secret-reads=deny', 403]],
      "the API server's own record carries them too",
    );
  });

  await t.test("the API server's audit log carries Portcullis' annotations, and the transport", async (t) => {
    const events = readLines(auditLog).filter(
      (e) =>
        e.stage === 'ResponseComplete' && e.objectRef?.subresource === 'exec' && e.objectRef.name === 'web',
    );
    const annotated = (command: string) =>
      events
        .filter((e) => e.annotations[`${WEBHOOK}/command`] === command)
        .map((e) => [
          e.verb,
          e.annotations[`${WEBHOOK}/decision`],
          e.annotations[`${WEBHOOK}/rules`],
          e.annotations[`${WEBHOOK}/container`],
          e.responseStatus.code,
        ]);
    t.same(
      annotated(`cat ${TOKEN_PATH}`),
      [
        ['get', 'deny', 'no-secret-reads=deny', 'app', 403],
        ['create', 'deny', 'no-secret-reads=deny', 'app', 403],
      ],
      'WebSocket (get) then SPDY (create), both denied by Portcullis',
    );
    t.same(
      annotated('ls -l /tmp'),
      [
        ['get', 'allow', undefined, 'app', 400],
        ['create', 'allow', undefined, 'app', 400],
      ],
      'both allowed by Portcullis, then refused by the API server for want of a node',
    );
  });
}

// --- objects --------------------------------------------------------------------------------

const AUDIT_POLICY = {
  apiVersion: 'audit.k8s.io/v1',
  kind: 'Policy',
  omitStages: ['RequestReceived'],
  rules: [
    {
      level: 'Metadata',
      resources: [
        {
          group: '',
          resources: ['pods/exec', 'pods/attach', 'pods/portforward', 'pods/ephemeralcontainers'],
        },
      ],
    },
    { level: 'None' },
  ],
};

/** Rules for namespace lab only: the shipped ones still judge it too. */
const LAB_RULES = [
  {
    name: 'debuggable-only',
    check: 'podExec',
    namespaces: [LAB],
    params: { subresources: ['exec'], podSelector: { matchLabels: { debuggable: 'true' } } },
  },
  { name: 'no-interactive-lab', check: 'podExec', namespaces: [LAB], params: { allowInteractive: false } },
  {
    name: 'no-port-forward-lab',
    check: 'podExec',
    namespaces: [LAB],
    params: { subresources: ['portforward'], users: [] },
  },
];

function pod(namespace: string, name: string, labels: Record<string, string> = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { app: name, ...labels } },
    spec: {
      securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }],
    },
  };
}

interface PortcullisEvent {
  auditID: string;
  verb: string;
  stage?: string;
  user: { username?: string };
  objectRef?: {
    resource?: string;
    subresource?: string;
    namespace?: string;
    name?: string;
    apiVersion?: string;
  };
  responseStatus: { code: number };
  annotations: Record<string, string>;
}

function readLines(file: string): PortcullisEvent[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as PortcullisEvent)
    .map((e) => ({ ...e, annotations: e.annotations ?? {} }));
}

function hasScript(): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, 'script')));
}

runSuite('kubectl exec, cp, attach and port-forward through Portcullis', suite);
