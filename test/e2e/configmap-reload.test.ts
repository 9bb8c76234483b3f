// `serve --rules-configmap` against a real kube-apiserver + etcd (test/e2e/start-cluster.sh): the
// watcher runs with only the RBAC the shipped Role grants (impersonating the portcullis service
// account), follows edits, refuses a broken RuleSet with the exact field and posts the Event that
// `kubectl describe configmap` shows, keeps the last good RuleSet on delete, and comes back after
// the API server restarts. Skipped, with the reason, when the binaries have not been built
// (`test/e2e/build-binaries.sh`, or `npm run test:e2e`).

/* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment --
   client-node's models are data-only classes, written as literals as its own docs do */

import { execFile, spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { CoreV1Api, RbacAuthorizationV1Api, type V1ConfigMap } from '@kubernetes/client-node';
import { type Test } from 'tap';
import { parseDocument } from 'yaml';
import { loadKubeConfig, watchRulesConfigMap } from '../../src/config/rules-configmap-watch.js';
import type { RulesWatch } from '../../src/config/rules-file-watch.js';
import { captureLog } from '../helpers/log.js';
import { BROKEN_RULES_ERROR, brokenRulesText, Recorder, rulesText } from '../helpers/ruleset-recorder.js';
import { runSuite, startCluster, type Binaries } from './harness.js';

const exec = promisify(execFile);

const NS = 'portcullis';
const NAME = 'portcullis-rules';
const SERVICE_ACCOUNT_USER = `system:serviceaccount:${NS}:portcullis`;
const ORIGIN = `configmap ${NS}/${NAME} rules.yaml`;

function stats(latencies: number[]): string {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return `n=${sorted.length} min=${at(0).toFixed(1)} ms median=${at(0.5).toFixed(1)} ms max=${at(1).toFixed(1)} ms`;
}

async function suite(t: Test, binaries: Binaries): Promise<void> {
  const started = performance.now();
  const { workdir } = await startCluster(t, binaries, { name: 'cm' });
  t.comment(`cluster up in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  const adminKubeconfig = join(workdir, 'kubeconfig');
  const admin = loadKubeConfig(adminKubeconfig);
  const core = admin.makeApiClient(CoreV1Api);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);

  // What the shipped manifests grant Portcullis, and nothing more: RBAC allows list/watch on one
  // name when the request selects it with metadata.name.
  await core.createNamespace({ body: { metadata: { name: NS } } });
  await rbac.createNamespacedRole({
    namespace: NS,
    body: {
      metadata: { name: 'portcullis-rules-reader' },
      rules: [
        {
          apiGroups: [''],
          resources: ['configmaps'],
          resourceNames: [NAME],
          verbs: ['get', 'list', 'watch'],
        },
        { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
      ],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace: NS,
    body: {
      metadata: { name: 'portcullis-rules-reader' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'portcullis-rules-reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'portcullis', namespace: NS }],
    },
  });
  const kubeconfig = join(workdir, 'portcullis.kubeconfig');
  const doc = parseDocument(await readFile(adminKubeconfig, 'utf8'));
  doc.setIn(['users', 0, 'user', 'as'], SERVICE_ACCOUNT_USER);
  await writeFile(kubeconfig, doc.toString());

  const configMap = (data: Record<string, string>): V1ConfigMap => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: NAME, namespace: NS },
    data,
  });
  const replace = async (data: Record<string, string>) => {
    const sent = performance.now();
    const stored = await core.replaceNamespacedConfigMap({
      name: NAME,
      namespace: NS,
      body: configMap(data),
    });
    return { sent, accepted: performance.now(), resourceVersion: stored.metadata?.resourceVersion };
  };

  const created = await core.createNamespacedConfigMap({
    namespace: NS,
    body: configMap({ 'rules.yaml': rulesText('team-0') }),
  });

  const recorder = new Recorder();
  const captured = captureLog();
  let watch: RulesWatch | undefined = watchRulesConfigMap({
    ref: { namespace: NS, name: NAME },
    kubeConfig: loadKubeConfig(kubeconfig),
    log: captured.log,
    onRuleSet: recorder.onRuleSet,
    onInvalid: recorder.onInvalid,
    backoff: { initialMs: 200, maxMs: 2_000 },
    instance: 'portcullis-7d9f-test',
  });
  t.teardown(() => watch?.stop());

  await t.test('the first list loads the RuleSet, with its resourceVersion', async (t) => {
    const first = await recorder.next(10_000);
    t.equal(first.kind, 'ruleset');
    if (first.kind !== 'ruleset') return;
    t.equal(first.loaded.origin, ORIGIN);
    t.equal(first.loaded.resourceVersion, created.metadata?.resourceVersion);
  });

  await t.test('every edit is enforced well under 1 s after the API server accepts it', async (t) => {
    const fromAccepted: number[] = [];
    const fromSent: number[] = [];
    for (let i = 1; i <= 20; i++) {
      const write = await replace({ 'rules.yaml': rulesText(`team-${i}`) });
      const d = await recorder.next();
      t.equal(d.kind === 'ruleset' && d.loaded.resourceVersion, write.resourceVersion, `edit ${i}`);
      fromAccepted.push(d.at - write.accepted);
      fromSent.push(d.at - write.sent);
    }
    // The watch event can beat the PUT's own response to this process: latencies near or below 0.
    t.comment(`reload latency after the PUT response: ${stats(fromAccepted)}`);
    t.comment(`reload latency after the PUT was sent: ${stats(fromSent)}`);
    t.ok(Math.max(...fromSent) < 1000);
  });

  let invalidResourceVersion: string | undefined;
  await t.test('a broken RuleSet is refused with the field, and posted as an Event', async (t) => {
    const write = await replace({ 'rules.yaml': brokenRulesText() });
    invalidResourceVersion = write.resourceVersion;
    const refused = await recorder.next();
    t.same(refused.kind === 'invalid' && refused.errors, [`${ORIGIN}:9: ${BROKEN_RULES_ERROR}`]);
    t.same(await recorder.during(300), [], 'no RuleSet replaces the last good one');

    const uid = created.metadata?.uid ?? '';
    let events = await core.listNamespacedEvent({
      namespace: NS,
      fieldSelector: `involvedObject.uid=${uid}`,
    });
    for (let i = 0; i < 50 && events.items.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      events = await core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.uid=${uid}` });
    }
    t.equal(events.items.length, 1, 'one Event');
    const event = events.items[0];
    t.match(event, {
      type: 'Warning',
      reason: 'InvalidRuleSet',
      message: `${ORIGIN}:9: ${BROKEN_RULES_ERROR}`,
      source: { component: 'portcullis' },
      reportingComponent: 'portcullis',
      reportingInstance: 'portcullis-7d9f-test',
      involvedObject: {
        kind: 'ConfigMap',
        name: NAME,
        namespace: NS,
        uid,
        resourceVersion: write.resourceVersion,
      },
    });

    const { stdout } = await exec('kubectl', [
      '--kubeconfig',
      adminKubeconfig,
      'describe',
      'configmap',
      '-n',
      NS,
      NAME,
    ]);
    t.match(
      stdout,
      /Warning\s+InvalidRuleSet\s+.*portcullis\s+configmap portcullis\/portcullis-rules rules\.yaml:9:/,
    );
    t.comment(stdout.slice(stdout.indexOf('Events:')).trimEnd());
  });

  await t.test('a label edit of the same broken text is not refused (or posted) again', async (t) => {
    const stored = await core.readNamespacedConfigMap({ name: NAME, namespace: NS });
    stored.metadata = {
      name: NAME,
      namespace: NS,
      resourceVersion: stored.metadata?.resourceVersion,
      labels: { touched: 'yes' },
    };
    await core.replaceNamespacedConfigMap({ name: NAME, namespace: NS, body: stored });
    t.same(await recorder.during(500), []);
    t.not(invalidResourceVersion, undefined);
  });

  await t.test('rules.yaml removed from the ConfigMap', async (t) => {
    await replace({ 'other.yaml': 'x' });
    const refused = await recorder.next();
    t.same(refused.kind === 'invalid' && refused.errors, [
      `${ORIGIN}: missing: the ConfigMap has no data["rules.yaml"]`,
    ]);
  });

  await t.test('the fix is loaded; deleting the ConfigMap keeps it; recreating loads again', async (t) => {
    const fix = await replace({ 'rules.yaml': rulesText('team-20') });
    const fixed = await recorder.next();
    t.equal(fixed.kind === 'ruleset' && fixed.loaded.resourceVersion, fix.resourceVersion);

    await core.deleteNamespacedConfigMap({ name: NAME, namespace: NS });
    t.same(await recorder.during(500), [], 'nothing delivered: the caller keeps the last good RuleSet');
    t.ok(
      captured
        .lines()
        .some((l) => l['msg'] === 'rules ConfigMap deleted; the last good RuleSet stays in force'),
    );

    const again = await core.createNamespacedConfigMap({
      namespace: NS,
      body: configMap({ 'rules.yaml': rulesText('team-21') }),
    });
    const reloaded = await recorder.next();
    t.equal(reloaded.kind === 'ruleset' && reloaded.loaded.resourceVersion, again.metadata?.resourceVersion);
  });

  // SIGKILL, as in a crash: a SIGTERM'd API server keeps serving open watches for its 60 s
  // shutdown timeout, which is the same path as the end of a watch, only slower to test.
  await t.test('the watch comes back after the API server is killed and restarted', async (t) => {
    const pidFile = join(workdir, 'kube-apiserver.pid');
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter((a) => a !== '');
    process.kill(pid, 'SIGKILL');
    while (existsSync(`/proc/${pid}`)) await new Promise((r) => setTimeout(r, 100));
    const [bin, ...args] = argv;
    if (bin === undefined) throw new Error('no kube-apiserver command line');
    const log = openSync(join(workdir, 'kube-apiserver.log'), 'a');
    const child = spawn(bin, args, { detached: true, stdio: ['ignore', log, log] });
    child.unref();
    await writeFile(pidFile, String(child.pid));
    const restarted = performance.now();
    for (;;) {
      try {
        await core.readNamespacedConfigMap({ name: NAME, namespace: NS });
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    t.comment(
      `API server serving again ${((performance.now() - restarted) / 1000).toFixed(1)} s after restart`,
    );

    const write = await replace({ 'rules.yaml': rulesText('after-restart') });
    const d = await recorder.next(10_000);
    t.equal(d.kind === 'ruleset' && d.loaded.resourceVersion, write.resourceVersion);
    t.comment(
      `edit after the restart enforced ${(d.at - write.accepted).toFixed(0)} ms after its PUT returned`,
    );
    const failures = captured
      .lines()
      .filter((l) => l['msg'] === 'rules ConfigMap watch failed; restarting it');
    t.ok(failures.length > 0, 'the failure was logged and the watch restarted');
    t.comment(
      `watch failures while the API server was down: ${failures.map((l) => `${String(l['error'])} (retry in ${String(l['retryInMs'])} ms)`).join(', ')}`,
    );
  });

  await t.test('stop() ends the watch', async (t) => {
    await watch?.stop();
    watch = undefined;
    await replace({ 'rules.yaml': rulesText('after-stop') });
    t.same(await recorder.during(500), []);
  });
}

runSuite('serve --rules-configmap on a real kube-apiserver', suite);
