// The shipped manifests on a real kube-apiserver (the end-to-end suite's, from test/e2e/): the API
// server accepts every object with strict field validation and compiles the CEL matchConditions,
// and the webhook configurations, pointed at a stub on 127.0.0.1 that records each call and which
// webhook made it, send exactly the requests they should, each to the webhook it should (in the
// portcullis namespace workloads-own-namespace.portcullis.io, elsewhere workloads.portcullis.io). Then, with the stub gone, `failurePolicy: Fail` refuses what
// Portcullis judges while kube-system, Portcullis' own pods and everything unjudged go through, and
// the break-glass steps of docs/operations.md get a blocked cluster going again.
//
// Skipped when the binaries have not been built (`npm run test:e2e` or test/e2e/build-binaries.sh
// builds them; this test never starts a build). Only the rendered configurations rewritten to a
// 127.0.0.1 URL are registered: the base's, which name a Service, would make the API server dial a
// ClusterIP.

import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:https';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { stringify } from 'yaml';
import {
  at,
  only,
  record,
  records,
  renderInScratchTree,
  renderManifests,
  REPO_ROOT,
  type KubeObject,
} from '../helpers/manifests.js';
import { renderWebhookConfigurations } from '../helpers/webhooks.js';
import { createRequestFor } from '../../src/admission/review.js';
import { DEFAULT_RULES_PATH, loadRuleSetFile } from '../../src/config/ruleset-source.js';
import { mutate } from '../../src/core/index.js';

function findBinaries(): { apiserver: string; etcd: string } | undefined {
  const fromEnv = { apiserver: process.env['KUBE_APISERVER_BIN'], etcd: process.env['ETCD_BIN'] };
  if (fromEnv.apiserver !== undefined && fromEnv.etcd !== undefined) {
    return { apiserver: fromEnv.apiserver, etcd: fromEnv.etcd };
  }
  // build-binaries.sh caches one directory per Kubernetes version; take the newest complete one.
  const cache = process.env['PORTCULLIS_E2E_CACHE'] ?? join(homedir(), '.cache/portcullis-e2e');
  if (!existsSync(cache)) return undefined;
  const complete = readdirSync(cache)
    .map((version) => join(cache, version))
    .filter((dir) => existsSync(join(dir, 'kube-apiserver')) && existsSync(join(dir, 'etcd')))
    .sort(
      (a, b) => statSync(join(b, 'kube-apiserver')).mtimeMs - statSync(join(a, 'kube-apiserver')).mtimeMs,
    );
  const dir = complete[0];
  return dir === undefined ? undefined : { apiserver: join(dir, 'kube-apiserver'), etcd: join(dir, 'etcd') };
}

const binaries = findBinaries();
if (binaries === undefined) {
  t.pass('skipped: no kube-apiserver/etcd built yet (test/e2e/build-binaries.sh builds them)', {
    skip: true,
  });
} else {
  const bins = binaries;
  t.test('the manifests on a real kube-apiserver', (t) => run(t, bins));
}

interface Call {
  path: string;
  /** The webhook's name: each is registered with it as the last segment of its URL's path. */
  webhook: string;
  resource: string;
  operation: string;
}

const MUTATING = 'seccomp-defaults.portcullis.io';
const WORKLOADS = 'workloads.portcullis.io';
const OWN_NAMESPACE = 'workloads-own-namespace.portcullis.io';
const RULES = 'rules.portcullis.io';
const CUSTOM = 'custom.portcullis.io';

