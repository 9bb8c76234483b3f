// End to end (issue 12): `serve --client-ca` behind a real kube-apiserver whose
// --admission-control-config-file gives the webhooks a kubeConfigFile with a client certificate, as
// docs/operations.md tells an operator to set it up. The API server gets through (a privileged Pod
// is refused with Portcullis' message, a compliant one admitted and mutated); a caller without a
// certificate, or with one from another CA, is refused, and recorded under no user.
//
// Run with `npm run test:e2e`. Without the binaries this file skips.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsPost } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { stringify } from 'yaml';
import type { AuditEvent } from '../../src/audit/event.js';
import { generateCertificates } from '../../src/tls/certs.js';
import {
  Cluster,
  findBinaries,
  freePort,
  httpsRequest,
  poll,
  PortcullisServer,
  startWatchdog,
  type Binaries,
} from './harness.js';
import { pointWebhooksAt, toYaml } from './webhooks.js';

const NAMESPACE = 'team-a';

function pod(name: string, privileged: boolean): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'registry.k8s.io/pause:3.10',
          ...(privileged ? { securityContext: { privileged: true } } : {}),
        },
      ],
    },
  });
}

async function suite(t: Test, binaries: Binaries): Promise<void> {
  const workdir = mkdtempSync(join(tmpdir(), 'portcullis-e2e-mtls-'));
  const serverPidFile = join(workdir, 'portcullis.pid');
  const watchdog = startWatchdog(workdir, serverPidFile);
  let server: PortcullisServer | undefined;
  t.teardown(async () => {
    await server?.stop();
    await Cluster.stop(workdir);
    if (watchdog.pid !== undefined) process.kill(-watchdog.pid, 'SIGTERM');
    if (t.passing()) rmSync(workdir, { recursive: true, force: true });
    else console.error(`# end-to-end: logs kept in ${workdir}`);
  });

  // --- certificates: Portcullis' serving pair, the API server's client pair, a stranger's -----
  const [serving, apiServer, stranger] = await Promise.all([
    generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 1 }),
    generateCertificates({ dnsNames: ['kube-apiserver'], ipAddresses: [], days: 1, usage: 'client' }),
    generateCertificates({ dnsNames: ['kube-apiserver'], ipAddresses: [], days: 1, usage: 'client' }),
  ]);
  const file = (name: string, text: string): string => {
    const path = join(workdir, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  };
  const files = {
    cert: file('tls.crt', serving.cert),
    key: file('tls.key', serving.key),
    clientCa: file('client-ca.crt', apiServer.ca.cert),
    clientCert: file('apiserver-client.crt', apiServer.cert),
    clientKey: file('apiserver-client.key', apiServer.key),
    rules: file('rules.yaml', readFileSync(new URL('../../rules/default.yaml', import.meta.url), 'utf8')),
    audit: join(workdir, 'portcullis-audit.log'),
  };

  // --- the API server side, as docs/operations.md has it -------------------------------------
  const port = await freePort();
  const webhookKubeconfig = file(
    'webhook-kubeconfig.yaml',
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      // Matched by the webhook's host:port (a Service's would be its DNS name, e.g. portcullis.portcullis.svc).
      users: [
        {
          name: `127.0.0.1:${port}`,
          user: { 'client-certificate': files.clientCert, 'client-key': files.clientKey },
        },
      ],
    }),
  );
  const pluginConfig = {
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'WebhookAdmissionConfiguration',
    kubeConfigFile: webhookKubeconfig,
  };
  const admissionConfig = file(
    'admission-config.yaml',
    stringify({
      apiVersion: 'apiserver.config.k8s.io/v1',
      kind: 'AdmissionConfiguration',
      plugins: [
        { name: 'ValidatingAdmissionWebhook', configuration: pluginConfig },
        { name: 'MutatingAdmissionWebhook', configuration: pluginConfig },
      ],
    }),
  );
  const cluster = await Cluster.start(workdir, binaries, [
    `--admission-control-config-file=${admissionConfig}`,
  ]);

  server = PortcullisServer.start(
    [
      ...['--rules', files.rules, '--tls-cert', files.cert, '--tls-key', files.key],
      ...['--client-ca', files.clientCa, '--client-name', 'kube-apiserver'],
      ...['--host', '127.0.0.1', '--port', String(port), '--audit-log', files.audit],
    ],
    port,
    join(workdir, 'portcullis.log'),
    serverPidFile,
  );
  // /readyz stays open to callers without a certificate (the kubelet's probe has none).
  if (!(await server.ready(serving.ca.cert, 20_000))) {
    throw new Error(`serve never became ready:\n${readFileSync(join(workdir, 'portcullis.log'), 'utf8')}`);
  }

  const must = async (args: string[], input?: string) => {
    const r = await cluster.kubectl(args, input);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  await must(['create', 'namespace', NAMESPACE]);
  const caBundle = Buffer.from(serving.ca.cert).toString('base64');
  await must(['apply', '-f', '-'], toYaml(pointWebhooksAt(`https://127.0.0.1:${port}`, caBundle)));
  const live = await poll(async () => {
    const r = await cluster.kubectl(['create', '--dry-run=server', '-f', '-'], pod('probe', true));
    return r.code !== 0 && r.stderr.includes('[no-privileged]') ? true : undefined;
  }, 15_000);

  await t.test('the API server, with its client certificate, gets through', async (t) => {
    t.ok(live, 'the webhooks took effect: a dry-run privileged Pod was judged by Portcullis');
    const denied = await cluster.kubectl(['create', '-f', '-'], pod('priv', true));
    t.not(denied.code, 0, 'a privileged Pod is refused');
    t.match(
      denied.stderr,
      'denied the request: container "app": securityContext.privileged must not be true [no-privileged]',
    );
    const admitted = await cluster.kubectl(['create', '-f', '-'], pod('app', false));
    t.equal(admitted.code, 0, 'a compliant Pod is admitted', { stderr: admitted.stderr });
    const seccomp = await cluster.kubectl([
      'get',
      'pod',
      'app',
      '-n',
      NAMESPACE,
      '-o',
      'jsonpath={.spec.securityContext.seccompProfile.type}',
    ]);
    t.equal(seccomp.stdout, 'RuntimeDefault', '/mutate was called too, through the same kubeConfigFile');
  });

  await t.test('callers without a certificate from the client CA are refused', async (t) => {
    const review = JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'forged-0000',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        resource: { group: '', version: 'v1', resource: 'pods' },
        namespace: NAMESPACE,
        operation: 'CREATE',
        userInfo: { username: 'system:admin', groups: ['system:masters'] },
        object: JSON.parse(pod('forged', true)) as unknown,
      },
    });
    const post = (options: { cert?: string; key?: string }) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        {
          const req = httpsPost(
            `${server?.url ?? ''}/validate`,
            {
              method: 'POST',
              ca: serving.ca.cert,
              agent: false,
              headers: { 'content-type': 'application/json' },
              ...options,
            },
            (res) => {
              let body = '';
              res.setEncoding('utf8').on('data', (c: string) => (body += c));
              res.on('end', () => {
                resolve({ status: res.statusCode ?? 0, body });
              });
            },
          );
          req.on('error', reject);
          req.end(review);
        }
      });
    const none = await post({});
    t.equal(none.status, 401, 'no certificate: 401');
    t.match(JSON.parse(none.body), { kind: 'Status', reason: 'Unauthorized' });
    const other = await post({ cert: stranger.cert, key: stranger.key });
    t.equal(other.status, 401, 'a certificate from another CA: 401');
    t.match(JSON.parse(other.body), { message: /^the client certificate is not trusted/ });
    t.equal(
      (await httpsRequest(`${server?.url ?? ''}/healthz`, { ca: serving.ca.cert })).status,
      200,
      'probes stay open',
    );
  });

  await server.stop();
  server = undefined;
  await t.test(
    'the audit log: the API server named, the refused callers recorded under no user',
    async (t) => {
      const events = readFileSync(files.audit, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as AuditEvent);
      const judged = events.filter(
        (e) => e.objectRef?.name === 'priv' && e.requestURI.startsWith('/validate'),
      );
      t.ok(judged.length >= 1, 'the privileged Pod was judged');
      t.equal(judged[0]?.annotations['portcullis.io/client'], 'kube-apiserver');
      t.equal(judged[0]?.user.username, 'portcullis-admin', 'under the user the API server authenticated');
      const refused = events.filter((e) => e.responseStatus.code === 401);
      t.equal(refused.length, 2, 'both refusals recorded');
      for (const e of refused) t.same(e.user, {}, 'under no user, not the claimed system:admin');
    },
  );
}

const found = findBinaries();
if ('missing' in found) {
  const reason = `end-to-end mTLS suite skipped: ${found.missing}. \`npm run test:e2e\` builds and runs it`;
  if (process.env.PORTCULLIS_E2E_REQUIRED === '1') t.fail(reason);
  else t.plan(0, reason);
} else {
  t.setTimeout(240_000);
  t.test('serve --client-ca behind a real kube-apiserver', (t) => suite(t, found.binaries));
}
