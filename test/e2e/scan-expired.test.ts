// `portcullis scan`'s paging when a continue token expires (issue 14), on a real kube-apiserver:
// one started with `--etcd-compaction-interval=1s` (the default is 5 minutes) and without its watch
// cache (`--watch-cache=false`: a continued list is then always read from etcd, at the token's
// revision, as on an API server whose cache cannot serve it), so that a token is compacted away
// seconds after it is issued, as happens to a long scan on a busy cluster. The pages are read
// through the same generator `scan` reads them with; the test only waits between two of them.
//
// Run with `npm run test:e2e`. Without the binaries this file skips.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import t, { type Test } from 'tap';
import { kindsJudgedBy } from '../../src/admission/kinds.js';
import { listObjects, type ListPage } from '../../src/config/cluster-objects.js';
import { ruleSet } from '../helpers/rules.js';
import { Cluster, findBinaries, startWatchdog, type Binaries, type RunResult } from './harness.js';

const NAMESPACE = 'paged';
const PODS = 7;
const PAGE = 2;

async function suite(t: Test, binaries: Binaries): Promise<void> {
  const workdir = mkdtempSync(join(tmpdir(), 'portcullis-e2e-scan-expired-'));
  const watchdog = startWatchdog(workdir, join(workdir, 'no-server.pid'));
  t.teardown(async () => {
    await Cluster.stop(workdir);
    if (watchdog.pid !== undefined) process.kill(-watchdog.pid, 'SIGTERM');
    if (t.passing()) rmSync(workdir, { recursive: true, force: true });
    else console.error(`# end-to-end (scan expiry): logs kept in ${workdir}`);
  });
  const cluster = await Cluster.start(workdir, binaries, [
    '--etcd-compaction-interval=1s',
    '--watch-cache=false',
  ]);
  const must = async (result: Promise<RunResult>, what: string): Promise<RunResult> => {
    const r = await result;
    if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stderr}`);
    return r;
  };
  await must(cluster.kubectl(['create', 'namespace', NAMESPACE]), 'namespace');
  const pods = Array.from({ length: PODS }, (_, i) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `p${i}`, namespace: NAMESPACE },
    spec: { containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] },
  }));
  await must(
    cluster.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: pods })),
    'the pods',
  );
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(cluster.kubeconfig);
  const podsResource = kindsJudgedBy(ruleSet([{ name: 'p', check: 'privileged' }])).find(
    (r) => r.resource === 'pods',
  );
  if (podsResource === undefined) throw new Error('no pods resource');

  // Writes after the first page, then two compaction intervals: the token's revision is gone.
  const expireTheToken = async (round: number): Promise<void> => {
    for (let i = 0; i < 3; i++) {
      await must(
        cluster.kubectl(['create', 'configmap', `churn-${round}-${i}`, '-n', NAMESPACE]),
        'a write that moves the revision on',
      );
    }
    await sleep(3_500);
  };
  const names = (page: ListPage): string[] =>
    page.ok
      ? page.items.map((o) => {
          const metadata = o['metadata'];
          return typeof metadata === 'object' && metadata !== null && 'name' in metadata
            ? String(metadata.name)
            : '';
        })
      : [];

  await t.test('a token that expires mid-list: started over once, nothing listed twice', async (t) => {
    const pages: ListPage[] = [];
    for await (const page of listObjects(kubeConfig, podsResource, NAMESPACE, PAGE)) {
      pages.push(page);
      if (pages.length === 2) await expireTheToken(1);
    }
    t.same(
      pages.map((p) => (p.ok ? [names(p).length, p.alreadyListed, p.restart?.pagesBefore] : [p.message])),
      [
        [2, 0, undefined],
        [2, 0, undefined],
        // The fresh list: its first two pages are the four pods already listed.
        [0, 2, 2],
        [0, 2, undefined],
        [2, 0, undefined],
        [1, 0, undefined],
      ],
      'two pages, the expiry, then the whole list again with the first four left out',
    );
    const all = pages.flatMap(names);
    t.same([...all].sort(), pods.map((p) => p.metadata.name).sort(), 'every pod exactly once');
  });

  await t.test('a list that expires again after starting over ends with the reason', async (t) => {
    const pages: ListPage[] = [];
    for await (const page of listObjects(kubeConfig, podsResource, NAMESPACE, PAGE)) {
      pages.push(page);
      if (pages.length === 1 || (page.ok && page.restart !== undefined))
        await expireTheToken(pages.length + 1);
    }
    const last = pages.at(-1);
    t.equal(last?.ok, false);
    t.match(
      last?.ok === false ? last.message : '',
      /^410 Gone: The provided continue parameter is too old to display a consistent list result\..* \(again, after the list was started over once\)$/s,
    );
  });
}

const found = findBinaries();
if ('missing' in found) {
  const reason = `end-to-end scan-expiry suite skipped: ${found.missing}. \`npm run test:e2e\` builds the binaries and runs it`;
  if (process.env.PORTCULLIS_E2E_REQUIRED === '1') t.fail(reason);
  else t.plan(0, reason);
} else {
  t.setTimeout(180_000);
  t.test('scan paging when a continue token expires', (t) => suite(t, found.binaries));
}