async function run(t: Test, bins: { apiserver: string; etcd: string }): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'portcullis-apiserver-'));
  const e2e = join(REPO_ROOT, 'test/e2e');
  t.teardown(() => {
    execFileSync(join(e2e, 'stop-cluster.sh'), [work], { stdio: 'ignore' });
    rmSync(work, { recursive: true, force: true });
  });
  execFileSync(join(e2e, 'start-cluster.sh'), [work], {
    env: { ...process.env, KUBE_APISERVER_BIN: bins.apiserver, ETCD_BIN: bins.etcd },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const kubeconfig = join(work, 'kubeconfig');

  const kubectl = (args: readonly string[], input?: string): Promise<{ ok: boolean; out: string }> =>
    new Promise((resolve) => {
      const child = execFile(
        'kubectl',
        ['--kubeconfig', kubeconfig, ...args],
        { encoding: 'utf8', timeout: 30_000 },
        (err, stdout, stderr) => {
          resolve({ ok: err === null, out: `${stdout}${stderr}` });
        },
      );
      child.stdin?.end(input ?? '');
    });
  const apply = (objects: readonly unknown[], ...flags: string[]) =>
    kubectl(
      ['apply', '--validate=strict', ...flags, '-f', '-'],
      objects.map((o) => stringify(o)).join('---\n'),
    );

  // A self-signed serving cert for 127.0.0.1: the API server verifies the stub with it as caBundle.
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(work, 'stub.key'), '-out', join(work, 'stub.crt'),
  ], { stdio: 'ignore' }); // prettier-ignore
  const stubCert = readFileSync(join(work, 'stub.crt'), 'utf8');
  const stubKey = readFileSync(join(work, 'stub.key'), 'utf8');

  await t.test(
    'the base, and the overlay with real certificates, pass strict server-side validation',
    async (t) => {
      // A dry run of namespaced objects needs their Namespace to exist.
      t.ok((await kubectl(['apply', '-f', join(REPO_ROOT, 'manifests/base/00-namespace.yaml')])).ok);
      const base = await kubectl([
        'apply',
        '--dry-run=server',
        '--validate=strict',
        '-k',
        join(REPO_ROOT, 'manifests'),
      ]);
      t.ok(base.ok, base.out);
      const withCerts = renderInScratchTree('overlays/portcullis-certs', {
        'ca.crt': stubCert,
        'tls.crt': stubCert,
        'tls.key': stubKey,
      });
      const dryRun = await apply(withCerts, '--dry-run=server');
      t.ok(dryRun.ok, `the caBundle as kustomize folds it is accepted:\n${dryRun.out}`);
    },
  );

  await t.test(
    'the safe install’s first step applies everything but the webhook configurations',
    async (t) => {
      const step = await kubectl([
      'apply', '--validate=strict', '-k', join(REPO_ROOT, 'manifests'), '-l', 'app.kubernetes.io/component!=webhook-configuration',
    ]); // prettier-ignore
      t.ok(step.ok, step.out);
      t.match(step.out, /deployment\.apps\/portcullis (created|configured)/);
      t.match(step.out, /configmap\/portcullis-rules (created|configured)/);
      t.notMatch(step.out, /webhookconfiguration/);
    },
  );

  // The stub: answers allowed to every call and records which webhook saw which request.
  const calls: Call[] = [];
  const stub = createServer({ cert: stubCert, key: stubKey }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const review: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const request = record(at(review, 'request'));
      const resource = record(request['resource']);
      const sub = typeof request['subResource'] === 'string' ? `/${request['subResource']}` : '';
      const [path = '', webhook = ''] = new URL(req.url ?? '/', 'https://stub').pathname
        .split('/')
        .filter((segment) => segment !== '');
      calls.push({
        path: `/${path}`,
        webhook,
        resource: `${String(resource['group'])}/${String(resource['resource'])}${sub}`,
        operation: String(request['operation']),
      });
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: { uid: request['uid'], allowed: true },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
  const address = stub.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  t.teardown(() => stub.close());

  // A pod that exists before the webhooks do, for the UPDATE and ephemeral-container cases.
  t.ok((await apply([pod('target', 'default')])).ok, 'pod default/target');

  // Each webhook's URL ends in its name, so the stub knows which one called: which of the pair
  // judges a request in Portcullis' namespace is what the split is about.
  const configurations = renderWebhookConfigurations({
    url: `https://127.0.0.1:${port}`,
    caBundle: Buffer.from(stubCert).toString('base64'),
  }).map((config) => ({
    ...config,
    webhooks: records(config['webhooks']).map((webhook) => {
      const clientConfig = record(webhook['clientConfig']);
      return {
        ...webhook,
        clientConfig: { ...clientConfig, url: `${String(clientConfig['url'])}/${String(webhook['name'])}` },
      };
    }),
  }));
  const registered = await apply(configurations);
  t.ok(registered.ok, `webhook configurations registered:\n${registered.out}`);
  // The API server picks new configurations up asynchronously: wait for a first call.
  const deadline = Date.now() + 15_000;
  while (calls.length === 0 && Date.now() < deadline) {
    await kubectl(['create', '--dry-run=server', '-f', '-'], stringify(pod('canary', 'default')));
  }
  t.ok(calls.length > 0, 'the webhooks are active');

  const rsController = '--as=system:serviceaccount:kube-system:replicaset-controller';
  const sent = (webhook: string, resource: string, operation: string) =>
    `${webhook === MUTATING ? '/mutate' : '/validate'} ${webhook} ${resource} ${operation}`;
  const both = (resource: string, operation = 'CREATE', validating = WORKLOADS) => [
    sent(MUTATING, resource, operation),
    sent(validating, resource, operation),
  ];
  const validateOnly = (resource: string, operation = 'CREATE', webhook = WORKLOADS) => [
    sent(webhook, resource, operation),
  ];
  const seen = () =>
    calls.map((call) => `${call.path} ${call.webhook} ${call.resource} ${call.operation}`).sort();
  const cases: { name: string; action: () => Promise<{ ok: boolean; out: string }>; expect: string[] }[] = [
    // pod() carries a seccomp profile: nothing to patch, so the mutating webhook is not called.
    { name: 'a pod in default', action: () => apply([pod('p1', 'default')]), expect: validateOnly('/pods') },
    {
      name: 'a server-side dry run (sideEffects None)',
      action: () => kubectl(['create', '--dry-run=server', '-f', '-'], stringify(pod('p2', 'default'))),
      expect: validateOnly('/pods'),
    },
    { name: 'a pod in kube-system', action: () => apply([pod('p3', 'kube-system')]), expect: [] },
    {
      name: 'a labelled pod in portcullis, created by a user',
      action: () => apply([pod('p4', 'portcullis', true)]),
      expect: validateOnly('/pods', 'CREATE', OWN_NAMESPACE),
    },
    {
      name: 'Portcullis’ own pod: labelled, in portcullis, created by the ReplicaSet controller',
      action: () => kubectl(['create', rsController, '-f', '-'], stringify(pod('p5', 'portcullis', true))),
      expect: [],
    },
    {
      name: 'an unlabelled pod in portcullis, by the ReplicaSet controller',
      action: () => kubectl(['create', rsController, '-f', '-'], stringify(pod('p6', 'portcullis'))),
      expect: validateOnly('/pods', 'CREATE', OWN_NAMESPACE),
    },
    {
      name: 'a labelled pod elsewhere, by the ReplicaSet controller',
      action: () => kubectl(['create', rsController, '-f', '-'], stringify(pod('p7', 'default', true))),
      expect: validateOnly('/pods'),
    },
    {
      name: 'a pod UPDATE (no mutation: a pod’s securityContext is immutable)',
      action: () => kubectl(['-n', 'default', 'label', 'pod', 'target', 'edited=yes']),
      expect: validateOnly('/pods', 'UPDATE'),
    },
    {
      name: 'kubectl debug: an ephemeral container',
      action: () =>
        kubectl([
          '-n',
          'default',
          'debug',
          'target',
          '--image=registry.k8s.io/pause:3.10',
          '--container=debugger',
        ]),
      expect: validateOnly('/pods/ephemeralcontainers', 'UPDATE'),
    },
    {
      name: 'a Deployment in portcullis (the namespace is no bypass)',
      action: () =>
        kubectl(['-n', 'portcullis', 'create', 'deployment', 'd', '--image=registry.k8s.io/pause:3.10']),
      expect: both('apps/deployments', 'CREATE', OWN_NAMESPACE),
    },
    {
      name: 'a CronJob',
      action: () =>
        kubectl([
          '-n',
          'default',
          'create',
          'cronjob',
          'c',
          '--image=registry.k8s.io/pause:3.10',
          '--schedule=0 * * * *',
        ]),
      expect: both('batch/cronjobs'),
    },
    {
      name: 'a ClusterRoleBinding (cluster-scoped: no namespaceSelector applies), sent once',
      action: () => kubectl(['create', 'clusterrolebinding', 'crb', '--clusterrole=view', '--user=bob']),
      expect: validateOnly('rbac.authorization.k8s.io/clusterrolebindings'),
    },
    {
      name: 'a RoleBinding in portcullis',
      action: () =>
        kubectl(['-n', 'portcullis', 'create', 'rolebinding', 'rb', '--clusterrole=view', '--user=bob']),
      expect: validateOnly('rbac.authorization.k8s.io/rolebindings', 'CREATE', OWN_NAMESPACE),
    },
    {
      name: 'a RoleBinding elsewhere',
      action: () =>
        kubectl(['-n', 'default', 'create', 'rolebinding', 'rb', '--clusterrole=view', '--user=bob']),
      expect: validateOnly('rbac.authorization.k8s.io/rolebindings'),
    },
    {
      name: 'an edit of the rules ConfigMap',
      action: () => kubectl(['-n', 'portcullis', 'label', 'configmap', 'portcullis-rules', 'edited=yes']),
      expect: validateOnly('/configmaps', 'UPDATE', RULES),
    },
    {
      name: 'another ConfigMap in portcullis',
      action: () => kubectl(['-n', 'portcullis', 'create', 'configmap', 'other', '--from-literal=a=b']),
      expect: [],
    },
    {
      name: 'a ConfigMap named portcullis-rules elsewhere',
      action: () =>
        kubectl(['-n', 'default', 'create', 'configmap', 'portcullis-rules', '--from-literal=a=b']),
      expect: [],
    },
    {
      name: 'a ConfigMap with generateName in portcullis',
      action: () => kubectl(['create', '-f', '-'], stringify(generated('ConfigMap', 'portcullis'))),
      expect: [],
    },
    {
      name: 'a pod with generateName',
      action: () =>
        kubectl(
          ['create', '-f', '-'],
          stringify({ ...pod('', 'default'), metadata: { generateName: 'g-', namespace: 'default' } }),
        ),
      expect: validateOnly('/pods'),
    },
    { name: 'a Lease', action: () => apply([lease('l1')]), expect: [] },
    {
      name: 'a Service',
      action: () => kubectl(['-n', 'default', 'create', 'service', 'clusterip', 's', '--tcp=80']),
      expect: [],
    },
    { name: 'a Namespace', action: () => kubectl(['create', 'namespace', 'shop']), expect: [] },
  ];
  for (const c of cases) {
    await t.test(`sent to Portcullis as it should be: ${c.name}`, async (t) => {
      calls.length = 0;
      const result = await c.action();
      t.ok(result.ok, result.out);
      t.same(seen(), [...c.expect].sort());
    });
  }

  // The mutating webhook's matchCondition (generated from the checks' mutations) against the core's
  // own mutate(), through the real API server's CEL: over seccomp's cases and every pod-carrying kind,
  // /mutate is called exactly when mutate() would patch. A pod the condition skips is one that
  // /mutate would not have patched, and none that it would have patched is skipped.
  const shipped = await loadRuleSetFile(DEFAULT_RULES_PATH);
  if (!shipped.ok) throw new Error(shipped.errors.join('\n'));
  // The API server refuses Localhost without its file (before validating admission): give it one.
  const profile = (type?: string) =>
    type === undefined
      ? {}
      : {
          securityContext: {
            seccompProfile: type === 'Localhost' ? { type, localhostProfile: 'profiles/app.json' } : { type },
          },
        };
  const box = (name: string, type?: string) => ({
    name,
    image: 'registry.k8s.io/pause:3.10',
    ...profile(type),
  });
  const specs: { name: string; spec: Record<string, unknown> }[] = [
    { name: 'no profile anywhere', spec: { containers: [box('a')] } },
    { name: 'pod RuntimeDefault', spec: { ...profile('RuntimeDefault'), containers: [box('a')] } },
    {
      name: 'pod Unconfined (explicit: never patched)',
      spec: { ...profile('Unconfined'), containers: [box('a')] },
    },
    {
      name: 'pod securityContext without a profile',
      spec: { securityContext: { runAsNonRoot: true }, containers: [box('a')] },
    },
    {
      name: 'every container has its own',
      spec: { containers: [box('a', 'RuntimeDefault'), box('b', 'Localhost')] },
    },
    { name: 'one container lacks one', spec: { containers: [box('a', 'RuntimeDefault'), box('b')] } },
    {
      name: 'only the init container lacks one',
      spec: { initContainers: [box('i')], containers: [box('a', 'RuntimeDefault')] },
    },
    { name: 'a Windows pod', spec: { os: { name: 'windows' }, containers: [box('a')] } },
    { name: 'a Linux pod', spec: { os: { name: 'linux' }, containers: [box('a')] } },
  ];
  const wrap: Record<string, (spec: Record<string, unknown>) => Record<string, unknown>> = {
    'v1/Pod': (spec) => ({ spec }),
    'v1/PodTemplate': (spec) => ({ template: { metadata: { labels: { app: 'x' } }, spec } }),
    'apps/v1/Deployment': (spec) => ({
      spec: {
        selector: { matchLabels: { app: 'x' } },
        template: { metadata: { labels: { app: 'x' } }, spec },
      },
    }),
    'batch/v1/CronJob': (spec) => ({
      spec: {
        schedule: '0 * * * *',
        jobTemplate: {
          spec: {
            template: { metadata: { labels: { app: 'x' } }, spec: { ...spec, restartPolicy: 'Never' } },
          },
        },
      },
    }),
  };
  let n = 0;
  for (const [apiKind, build] of Object.entries(wrap)) {
    const slash = apiKind.lastIndexOf('/');
    const apiVersion = apiKind.slice(0, slash);
    const kind = apiKind.slice(slash + 1);
    const resource = `${apiVersion.includes('/') ? apiVersion.split('/')[0] : ''}/${kind.toLowerCase()}s`;
    for (const { name, spec } of specs) {
      const object = {
        apiVersion,
        kind,
        metadata: { name: `mc-${n++}`, namespace: 'default' },
        ...build(spec),
      };
      const patched = mutate(createRequestFor(object, 'default'), shipped.loaded.ruleset).patch.length > 0;
      await t.test(`/mutate called exactly when mutate() patches: ${kind}, ${name}`, async (t) => {
        calls.length = 0;
        const result = await kubectl(['create', '--dry-run=server', '-f', '-'], stringify(object));
        t.ok(result.ok, result.out);
        t.same(
          seen(),
          patched ? both(resource) : validateOnly(resource),
          patched ? 'mutate() patches it: the API server must call /mutate' : 'nothing to patch: not called',
        );
      });
    }
  }

  // A cel rule over pods: serve gives custom.portcullis.io the pods (as test/e2e/cel.test.ts shows);
  // here a patch does what serve would. Portcullis' own pods must skip it as they skip the others,
  // or Portcullis, down, would refuse its own replacement pods (the down phase below keeps it so).
  const customIndex = records(
    configurations.find((c) => c.kind === 'ValidatingWebhookConfiguration')?.['webhooks'],
  ).findIndex((w) => w['name'] === CUSTOM);
  const celPods = await kubectl([
    'patch', 'validatingwebhookconfiguration', 'portcullis', '--type=json',
    `-p=${JSON.stringify([
      { op: 'test', path: `/webhooks/${customIndex}/name`, value: CUSTOM },
      { op: 'add', path: `/webhooks/${customIndex}/rules`, value: [
        { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: '*' },
      ] },
    ])}`,
  ]); // prettier-ignore
  t.ok(celPods.ok, celPods.out);
  const customDeadline = Date.now() + 15_000;
  calls.length = 0;
  while (!calls.some((call) => call.webhook === CUSTOM) && Date.now() < customDeadline) {
    await kubectl(['create', '--dry-run=server', '-f', '-'], stringify(pod('canary', 'default')));
  }
  t.ok(
    calls.some((call) => call.webhook === CUSTOM),
    'custom.portcullis.io sends pods',
  );
  const celCases: { name: string; action: () => Promise<{ ok: boolean; out: string }>; expect: string[] }[] =
    [
      {
        name: 'a pod in default',
        action: () => apply([pod('c1', 'default')]),
        expect: [...validateOnly('/pods'), ...validateOnly('/pods', 'CREATE', CUSTOM)],
      },
      {
        name: 'a labelled pod in portcullis, created by a user',
        action: () => apply([pod('c2', 'portcullis', true)]),
        expect: [
          ...validateOnly('/pods', 'CREATE', OWN_NAMESPACE),
          ...validateOnly('/pods', 'CREATE', CUSTOM),
        ],
      },
      {
        name: 'Portcullis’ own pod, by the ReplicaSet controller',
        action: () => kubectl(['create', rsController, '-f', '-'], stringify(pod('c3', 'portcullis', true))),
        expect: [],
      },
    ];
  for (const c of celCases) {
    await t.test(`with a cel rule over pods, sent as it should be: ${c.name}`, async (t) => {
      calls.length = 0;
      const result = await c.action();
      t.ok(result.ok, result.out);
      t.same(seen(), [...c.expect].sort());
    });
  }

  // Portcullis goes down: nothing listens on the port any more.
  await new Promise<void>((resolve) => {
    stub.close(() => {
      resolve();
    });
    stub.closeAllConnections();
  });

  // What the ReplicaSet controller makes of the shipped Deployment's template: it must get through
  // while Portcullis is down (and meet Pod Security `restricted`, which still applies).
  const template = at(only(renderManifests(), 'Deployment'), 'spec', 'template');
  const ownPod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...record(at(template, 'metadata')),
      name: 'portcullis-7d4b9c-x2x7q',
      namespace: 'portcullis',
    },
    spec: at(template, 'spec'),
  };

  await t.test('Portcullis down: what it judges is refused, the rest goes through', async (t) => {
    const refused = await apply([pod('down1', 'default')]);
    t.notOk(refused.ok, 'a pod in default is refused');
    t.match(refused.out, /failed calling webhook "(seccomp-defaults|workloads|custom)\.portcullis\.io"/);
    const rules = await kubectl(['-n', 'portcullis', 'label', 'configmap', 'portcullis-rules', 'again=yes']);
    t.notOk(rules.ok, 'an edit of the rules is refused');
    t.match(rules.out, /failed calling webhook "rules\.portcullis\.io"/);

    for (const [name, action] of [
      ['a pod in kube-system', () => apply([pod('down2', 'kube-system')])],
      [
        'Portcullis’ own pod, from the shipped template',
        () => kubectl(['create', rsController, '-f', '-'], stringify(ownPod)),
      ],
      ['a Lease', () => apply([lease('l2')])],
      [
        'a ConfigMap with generateName in portcullis',
        () => kubectl(['create', '-f', '-'], stringify(generated('ConfigMap', 'portcullis'))),
      ],
      [
        'another ConfigMap in portcullis',
        () => kubectl(['-n', 'portcullis', 'create', 'configmap', 'other2']),
      ],
    ] as const) {
      const result = await action();
      t.ok(result.ok, `${name} goes through: ${result.out}`);
    }
  });

  await t.test(
    'Pod Security still guards the namespace where Portcullis lets its own pods through',
    async (t) => {
      const loose = pod('loose', 'portcullis', true);
      record(at(loose, 'spec', 'containers', 0))['securityContext'] = { privileged: true };
      const result = await kubectl(['create', rsController, '-f', '-'], stringify(loose));
      t.notOk(result.ok);
      t.match(result.out, /violates PodSecurity "restricted/);
    },
  );

  await t.test('break-glass (docs/operations.md): fail open, then remove the configurations', async (t) => {
    const failOpen = [
      ['validatingwebhookconfiguration', '[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Ignore"},{"op":"replace","path":"/webhooks/1/failurePolicy","value":"Ignore"},{"op":"replace","path":"/webhooks/2/failurePolicy","value":"Ignore"},{"op":"replace","path":"/webhooks/3/failurePolicy","value":"Ignore"}]'],
      ['mutatingwebhookconfiguration', '[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Ignore"}]'],
    ]; // prettier-ignore
    for (const [kind, patch] of failOpen) {
      const patched = await kubectl(['patch', kind ?? '', 'portcullis', '--type=json', `-p=${patch ?? ''}`]);
      t.ok(patched.ok, patched.out);
    }
    await eventually(t, 'a pod in default is admitted with failurePolicy Ignore', () =>
      apply([pod('open1', 'default')]),
    );

    const removed = await kubectl([
      'delete',
      'validatingwebhookconfiguration,mutatingwebhookconfiguration',
      'portcullis',
    ]);
    t.ok(removed.ok, removed.out);
    await eventually(t, 'and with the configurations deleted', () => apply([pod('open2', 'default')]));
  });
}

/** The API server applies a webhook configuration change asynchronously: retry for a few seconds. */
async function eventually(
  t: Test,
  name: string,
  action: () => Promise<{ ok: boolean; out: string }>,
): Promise<void> {
  let last = { ok: false, out: '' };
  for (let i = 0; i < 50 && !last.ok; i++) {
    last = await action();
    if (!last.ok) await new Promise((resolve) => setTimeout(resolve, 200));
  }
  t.ok(last.ok, `${name}: ${last.out}`);
}

/** A pod that meets Pod Security `restricted`; `own` gives it Portcullis' label. */
function pod(name: string, namespace: string, own = false): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: own ? { 'app.kubernetes.io/name': 'portcullis' } : { app: name } },
    spec: {
      securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'c',
          image: 'registry.k8s.io/pause:3.10',
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  };
}

function generated(kind: string, namespace: string): KubeObject {
  return { apiVersion: 'v1', kind, metadata: { generateName: 'generated-', namespace }, data: { a: 'b' } };
}

function lease(name: string): KubeObject {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace: 'default' },
    spec: { holderIdentity: 'test' },
  };
}
