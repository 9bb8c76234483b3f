// Issue 14 end to end, on a real kube-apiserver with its own audit log (the policy the README
// documents, docs/audit-policy.yaml, through start-cluster.sh's AUDIT_POLICY): compliant and
// non-compliant objects are created with real kubectl while Portcullis is NOT registered, by three
// identities (two impersonated); then `portcullis replay` of the API server's log must name exactly
// the non-compliant ones, by user; `--baseline` exactly the difference between two RuleSets; and
// `portcullis scan` of the same cluster the same objects (plus the one created by server-side
// apply, a patch whose body the log cannot hold).
//
// Run with `npm run test:e2e`. Without the binaries this file skips.

import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { type Test } from 'tap';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { CHECKS } from '../../src/core/checks/index.js';
import { POD_TARGET } from '../../src/core/pod.js';
import {
  must,
  poll,
  REPO,
  run,
  runSuite,
  serviceAccountKubeconfig,
  startCluster,
  type Binaries,
  type RunResult,
} from './harness.js';

const PORTCULLIS = join(REPO, 'bin/portcullis');
const ADMIN = 'portcullis-admin';

/** The value at `path` in parsed JSON, or undefined; keeps the assertions free of casts. */
function at(value: unknown, ...path: (string | number)[]): unknown {
  let node = value;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node;
}
const list = (value: unknown): unknown[] => (Array.isArray(value) ? (value as unknown[]) : []);
const str = (value: unknown): string => (typeof value === 'string' ? value : String(value));

const pod = (name: string, namespace: string, container: Record<string, unknown>) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace },
  spec: { containers: [{ name: 'app', ...container }] },
});
const deployment = (name: string, namespace: string, spec: Record<string, unknown>) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace, labels: { app: name } },
  spec: {
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec },
  },
});
const TRUSTED = 'registry.k8s.io/pause:3.10';

