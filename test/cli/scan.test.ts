// `portcullis scan` without a cluster: which kinds a RuleSet makes it list, where, and the
// PolicyReports it prints. Listing, paging and RBAC errors run on a real API server in
// test/e2e/impact.test.ts.

import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { kindsJudgedBy, resourceLabel } from '../../src/admission/kinds.js';
import { formatPolicyReports } from '../../src/cli/policy-report.js';
import { judgeListed } from '../../src/cli/scan.js';
import { listPath } from '../../src/config/cluster-objects.js';
import { POD_TEMPLATE_KINDS } from '../../src/core/index.js';
import { ruleSet } from '../helpers/rules.js';

const NOW = new Date('2026-12-01T10:00:00.750Z');
const POD_KINDS = [
  'pods',
  'podtemplates',
  'replicationcontrollers',
  'deployments.apps',
  'daemonsets.apps',
  'statefulsets.apps',
  'replicasets.apps',
  'jobs.batch',
  'cronjobs.batch',
];
const BINDING_KINDS = [
  'rolebindings.rbac.authorization.k8s.io',
  'clusterrolebindings.rbac.authorization.k8s.io',
];

t.test('the kinds listed are those the rules judge', async (t) => {
  const label = (rules: unknown[]) => kindsJudgedBy(ruleSet(rules)).map(resourceLabel);
  t.same(
    label([
      { name: 'p', check: 'privileged' },
      { name: 's', check: 'seccomp' },
    ]),
    POD_KINDS,
  );
  t.same(label([{ name: 'b', check: 'clusterAdminBinding' }]), BINDING_KINDS);
  t.same(
    label([
      { name: 'b', check: 'clusterAdminBinding' },
      { name: 'h', check: 'hostPath' },
    ]),
    [...POD_KINDS, ...BINDING_KINDS],
  );
  // Every kind the core's pod target reads has a resource to list (a missing one would never be scanned).
  t.same(
    kindsJudgedBy(ruleSet([{ name: 'p', check: 'privileged' }])).map((r) => `${r.group}/${r.kind}`),
    POD_TEMPLATE_KINDS,
  );
  const crb = kindsJudgedBy(ruleSet([{ name: 'b', check: 'clusterAdminBinding' }]))[1];
  t.equal(crb?.namespaced, false);
});

t.test('list paths, namespaced and not', async (t) => {
  const [pods, deployments] = kindsJudgedBy(ruleSet([{ name: 'p', check: 'privileged' }])).filter((r) =>
    ['pods', 'deployments'].includes(r.resource),
  );
  const [, crb] = kindsJudgedBy(ruleSet([{ name: 'b', check: 'clusterAdminBinding' }]));
  if (pods === undefined || deployments === undefined || crb === undefined) throw new Error('kinds missing');
  t.equal(listPath(pods, undefined), '/api/v1/pods');
  t.equal(listPath(pods, 'shop'), '/api/v1/namespaces/shop/pods');
  t.equal(listPath(deployments, 'a b'), '/apis/apps/v1/namespaces/a%20b/deployments');
  t.equal(
    listPath(crb, 'shop'),
    '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
    'cluster-scoped: no namespace',
  );
});

