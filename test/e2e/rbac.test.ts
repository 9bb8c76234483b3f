// End to end on a real kube-apiserver (issue 10, "block what is cluster-admin in effect"): roles are
// judged when written, bindings by what their ClusterRole grants (serve watching the API server's
// ClusterRoles as the shipped ServiceAccount), and — the part only a real API server can show — the
// API server restarted with the webhook registered writes its bootstrap ClusterRoles and
// ClusterRoleBindings through Portcullis and comes up. The shipped RuleSet and webhook
// configurations, only clientConfig pointed at the local server; everything driven with kubectl.
//
// Run with `npm run test:e2e` (builds the binaries on first use). Without them this file skips.

import { readFileSync } from 'node:fs';
import { type Test } from 'tap';
import {
  applyShippedManifests,
  shippedManifests,
  must,
  poll,
  runSuite,
  startCluster,
  startPortcullis,
  type Binaries,
  type RunResult,
} from './harness.js';

const NAMESPACE = 'team-a';
const RBAC = 'rbac.authorization.k8s.io';

/** Bootstrap objects deleted before the restart, so the API server has to write them again. */
const DELETED_CLUSTER_ROLES = [
  'cluster-admin', // * on *
  'edit', // aggregated: labelled aggregate-to-admin
  'system:aggregate-to-edit', // impersonate serviceaccounts, create pods/exec, aggregate-to-edit
  'system:kubelet-api-admin', // * on nodes/proxy
  'system:controller:clusterrole-aggregation-controller', // escalate on clusterroles
];
const DELETED_CLUSTER_ROLE_BINDINGS = [
  'cluster-admin', // to system:masters
  'system:discovery', // to system:authenticated
  'system:public-info-viewer', // to system:authenticated and system:unauthenticated
  'system:kube-controller-manager', // its role reads secrets, cluster-wide
  'system:controller:replicaset-controller', // its role creates pods, cluster-wide
];

