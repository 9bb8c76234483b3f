// The Helm chart on a real kube-apiserver: `helm install` as README's "Install with Helm" says
// (the namespace with its Pod Security labels first, certificates from `portcullis certs`), with
// one development value, `webhooks.url`, pointing the webhooks at a `portcullis serve` on
// 127.0.0.1 (no kubelet runs here, so the chart's Deployment makes no pods; the server runs beside
// the API server instead, as the chart's ServiceAccount). Then: every object the chart renders is
// on the API server, a privileged pod is refused through the chart's webhooks, `helm upgrade`
// changes what it should, and `helm uninstall` removes the webhooks first-class.
//
// Run with `npm run test:e2e`. Without the binaries (or helm) this file skips, saying why; under
// `npm run test:e2e` a missing one is a failure.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Test } from 'tap';
import { stringify } from 'yaml';
import { CHART_DIR, findHelm, KUBE_VERSION, objectKey } from '../helpers/chart.js';
import { parseObjects } from '../helpers/webhooks.js';
import {
  freePort,
  makeCertificates,
  must,
  poll,
  run,
  runSuite,
  serviceAccountKubeconfig,
  startCluster,
  startServe,
  type Binaries,
  type RunResult,
} from './harness.js';

const NAMESPACE = 'portcullis';

function pod(name: string, privileged: boolean): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'registry.k8s.io/pause:3.10',
          securityContext: privileged ? { privileged: true } : { allowPrivilegeEscalation: false },
        },
      ],
    },
  };
}