t.test('PolicyReports: per namespace, a ClusterPolicyReport, one result per object and rule', async (t) => {
  const ruleset = ruleSet(
    [
      { name: 'no-privileged', check: 'privileged' },
      {
        name: 'trusted',
        check: 'trustedRegistries',
        action: 'warn',
        params: { registries: ['registry.k8s.io'] },
      },
      { name: 'no-cluster-admin', check: 'clusterAdminBinding' },
    ],
    { namespaces: ['kube-system'] },
  );
  const [pods] = kindsJudgedBy(ruleset);
  const crbs = kindsJudgedBy(ruleset).find((r) => r.kind === 'ClusterRoleBinding');
  if (pods === undefined || crbs === undefined) throw new Error('kinds missing');
  const pod = (name: string, namespace: string, container: Record<string, unknown>) =>
    judgeListed(
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace, uid: `uid-${name}` },
        spec: { containers: [{ name: 'app', ...container }] },
      },
      pods,
      ruleset,
      NOW,
    );
  const results = [
    pod('good', 'shop', { image: 'registry.k8s.io/pause' }),
    pod('bad', 'shop', { image: 'docker.io/x', securityContext: { privileged: true } }),
    pod('broken', 'shop', { image: 7 }),
    pod('agent', 'kube-system', { securityContext: { privileged: true } }),
    judgeListed(
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'carol' },
        roleRef: { kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'User', name: 'carol' }],
      },
      crbs,
      ruleset,
      NOW,
    ),
  ];
  const text = formatPolicyReports(results, ruleset, NOW);
  const docs = parseAllDocuments(text).map((d) => d.toJS() as Record<string, unknown>);
  const timestamp = { seconds: 1796119200, nanos: 0 };
  const resource = (name: string, namespace?: string) => ({
    apiVersion: namespace === undefined ? 'rbac.authorization.k8s.io/v1' : 'v1',
    kind: namespace === undefined ? 'ClusterRoleBinding' : 'Pod',
    name,
    ...(namespace === undefined ? {} : { namespace, uid: `uid-${name}` }),
  });
  const result = (
    policy: string,
    rule: string,
    status: string,
    name: string,
    namespace?: string,
    extra = {},
  ) => ({
    source: 'portcullis',
    scored: true,
    timestamp,
    resources: [resource(name, namespace)],
    policy,
    rule,
    result: status,
    ...extra,
  });
  t.same(docs, [
    {
      apiVersion: 'wgpolicyk8s.io/v1alpha2',
      kind: 'ClusterPolicyReport',
      metadata: { name: 'portcullis-scan', labels: { 'app.kubernetes.io/managed-by': 'portcullis' } },
      summary: { pass: 0, fail: 1, warn: 0, error: 0, skip: 0 },
      results: [
        result('no-cluster-admin', 'clusterAdminBinding', 'fail', 'carol', undefined, {
          severity: 'high',
          message: 'ClusterRoleBinding must not grant ClusterRole "cluster-admin" to User "carol"',
          properties: { action: 'deny', fields: 'subjects[0]' },
        }),
      ],
    },
    {
      apiVersion: 'wgpolicyk8s.io/v1alpha2',
      kind: 'PolicyReport',
      metadata: {
        name: 'portcullis-scan',
        namespace: 'kube-system',
        labels: { 'app.kubernetes.io/managed-by': 'portcullis' },
      },
      summary: { pass: 0, fail: 0, warn: 0, error: 0, skip: 2 },
      results: ['no-privileged', 'trusted'].map((policy) =>
        result(
          policy,
          policy === 'trusted' ? 'trustedRegistries' : 'privileged',
          'skip',
          'agent',
          'kube-system',
          {
            message: 'namespace "kube-system" matches exemptions.namespaces',
          },
        ),
      ),
    },
    {
      apiVersion: 'wgpolicyk8s.io/v1alpha2',
      kind: 'PolicyReport',
      metadata: {
        name: 'portcullis-scan',
        namespace: 'shop',
        labels: { 'app.kubernetes.io/managed-by': 'portcullis' },
      },
      summary: { pass: 2, fail: 1, warn: 1, error: 1, skip: 0 },
      results: [
        result('no-privileged', 'privileged', 'pass', 'good', 'shop'),
        result('trusted', 'trustedRegistries', 'pass', 'good', 'shop'),
        result('no-privileged', 'privileged', 'fail', 'bad', 'shop', {
          severity: 'high',
          message: 'container "app": securityContext.privileged must not be true',
          properties: { action: 'deny', fields: 'spec.containers[0].securityContext.privileged' },
        }),
        result('trusted', 'trustedRegistries', 'warn', 'bad', 'shop', {
          severity: 'medium',
          message:
            'container "app": image "docker.io/x" (docker.io/library/x) is not from a trusted registry',
          properties: { action: 'warn', fields: 'spec.containers[0].image' },
        }),
        result('malformed-object', 'malformed-object', 'error', 'broken', 'shop', {
          message: 'object is malformed: spec.containers[0].image must be a string, not a number',
          properties: { field: 'spec.containers[0].image' },
        }),
      ],
    },
  ]);
});