async function suite(t: Test, binaries: Binaries): Promise<void> {
  const e2e = await startCluster(t, binaries, { name: 'rbac' });
  const { cluster, kubectl } = e2e;

  // --- what ships, but the Deployment and the webhooks --------------------------------------
  await applyShippedManifests(e2e, shippedManifests());
  await must(kubectl(['create', 'namespace', NAMESPACE]), `create namespace ${NAMESPACE}`);

  // Written while no webhook judges anything: a full-wildcard ClusterRole not called cluster-admin.
  await must(
    kubectl(['apply', '-f', '-'], clusterRole('legacy-god', [rule(['*'], ['*'], ['*'])])),
    'legacy-god',
  );

  // The bootstrap objects as the API server first wrote them, to compare with what it writes again.
  const before = new Map<string, unknown>();
  for (const name of [...DELETED_CLUSTER_ROLES, 'admin', 'view']) {
    before.set(`clusterrole/${name}`, await getObject(kubectl, 'clusterrole', name));
  }
  for (const name of DELETED_CLUSTER_ROLE_BINDINGS) {
    before.set(`clusterrolebinding/${name}`, await getObject(kubectl, 'clusterrolebinding', name));
  }

  // --- Portcullis as its own ServiceAccount, with the shipped RBAC only ----------------------
  const { server } = await startPortcullis(e2e, { webhooks: 'after' });
  const auditLog = e2e.serveAuditLog;
  t.match(
    readFileSync(server.logFile, 'utf8'),
    /"clusterRoles":\d+,"msg":"ClusterRoles listed"/,
    'serve listed the ClusterRoles',
  );

  const live = await poll(async () => {
    const r = await kubectl([
      'create',
      'clusterrole',
      'probe',
      '--verb=*',
      '--resource=*',
      '--dry-run=server',
    ]);
    return r.code !== 0 && r.stderr.includes('[no-rbac-privilege]') ? true : undefined;
  }, 10_000);
  if (live !== true) throw new Error('the webhooks never took effect');

  // --- roles ---------------------------------------------------------------------------------
  await t.test("kubectl create clusterrole god --verb='*' --resource='*' is refused", async (t) => {
    const r = await kubectl(['create', 'clusterrole', 'god', '--verb=*', '--resource=*']);
    t.not(r.code, 0, 'kubectl fails');
    t.match(
      r.stderr,
      'admission webhook "workloads.portcullis.io" denied the request: ClusterRole "god" grants * on * in the core API group [no-rbac-privilege]',
    );
    t.match((await kubectl(['get', 'clusterrole', 'god'])).stderr, 'NotFound', 'nothing stored');
  });

  await t.test(
    'a ClusterRole that aggregates * on * into admin is refused; one that reads pods is not',
    async (t) => {
      const sneaky = clusterRole('sneaky', [rule(['*'], ['*'], ['*'])], {
        [`${RBAC}/aggregate-to-admin`]: 'true',
      });
      const r = await kubectl(['apply', '-f', '-'], sneaky);
      t.not(r.code, 0);
      t.match(
        r.stderr,
        `ClusterRole "sneaky" grants * on * (cluster-admin in effect), which its label ${RBAC}/aggregate-to-admin adds to ClusterRole "admin" [no-rbac-privilege]`,
      );
      const reader = await kubectl([
        'create',
        'clusterrole',
        'pod-reader',
        '--verb=get,list,watch',
        '--resource=pods',
      ]);
      t.equal(reader.code, 0, reader.stderr);
    },
  );

  // --- bindings ------------------------------------------------------------------------------
  await t.test('a binding to the pre-existing full-wildcard ClusterRole is refused', async (t) => {
    const r = await kubectl([
      'create',
      'clusterrolebinding',
      'x',
      '--clusterrole=legacy-god',
      '--user=mallory',
    ]);
    t.not(r.code, 0, 'kubectl fails');
    t.match(
      r.stderr,
      'ClusterRoleBinding "x": roleRef ClusterRole "legacy-god" grants * on * (cluster-admin in effect) to User "mallory" [no-cluster-admin-binding]',
    );
    const rb = await kubectl([
      'create',
      'rolebinding',
      'x',
      '--clusterrole=legacy-god',
      '--user=mallory',
      '-n',
      NAMESPACE,
    ]);
    t.match(rb.stderr, 'grants * on * (cluster-admin in effect) to User "mallory"', 'in one namespace too');
  });

  await t.test('kubectl create rolebinding of admin for a user in one namespace is admitted', async (t) => {
    const r = await kubectl([
      'create',
      'rolebinding',
      'team-admin',
      '--clusterrole=admin',
      '--user=alice',
      '-n',
      NAMESPACE,
    ]);
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stderr, '', 'no warning either');
    const view = await kubectl([
      'create',
      'clusterrolebinding',
      'alice-view',
      '--clusterrole=view',
      '--user=alice',
    ]);
    t.equal(view.code, 0, `a ClusterRoleBinding of view to a user: ${view.stderr}`);
  });

  await t.test('a ClusterRoleBinding of admin, or of anything to everybody, is refused', async (t) => {
    const admin = await kubectl([
      'create',
      'clusterrolebinding',
      'bob-admin',
      '--clusterrole=admin',
      '--user=bob',
    ]);
    t.match(
      admin.stderr,
      'ClusterRoleBinding "bob-admin": roleRef ClusterRole "admin" grants get on secrets and create on pods in every namespace to User "bob" [no-cluster-admin-binding]',
    );
    const everybody = await kubectl([
      'create',
      'clusterrolebinding',
      'all-view',
      '--clusterrole=view',
      '--group=system:authenticated',
    ]);
    t.match(
      everybody.stderr,
      'ClusterRoleBinding "all-view": roleRef ClusterRole "view" is granted to Group "system:authenticated", which is every authenticated user [no-cluster-admin-binding]',
    );
  });

  await t.test('a ClusterRole created now is seen by the watch', async (t) => {
    await must(
      kubectl(['create', 'clusterrole', 'secret-lister', '--verb=list', '--resource=secrets']),
      'secret-lister',
    );
    const refused = await poll(async () => {
      const r = await kubectl([
        'create',
        'clusterrolebinding',
        'lister',
        '--clusterrole=secret-lister',
        '--user=bob',
        '--dry-run=server',
      ]);
      return r.stderr.includes('grants list on secrets in every namespace to User "bob"') ? r : undefined;
    }, 5_000);
    t.ok(refused, 'a ClusterRoleBinding of it is refused for what it grants');
    const unknown = await kubectl([
      'create',
      'clusterrolebinding',
      'later',
      '--clusterrole=not-yet',
      '--user=bob',
    ]);
    t.equal(unknown.code, 0, 'a binding to a ClusterRole that does not exist is admitted…');
    t.match(
      unknown.stderr,
      'Warning: ClusterRoleBinding "later": roleRef ClusterRole "not-yet" is not known to Portcullis',
      '…with a warning that says so',
    );
  });

  // --- the API server restarted with the webhook registered ---------------------------------
  await t.test('the API server reconciles its bootstrap RBAC through the webhook and comes up', async (t) => {
    for (const name of DELETED_CLUSTER_ROLES)
      await must(kubectl(['delete', 'clusterrole', name]), `delete ${name}`);
    for (const name of DELETED_CLUSTER_ROLE_BINDINGS) {
      await must(kubectl(['delete', 'clusterrolebinding', name]), `delete ${name}`);
    }
    const adminVersion = resourceVersion(before.get('clusterrole/admin'));
    const started = performance.now();
    await cluster.restartApiServer();
    t.comment(`kube-apiserver ready again in ${Math.round(performance.now() - started)} ms`);
    const readyz = await kubectl(['get', '--raw', '/readyz?verbose']);
    t.match(readyz.stdout, '[+]poststarthook/rbac/bootstrap-roles ok', 'the bootstrap RBAC hook succeeded');

    for (const [key, object] of before) {
      const [kind = '', name = ''] = key.split('/');
      const now = await getObject(kubectl, kind, name);
      t.same(content(now), content(object), `${key} is back, as the bootstrap policy writes it`);
    }
    t.equal(
      resourceVersion(await getObject(kubectl, 'clusterrole', 'admin')),
      adminVersion,
      'an existing bootstrap role is left as it was',
    );

    // It went through Portcullis: each re-created object has its allowed decision in the audit log.
    const events = readFileSync(auditLog, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as AuditEvent);
    const judged = (resource: string, name: string) =>
      events.find(
        (e) =>
          e.verb === 'create' &&
          e.objectRef?.resource === resource &&
          e.objectRef.name === name &&
          e.user?.username === 'system:apiserver',
      );
    for (const name of DELETED_CLUSTER_ROLES) {
      t.equal(
        judged('clusterroles', name)?.annotations?.['portcullis.io/decision'],
        'allow',
        `clusterrole ${name}`,
      );
    }
    for (const name of DELETED_CLUSTER_ROLE_BINDINGS) {
      t.equal(
        judged('clusterrolebindings', name)?.annotations?.['portcullis.io/decision'],
        'allow',
        `clusterrolebinding ${name}`,
      );
    }
    const god = await kubectl(['create', 'clusterrole', 'god', '--verb=*', '--resource=*']);
    t.match(god.stderr, '[no-rbac-privilege]', 'and the webhook still refuses what it refused before');
  });
}