async function suite(t: Test, binaries: Binaries, helmBin: string): Promise<void> {
  const e2e = await startCluster(t, binaries, { name: 'chart' });
  const { workdir, cluster, kubectl } = e2e;
  const helm = (args: readonly string[]): Promise<RunResult> =>
    run(helmBin, [...args, '--kubeconfig', cluster.kubeconfig], {
      env: {
        HELM_CACHE_HOME: join(workdir, 'helm/cache'),
        HELM_CONFIG_HOME: join(workdir, 'helm/config'),
        HELM_DATA_HOME: join(workdir, 'helm/data'),
      },
      timeoutMs: 60_000,
    });

  // --- certificates, as README says: portcullis certs, then --set-file ---------------------
  const certs = await makeCertificates(e2e, { namespace: NAMESPACE });
  const port = await freePort();
  const values = [
    '--set-file', `certificates.caCrt=${certs.caFile},certificates.tlsCrt=${certs.cert},certificates.tlsKey=${certs.key}`,
    '--set', `webhooks.url=https://127.0.0.1:${port}`,
  ]; // prettier-ignore

  // --- the namespace first (README: helm keeps its release record in it) --------------------
  await must(kubectl(['create', 'namespace', NAMESPACE]), 'kubectl create namespace');
  await must(
    kubectl(['label', 'namespace', NAMESPACE,
      'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/enforce-version=latest',
      'pod-security.kubernetes.io/warn=restricted', 'pod-security.kubernetes.io/warn-version=latest']), // prettier-ignore
    'kubectl label namespace',
  );

  const install = await helm(['install', 'portcullis', CHART_DIR, '--namespace', NAMESPACE, ...values]);
  await t.test('helm install succeeds', async (t) => {
    t.equal(install.code, 0, `${install.stdout}${install.stderr}`);
    t.match(install.stdout, /STATUS: deployed/);
    t.match(install.stdout, /NOTES:\nPortcullis \d+\.\d+\.\d+\S* is installed in namespace portcullis\./);
    t.notMatch(install.stdout, /WARNING/, 'no Pod Security warning: the namespace enforces restricted');
  });
  if (install.code !== 0) return;

  await t.test('every object the chart renders is on the API server, as rendered', async (t) => {
    const manifest = await must(
      helm(['get', 'manifest', 'portcullis', '--namespace', NAMESPACE]),
      'helm get manifest',
    );
    const objects = parseObjects(manifest.stdout, 'helm get manifest');
    // The same render `helm template` gives offline for the same values.
    const template = await must(
      run(helmBin, [
        'template',
        'portcullis',
        CHART_DIR,
        '--namespace',
        NAMESPACE,
        '--kube-version',
        KUBE_VERSION,
        ...values,
      ]),
      'helm template',
    );
    t.same(
      objects.map(objectKey).sort(),
      parseObjects(template.stdout, 'helm template').map(objectKey).sort(),
      'helm install applied what helm template renders',
    );
    t.ok(objects.length >= 10, `${objects.length} objects`);
    const live = await kubectl(
      ['get', '-f', '-', '-o', 'name'],
      objects.map((o) => stringify(o)).join('---\n'),
    );
    t.equal(live.code, 0, live.stderr);
    t.equal(live.stdout.trim().split('\n').length, objects.length, live.stdout);
  });

  // --- Portcullis beside the API server, as the chart's ServiceAccount ------------------------
  const kubeconfig = await serviceAccountKubeconfig(e2e, NAMESPACE);
  const server = startServe(e2e, {
    port,
    certs,
    kubeconfig,
    rulesConfigMap: `${NAMESPACE}/portcullis-rules`,
  });
  const ready = await server.ready(certs.caPem, 20_000);
  t.ok(ready, 'serve is ready on the chart’s rules ConfigMap, with only the chart’s RBAC', {
    log: ready ? undefined : readFileSync(server.logFile, 'utf8').slice(-4000),
  });
  if (!ready) return;

  await t.test('a privileged pod is refused through the chart’s webhooks', async (t) => {
    // The API server picks new configurations up asynchronously; the first refusal may take a moment.
    const refused = await poll(async () => {
      const r = await kubectl(['create', '-f', '-'], stringify(pod('priv', true)));
      return r.code !== 0 && r.stderr.includes('[no-privileged]') ? r : undefined;
    }, 10_000);
    t.ok(refused, 'refused');
    t.match(
      refused?.stderr ?? '',
      'admission webhook "workloads.portcullis.io" denied the request: container "app": securityContext.privileged must not be true [no-privileged]',
    );
    t.match((await kubectl(['get', 'pod', 'priv', '-n', 'default'])).stderr, 'NotFound', 'nothing stored');
  });

  await t.test(
    'a compliant pod is admitted, with the seccomp default the mutating webhook adds',
    async (t) => {
      const created = await kubectl(['create', '-f', '-'], stringify(pod('ok', false)));
      t.equal(created.code, 0, created.stderr);
      const profile = await kubectl([
        'get',
        'pod',
        'ok',
        '-n',
        'default',
        '-o',
        'jsonpath={.spec.securityContext.seccompProfile.type}',
      ]);
      t.equal(profile.stdout, 'RuntimeDefault');
    },
  );

  await t.test('helm upgrade changes the values it is given and keeps the rest', async (t) => {
    const upgrade = await helm([
      'upgrade',
      'portcullis',
      CHART_DIR,
      '--namespace',
      NAMESPACE,
      '--reuse-values',
      '--set',
      'replicas=3',
    ]);
    t.equal(upgrade.code, 0, `${upgrade.stdout}${upgrade.stderr}`);
    const replicas = await kubectl([
      'get',
      'deployment',
      'portcullis',
      '-n',
      NAMESPACE,
      '-o',
      'jsonpath={.spec.replicas}',
    ]);
    t.equal(replicas.stdout, '3');
    const still = await kubectl(['create', '--dry-run=server', '-f', '-'], stringify(pod('priv2', true)));
    t.match(still.stderr, '[no-privileged]', 'the webhooks still judge');
  });

  await t.test('helm uninstall removes the webhooks, and pods are no longer judged', async (t) => {
    const uninstall = await helm(['uninstall', 'portcullis', '--namespace', NAMESPACE]);
    t.equal(uninstall.code, 0, `${uninstall.stdout}${uninstall.stderr}`);
    const left = await kubectl([
      'get',
      'validatingwebhookconfiguration,mutatingwebhookconfiguration',
      '-o',
      'name',
    ]);
    t.notMatch(left.stdout, /portcullis/, 'no webhook configuration left');
    const admitted = await poll(async () => {
      const r = await kubectl(['create', '--dry-run=server', '-f', '-'], stringify(pod('priv3', true)));
      return r.code === 0 ? r : undefined;
    }, 10_000);
    t.ok(admitted, 'a privileged pod is admitted once Portcullis is uninstalled');
  });
}

const helmFound = findHelm();
runSuite(
  'the Helm chart on a real kube-apiserver',
  (t, binaries) => {
    // Not reached without helm: runSuite skips (or fails) with the reason first.
    if ('missing' in helmFound) throw new Error(helmFound.missing);
    return suite(t, binaries, helmFound.path);
  },
  'missing' in helmFound ? helmFound.missing : undefined,
);