async function suite(t: Test, binaries: Binaries): Promise<void> {
  const e2e = await startCluster(t, binaries, {
    name: 'impact',
    auditPolicy: join(REPO, 'docs/audit-policy.yaml'),
  });
  const { workdir, cluster, kubectl, auditLog } = e2e;
  // Impersonation: the audit event's `user` is the admin, `impersonatedUser` the one admission judged.
  const as = (user: string): string[] => [`--as=${user}`, '--as-group=system:masters'];

  // --- two RuleSets: the one in force (shipped) and the tightened one under review ------------
  const shipped = parse(readFileSync(join(REPO, 'rules/default.yaml'), 'utf8')) as {
    rules: { name: string; check: string; action?: string; params?: Record<string, unknown> }[];
  };
  const baselineFile = join(workdir, 'baseline.yaml');
  writeFileSync(baselineFile, stringify(shipped));
  // Under review: ghcr.io/portcullis is no longer trusted (newly denied), privileged containers
  // only warn while the team migrates (newly allowed).
  const tightened = structuredClone(shipped);
  for (const rule of tightened.rules) {
    if (rule.name === 'trusted-registries') rule.params = { registries: ['registry.k8s.io'] };
    if (rule.name === 'no-privileged') rule.action = 'warn';
  }
  const rulesFile = join(workdir, 'rules.yaml');
  writeFileSync(rulesFile, stringify(tightened));

  // --- what happens in the cluster while Portcullis is not registered -------------------------
  for (const ns of ['team-a', 'team-b']) await must(kubectl(['create', 'namespace', ns]), `namespace ${ns}`);
  const create = (what: unknown, user: string[] = []): Promise<RunResult> =>
    must(kubectl([...user, 'create', '-f', '-'], what), `create ${str(at(what, 'metadata', 'name'))}`);

  await create(pod('good', 'team-a', { image: TRUSTED }), as('alice'));
  await create(
    pod('privileged', 'team-a', { image: TRUSTED, securityContext: { privileged: true } }),
    as('alice'),
  );
  await create(
    deployment('hostpath', 'team-b', {
      containers: [{ name: 'app', image: TRUSTED, volumeMounts: [{ name: 'root', mountPath: '/host' }] }],
      volumes: [{ name: 'root', hostPath: { path: '/' } }],
    }),
    as('bob'),
  );
  await create(
    deployment('ghcr', 'team-b', { containers: [{ name: 'app', image: 'ghcr.io/portcullis/tool:1' }] }),
    as('bob'),
  );
  await create(deployment('web', 'team-b', { containers: [{ name: 'app', image: TRUSTED }] }), as('bob'));
  await create({
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name: 'nightly', namespace: 'team-a' },
    spec: {
      schedule: '0 3 * * *',
      jobTemplate: {
        spec: {
          template: {
            spec: {
              restartPolicy: 'Never',
              containers: [{ name: 'job', image: 'docker.io/library/busybox:1.36' }],
            },
          },
        },
      },
    },
  });
  await create({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'carol-admin' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'carol' }],
  });
  // Exempt namespace: never judged.
  await create(pod('system-agent', 'kube-system', { image: TRUSTED, securityContext: { privileged: true } }));

  // Distractors the log holds but replay must not judge: a request the API server refused (an
  // invalid name, 422), a label patch, a read, and a server-side apply (a patch: the log has the
  // patch, not the object; only scan sees that object).
  const refused = await kubectl(
    ['create', '-f', '-'],
    pod('Not_A_Name', 'team-a', { image: 'docker.io/evil:1', securityContext: { privileged: true } }),
  );
  t.not(refused.code, 0, 'the API server refuses an invalid name itself');
  await must(kubectl(['label', 'pod', 'good', '-n', 'team-a', 'reviewed=yes']), 'label patch');
  await must(kubectl(['get', 'pods', '-A']), 'a read');
  await must(
    kubectl(
      [...as('alice'), 'apply', '--server-side', '--field-manager=e2e', '-f', '-'],
      pod('applied', 'team-a', { image: 'docker.io/library/nginx:1.27' }),
    ),
    'server-side apply',
  );

  // Updates: two relabels of the hostPath Deployment and a new image for `web` (judged: now
  // untrusted). A relabel leaves what the rules judge unchanged, so the webhook lets it through,
  // and replay must too: at level Request it compares with the previous request body (the first
  // relabel's body, read back from the API server, carries defaults the create's did not; what
  // the rules judge is the same).
  const replaceWith = async (name: string, edit: (d: Record<string, unknown>) => void): Promise<void> => {
    const got = await must(kubectl(['get', 'deployment', name, '-n', 'team-b', '-o', 'json']), `get ${name}`);
    const object = JSON.parse(got.stdout) as Record<string, unknown>;
    edit(object);
    await must(kubectl([...as('bob'), 'replace', '-f', '-'], object), `replace ${name}`);
  };
  for (const tier of ['ops', 'ops-2']) {
    await replaceWith('hostpath', (d) => {
      const metadata = d['metadata'] as { labels: Record<string, string> };
      metadata.labels['tier'] = tier;
    });
  }
  await replaceWith('web', (d) => {
    const containers = at(d, 'spec', 'template', 'spec', 'containers');
    (list(containers)[0] as Record<string, unknown>)['image'] = 'quay.io/someone/web:2';
  });

  // The log backend writes an event after the response: wait for the last one.
  await must(kubectl(['create', 'configmap', 'marker', '-n', 'team-a']), 'marker');
  const flushed = await poll(async () => {
    const text = readFileSync(auditLog, 'utf8');
    return /"stage":"ResponseComplete"[^\n]*"name":"marker"|"name":"marker"[^\n]*"stage":"ResponseComplete"/.test(
      text,
    )
      ? true
      : undefined;
  }, 10_000);
  t.ok(flushed, 'the audit log holds the last request');
  const logBytes = statSync(auditLog).size;
  const logLines = readFileSync(auditLog, 'utf8')
    .split('\n')
    .filter((l) => l !== '').length;
  const withBodies = readFileSync(auditLog, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"requestObject"'));
  const bodyBytes = withBodies.reduce((n, l) => n + l.length + 1, 0);
  t.comment(
    `audit log: ${logLines} events, ${logBytes} bytes; ${withBodies.length} with a requestObject, ` +
      `${Math.round(bodyBytes / Math.max(1, withBodies.length))} bytes each on average; ` +
      `gzip ${(logBytes / gzipSync(readFileSync(auditLog)).length).toFixed(1)}× smaller`,
  );

  const portcullis = (args: readonly string[], input?: string): Promise<RunResult> =>
    run(process.execPath, [PORTCULLIS, ...args], {
      timeoutMs: 60_000,
      ...(input === undefined ? {} : { input }),
    });

  /** `user verb Kind ns/name rule,rule` for each event of a replay's JSON, sorted. */
  const lines = (events: unknown[], pick: (e: unknown) => unknown[]): string[] =>
    events
      .map((e) => {
        const ref = at(e, 'objectRef');
        const rules = [...new Set(pick(e).map((v) => str(at(v, 'rule'))))].join(',');
        const ns = at(ref, 'namespace');
        return `${str(at(e, 'user', 'username'))} ${str(at(e, 'verb'))} ${str(at(ref, 'resource'))} ${ns === undefined ? '' : `${str(ns)}/`}${str(at(ref, 'name'))} ${rules}`;
      })
      .sort();
  const denying = (e: unknown): unknown[] =>
    list(at(e, 'violations')).filter((v) => at(v, 'action') === 'deny');

  await t.test('replay names exactly the non-compliant requests, by the user admission judged', async (t) => {
    const r = await portcullis(['replay', '--rules', rulesFile, '-o', 'json', auditLog]);
    t.equal(r.code, 1, `exit 1: something would be denied\n${r.stderr}`);
    t.equal(r.stderr, '');
    const out: unknown = JSON.parse(r.stdout);
    const events = list(at(out, 'events'));
    t.same(
      lines(
        events.filter((e) => at(e, 'allowed') === false),
        denying,
      ),
      [
        'bob create deployments team-b/ghcr trusted-registries',
        'bob create deployments team-b/hostpath no-host-path',
        'bob update deployments team-b/web trusted-registries',
        `${ADMIN} create clusterrolebindings carol-admin no-cluster-admin-binding`,
        `${ADMIN} create cronjobs team-a/nightly trusted-registries`,
      ],
    );
    // Bob and alice were impersonated: the admin who impersonated is named too.
    const ghcr = events.find((e) => at(e, 'objectRef', 'name') === 'ghcr');
    t.equal(at(ghcr, 'impersonatedBy'), ADMIN);
    t.same(at(ghcr, 'user', 'groups'), ['system:masters', 'system:authenticated']);
    const warned = events.find((e) => at(e, 'objectRef', 'name') === 'privileged');
    t.equal(at(warned, 'allowed'), true, 'privileged only warns under the tightened rules');
    t.same(
      list(at(warned, 'violations')).map((v) => at(v, 'message')),
      ['container "app": securityContext.privileged must not be true'],
    );
    const [first, second] = events.filter(
      (e) => at(e, 'objectRef', 'name') === 'hostpath' && at(e, 'verb') === 'update',
    );
    for (const relabel of [first, second]) {
      t.equal(at(relabel, 'skipped'), 'the update does not change what the rules judge');
      t.equal(at(relabel, 'previous'), 'request body');
    }
    t.equal(
      at(
        events.find((e) => at(e, 'objectRef', 'name') === 'system-agent'),
        'skipped',
      ),
      'namespace "kube-system" matches exemptions.namespaces',
    );
    t.notOk(
      events.some((e) => ['Not_A_Name', 'applied', 'marker'].includes(str(at(e, 'objectRef', 'name')))),
    );
    const summary = at(out, 'summary');
    t.equal(
      at(summary, 'updatesNotCompared'),
      0,
      'the one update with violations (web) follows a body that broke no rule: nothing to flag',
    );
    t.equal(at(summary, 'denied'), 5);
    t.equal(at(summary, 'unreadable'), 0);
    t.ok(Number(at(summary, 'notJudged', 'refused')) >= 1, 'the refused create is counted as refused');
    t.ok(
      Number(at(summary, 'notJudged', 'patch')) >= 2,
      'the label patch and the server-side apply are counted as patches',
    );
    // Watches log a ResponseStarted stage besides ResponseComplete; those are counted, not judged.
    t.ok(Number(at(summary, 'notJudged', 'stage')) > 0);
    t.comment(`replay summary: ${JSON.stringify(summary)}`);

    // The table: by rule, namespace and user, with first and last seen.
    const table = await portcullis(['replay', '--rules', rulesFile, auditLog]);
    t.equal(table.code, 1);
    const rows = table.stdout.split('\n');
    t.match(rows[0], /^RULE +ACTION +NAMESPACE +USER +EVENTS +FIRST SEEN +LAST SEEN +OBJECTS$/);
    const row = (rule: string, user: string) =>
      rows.find((l) => l.startsWith(`${rule} `) && l.includes(` ${user} `));
    t.match(
      row('trusted-registries', 'bob'),
      /^trusted-registries +deny +team-b +bob +2 +\S+Z +\S+Z +Deployment ghcr, Deployment web$/,
    );
    t.match(row('no-privileged', 'alice'), /^no-privileged +warn +team-a +alice +1 /);
    t.match(
      row('no-cluster-admin-binding', ADMIN),
      /^no-cluster-admin-binding +deny +\(cluster\) +portcullis-admin +1 /,
    );
    t.match(
      table.stdout,
      /\n\d+ events read: \d+ judged \(5 would be denied, 1 warned, 0 audited, \d+ allowed, 9 skipped\)\n/,
    );

    // The same log cut in two as the API server rotates it (the older part gzipped, as
    // --audit-log-compress leaves it), given oldest first: the same events, the same verdicts.
    const all = readFileSync(auditLog, 'utf8').split('\n');
    // Cut after the third event with a body, so both parts hold judged events.
    const half = all.map((l, i) => (l.includes('"requestObject"') ? i : -1)).filter((i) => i >= 0)[2]! + 1;
    const rotated = join(workdir, 'audit-2026-12-01T00-00-00.000.log.gz');
    const current = join(workdir, 'audit-current.log');
    writeFileSync(rotated, gzipSync(all.slice(0, half).join('\n') + '\n'));
    writeFileSync(current, all.slice(half).join('\n'));
    const split = await portcullis(['replay', '--rules', rulesFile, '-o', 'json', rotated, current]);
    t.equal(split.code, 1, split.stderr);
    const splitEvents = list(at(JSON.parse(split.stdout), 'events'));
    t.same(
      splitEvents.map((e) => [at(e, 'auditID'), at(e, 'allowed')]),
      events.map((e) => [at(e, 'auditID'), at(e, 'allowed')]),
    );
    t.ok(splitEvents.some((e) => str(at(e, 'source')).startsWith(`${rotated}:`)));
  });

  await t.test('replay --baseline names exactly what the rule change changes', async (t) => {
    const r = await portcullis([
      'replay',
      '--rules',
      rulesFile,
      '--baseline',
      baselineFile,
      '-o',
      'json',
      auditLog,
    ]);
    t.equal(r.code, 1, `exit 1: something would be newly denied\n${r.stderr}`);
    const out: unknown = JSON.parse(r.stdout);
    const events = list(at(out, 'events'));
    t.same(
      lines(
        events.filter((e) => at(e, 'change') === 'newly-denied'),
        denying,
      ),
      ['bob create deployments team-b/ghcr trusted-registries'],
    );
    t.same(
      lines(
        events.filter((e) => at(e, 'change') === 'newly-allowed'),
        (e) => list(at(e, 'baseline', 'violations')).filter((v) => at(v, 'action') === 'deny'),
      ),
      ['alice create pods team-a/privileged no-privileged'],
    );
    t.equal(events.length, 2, 'nothing else changes');
    t.equal(at(out, 'summary', 'newlyDenied'), 1);
    t.equal(at(out, 'summary', 'newlyAllowed'), 1);

    const table = await portcullis(['replay', '--rules', rulesFile, '--baseline', baselineFile, auditLog]);
    const rows = table.stdout.split('\n');
    t.match(rows[0], /^CHANGE +RULE +ACTION +NAMESPACE +USER +EVENTS/);
    t.match(rows[1], /^newly allowed +no-privileged +deny +team-a +alice +1 .*Pod privileged$/);
    t.match(rows[2], /^newly denied +trusted-registries +deny +team-b +bob +1 .*Deployment ghcr$/);
    t.match(table.stdout, /\nagainst the baseline: 1 newly denied, 1 newly allowed\n/);

    // The RuleSet against itself changes nothing: exit 0.
    const same = await portcullis(['replay', '--rules', baselineFile, '--baseline', baselineFile, auditLog]);
    t.equal(same.code, 0);
    t.match(same.stdout, /against the baseline: 0 newly denied, 0 newly allowed/);
  });

  await t.test('scan finds the same objects in the cluster (and the one only a patch made)', async (t) => {
    const objectsOf = (out: unknown): string[] =>
      list(at(out, 'results'))
        .filter((r) => at(r, 'allowed') === false)
        .map((r) => {
          const ns = at(r, 'namespace');
          const rules = [
            ...new Set(
              list(at(r, 'violations'))
                .filter((v) => at(v, 'action') === 'deny')
                .map((v) => str(at(v, 'rule'))),
            ),
          ];
          return `${str(at(r, 'kind'))} ${ns === null ? '' : `${str(ns)}/`}${str(at(r, 'name'))} ${rules.join(',')}`;
        })
        .sort();
    const scan = await portcullis([
      'scan',
      '--kubeconfig',
      cluster.kubeconfig,
      '--rules',
      rulesFile,
      '-A',
      '-o',
      'json',
    ]);
    t.equal(scan.code, 1, scan.stderr);
    const out: unknown = JSON.parse(scan.stdout);
    t.same(objectsOf(out), [
      'ClusterRoleBinding carol-admin no-cluster-admin-binding',
      'CronJob team-a/nightly trusted-registries',
      'Deployment team-b/ghcr trusted-registries',
      'Deployment team-b/hostpath no-host-path',
      'Deployment team-b/web trusted-registries',
      'Pod team-a/applied trusted-registries',
    ]);
    const exempt = list(at(out, 'results')).find((r) => at(r, 'name') === 'system-agent');
    t.equal(at(exempt, 'skipped'), 'namespace "kube-system" matches exemptions.namespaces');

    // Paged one object at a time (limit=1 and continue), the answer is the same.
    const paged = await portcullis([
      'scan',
      '--kubeconfig',
      cluster.kubeconfig,
      '--rules',
      rulesFile,
      '-A',
      '-o',
      'json',
      '--chunk-size',
      '1',
    ]);
    t.same(JSON.parse(paged.stdout), out, 'paging does not change what is found');

    // One namespace: its objects only, no cluster-scoped kinds.
    const teamA = await portcullis([
      'scan',
      '--kubeconfig',
      cluster.kubeconfig,
      '--rules',
      rulesFile,
      '-n',
      'team-a',
    ]);
    t.equal(teamA.code, 1);
    t.equal(
      teamA.stdout,
      [
        'OBJECT                  RULE                ACTION  MESSAGE',
        'Pod team-a/applied      trusted-registries  deny    container "app": image "docker.io/library/nginx:1.27" is not from a trusted registry',
        'Pod team-a/privileged   no-privileged       warn    container "app": securityContext.privileged must not be true',
        'CronJob team-a/nightly  trusted-registries  deny    container "job": image "docker.io/library/busybox:1.36" is not from a trusted registry',
        '',
        '4 objects scanned: 2 denied, 1 warned, 0 audited, 1 allowed, 0 skipped',
        '',
      ].join('\n'),
    );

    // PolicyReports: one per namespace and a ClusterPolicyReport, printed, not written.
    const reports = await portcullis([
      'scan',
      '--kubeconfig',
      cluster.kubeconfig,
      '--rules',
      rulesFile,
      '-A',
      '-o',
      'policyreport',
    ]);
    t.equal(reports.code, 1);
    const docs = parseAllDocuments(reports.stdout).map((d) => d.toJS() as unknown);
    t.same(
      docs.map((d) => `${str(at(d, 'kind'))} ${str(at(d, 'metadata', 'namespace') ?? '')}`),
      // kube-public holds the API server's bootstrap RoleBindings.
      [
        'ClusterPolicyReport ',
        'PolicyReport kube-public',
        'PolicyReport kube-system',
        'PolicyReport team-a',
        'PolicyReport team-b',
      ],
    );
    const teamAReport = docs.find((d) => at(d, 'metadata', 'namespace') === 'team-a');
    t.equal(at(teamAReport, 'apiVersion'), 'wgpolicyk8s.io/v1alpha2');
    const nightly = list(at(teamAReport, 'results')).filter(
      (r) => at(r, 'resources', 0, 'name') === 'nightly',
    );
    // Every pod rule of the RuleSet reports on the CronJob; only the registry rule fails it.
    const podRules = tightened.rules.filter((r) => CHECKS.get(r.check)?.target === POD_TARGET);
    t.ok(podRules.length >= 4, 'the shipped RuleSet has pod rules');
    t.same(
      nightly.map((r) => `${str(at(r, 'policy'))}=${str(at(r, 'result'))}`).sort(),
      podRules.map((r) => `${r.name}=${r.name === 'trusted-registries' ? 'fail' : 'pass'}`).sort(),
    );
    t.equal(at(teamAReport, 'summary', 'fail'), 2);
    t.equal(at(teamAReport, 'summary', 'warn'), 1);
    const system = docs.find((d) => at(d, 'metadata', 'namespace') === 'kube-system');
    t.same(
      [...new Set(list(at(system, 'results')).map((r) => at(r, 'result')))],
      ['skip'],
      'an exempt namespace is skipped',
    );
    const listed = await must(
      kubectl(['api-resources', '--api-group=wgpolicyk8s.io', '-o', 'name']),
      'api-resources',
    );
    t.equal(listed.stdout, '', 'nothing was written into the cluster (not even the CRD)');
  });

  await t.test(
    'scan with credentials that may list only pods: each other kind reported, exit 2',
    async (t) => {
      await must(kubectl(['create', 'serviceaccount', 'scanner', '-n', 'team-a']), 'serviceaccount');
      await must(
        kubectl(['create', 'clusterrole', 'pod-lister', '--verb=list', '--resource=pods']),
        'clusterrole',
      );
      await must(
        kubectl([
          'create',
          'clusterrolebinding',
          'scanner',
          '--clusterrole=pod-lister',
          '--serviceaccount=team-a:scanner',
        ]),
        'clusterrolebinding',
      );
      const kubeconfig = await serviceAccountKubeconfig(e2e, 'team-a', 'scanner');
      const r = await portcullis(['scan', '--kubeconfig', kubeconfig, '--rules', rulesFile, '-A']);
      t.equal(r.code, 2, 'a scan that could not see every kind cannot say all is well');
      const user = 'system:serviceaccount:team-a:scanner';
      t.equal(
        r.stderr,
        [
          ['podtemplates', ''],
          ['replicationcontrollers', ''],
          ['deployments.apps', 'apps'],
          ['daemonsets.apps', 'apps'],
          ['statefulsets.apps', 'apps'],
          ['replicasets.apps', 'apps'],
          ['jobs.batch', 'batch'],
          ['cronjobs.batch', 'batch'],
          ['rolebindings.rbac.authorization.k8s.io', 'rbac.authorization.k8s.io'],
          ['clusterrolebindings.rbac.authorization.k8s.io', 'rbac.authorization.k8s.io'],
        ]
          .map(
            ([label = '', group = '']) =>
              `portcullis: cannot list ${label} in all namespaces: 403 Forbidden: ${label} is forbidden: User "${user}" ` +
              `cannot list resource "${label.split('.')[0] ?? ''}" in API group "${group}" at the cluster scope\n`,
          )
          .join(''),
      );
      t.match(
        r.stdout,
        /\n4 objects scanned: 1 denied, 1 warned, 0 audited, 1 allowed, 1 skipped; 10 kinds could not be listed\n/,
      );
    },
  );
}

runSuite('replay and scan on a real kube-apiserver', suite);