// --- objects and helpers ----------------------------------------------------------------------

interface PolicyRule {
  verbs: string[];
  apiGroups: string[];
  resources: string[];
}
const rule = (verbs: string[], apiGroups: string[], resources: string[]): PolicyRule => ({
  verbs,
  apiGroups,
  resources,
});

function clusterRole(
  name: string,
  rules: PolicyRule[],
  labels?: Record<string, string>,
): Record<string, unknown> {
  return {
    apiVersion: `${RBAC}/v1`,
    kind: 'ClusterRole',
    metadata: { name, ...(labels === undefined ? {} : { labels }) },
    rules,
  };
}

async function getObject(
  kubectl: (args: readonly string[]) => Promise<RunResult>,
  kind: string,
  name: string,
): Promise<unknown> {
  const r = await must(kubectl(['get', kind, name, '-o', 'json']), `get ${kind} ${name}`);
  return JSON.parse(r.stdout);
}

/** What the bootstrap policy writes: labels, annotations, rules, aggregation, roleRef, subjects. */
function content(object: unknown): unknown {
  if (typeof object !== 'object' || object === null) return object;
  const { metadata, rules, aggregationRule, roleRef, subjects } = object as Record<string, unknown>;
  const meta = (metadata ?? {}) as Record<string, unknown>;
  return {
    labels: meta['labels'],
    annotations: meta['annotations'],
    rules,
    aggregationRule,
    roleRef,
    subjects,
  };
}

function resourceVersion(object: unknown): unknown {
  return typeof object === 'object' && object !== null
    ? ((object as { metadata?: { resourceVersion?: unknown } }).metadata?.resourceVersion ?? null)
    : null;
}

interface AuditEvent {
  verb?: string;
  user?: { username?: string };
  objectRef?: { resource?: string; name?: string };
  annotations?: Record<string, string>;
}

// Last: the module-level constants above are initialised by now.
runSuite('RBAC on a real kube-apiserver', suite);
