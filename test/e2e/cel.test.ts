// `cel` rules against the API server's own ValidatingAdmissionPolicy, on a real kube-apiserver
// (v1.34, VAP GA): the same policies are installed as VAPs with bindings (in namespace `vap`) and as
// Portcullis rules (in namespace `pc`, through the shipped webhook configuration pointed at a local
// `portcullis serve --webhook-configuration`), the same objects are sent to both with
// `kubectl create --dry-run=server`, and the verdicts must be the same, and the messages too where
// the policy sets one. Then a cel rule for a kind the webhook did not send before is added to the
// rules ConfigMap and must be enforced within 2 s of the edit, with the webhook's rules following.

import { performance } from 'node:perf_hooks';
import { type Test } from 'tap';
import { isRecord } from '../helpers/webhooks.js';
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
import { toYaml } from './webhooks.js';

const RELOAD_BUDGET_MS = 2_000;

interface Policy {
  name: string;
  spec: Record<string, unknown>;
  /** The object a VAP binding's paramRef names (a ConfigMap in the policy's namespace). */
  params?: Record<string, string>;
}

const rule = (group: string, resources: string[]) => ({
  apiGroups: [group],
  apiVersions: ['v1'],
  operations: ['CREATE', 'UPDATE'],
  resources,
});

const POLICIES: Policy[] = [
  {
    name: 'owner-label',
    spec: {
      matchConstraints: { resourceRules: [rule('apps', ['deployments'])] },
      matchConditions: [
        { name: 'not-system', expression: "!request.userInfo.username.startsWith('system:')" },
      ],
      variables: [{ name: 'labels', expression: 'object.metadata.?labels.orValue({})' }],
      validations: [
        {
          expression: "'owner' in variables.labels",
          messageExpression: "'Deployment ' + object.metadata.name + ' has no owner label'",
          reason: 'Invalid',
        },
      ],
      auditAnnotations: [{ key: 'owner', valueExpression: "variables.labels[?'owner'].orValue('none')" }],
    },
  },
  {
    name: 'max-replicas',
    params: { maxReplicas: '3' },
    spec: {
      paramKind: { apiVersion: 'v1', kind: 'ConfigMap' },
      matchConstraints: { resourceRules: [rule('apps', ['deployments'])] },
      validations: [
        {
          expression: 'object.spec.replicas <= int(params.data.maxReplicas)',
          messageExpression:
            "'replicas must be at most ' + params.data.maxReplicas + ', not ' + string(object.spec.replicas)",
        },
      ],
    },
  },
  {
    name: 'no-load-balancer',
    spec: {
      matchConstraints: { resourceRules: [rule('', ['services'])] },
      validations: [
        {
          expression: "object.spec.type != 'LoadBalancer'",
          message: 'no LoadBalancer Services here',
          reason: 'Forbidden',
        },
        {
          expression: 'object.spec.ports.all(p, p.port >= 1024 || p.port == 80 || p.port == 443)',
          messageExpression:
            "'privileged ports: ' + object.spec.ports.filter(p, p.port < 1024).map(p, string(p.port)).join(', ')",
        },
      ],
    },
  },
  {
    name: 'pinned-images',
    spec: {
      matchConstraints: { resourceRules: [rule('', ['pods'])] },
      // No message: both answer "failed expression: …".
      validations: [
        { expression: "object.spec.containers.all(c, c.image.matches('@sha256:[0-9a-f]{64}$'))" },
      ],
    },
  },
  {
    name: 'configmap-values',
    spec: {
      matchConstraints: { resourceRules: [rule('', ['configmaps'])] },
      matchConditions: [
        { name: 'checked', expression: "object.metadata.?labels.?checked.orValue('') == 'yes'" },
      ],
      variables: [{ name: 'data', expression: 'object.?data.orValue({})' }],
      validations: [
        {
          expression:
            "!('cidr' in variables.data) || (isCIDR(variables.data.cidr) && cidr(variables.data.cidr).prefixLength() >= 16)",
          messageExpression: "'cidr ' + variables.data.cidr + ' is not a /16 or narrower'",
        },
        {
          expression:
            "!('memory' in variables.data) || (isQuantity(variables.data.memory) && quantity(variables.data.memory).isLessThan(quantity('1Gi')))",
          message: 'memory must be a quantity below 1Gi',
        },
        {
          expression:
            "!('endpoint' in variables.data) || (isURL(variables.data.endpoint) && url(variables.data.endpoint).getScheme() == 'https')",
          message: 'endpoint must be an https URL',
        },
        {
          expression: "variables.data.all(k, v, k.matches('^[a-z]+$') && v.size() < 64)",
          messageExpression: "'bad keys: ' + variables.data.filter(k, !k.matches('^[a-z]+$')).join(', ')",
        },
        {
          expression:
            "!('name' in variables.data) || !format.dns1123Label().validate(variables.data.name).hasValue()",
          messageExpression:
            "'name: ' + format.dns1123Label().validate(variables.data.name).value().join('; ')",
        },
        {
          expression: "'%s=%d'.format(['n', size(variables.data)]).startsWith('n=') && [3, 1, 2].max() == 3",
          message: 'string.format or lists differ',
        },
      ],
    },
  },
  {
    // JSON keys named like JS object properties are plain map keys to CEL (Portcullis reads JSON
    // lazily through Maps, so `__proto__` stays a key and `constructor` a field).
    name: 'prototype-keys',
    spec: {
      matchConstraints: { resourceRules: [rule('', ['configmaps'])] },
      matchConditions: [
        { name: 'protokeys', expression: "object.metadata.?labels.?protokeys.orValue('') == 'yes'" },
      ],
      validations: [
        {
          expression: "!('__proto__' in object.data) || object.data['__proto__'] == 'fine'",
          message: '__proto__ must be fine',
        },
        {
          expression: "!('constructor' in object.data) || object.data.constructor.startsWith('ok')",
          messageExpression: "'constructor is ' + object.data.constructor",
        },
        { expression: "object.data[?'toString'].orValue('') != 'bad'", message: 'toString must not be bad' },
        {
          expression: "object.data.all(k, object.data[k] != 'forbidden')",
          messageExpression:
            "'forbidden: ' + object.data.filter(k, object.data[k] == 'forbidden').join(', ')",
        },
        {
          expression: "!('valueOf' in object.data) && size(object.data) <= 3",
          message: 'no valueOf, at most 3 keys',
        },
      ],
    },
  },
];

interface Case {
  name: string;
  object: (ns: string) => Record<string, unknown>;
}

const deployment = (labels: Record<string, string> | undefined, replicas: number) => (ns: string) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: ns, ...(labels === undefined ? {} : { labels }) },
  spec: {
    replicas,
    selector: { matchLabels: { app: 'web' } },
    template: {
      metadata: { labels: { app: 'web' } },
      spec: { containers: [{ name: 'app', image: 'nginx' }] },
    },
  },
});
const service = (type: string, ports: number[]) => (ns: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'svc', namespace: ns },
  spec: { type, selector: { app: 'web' }, ports: ports.map((port) => ({ name: `p${port}`, port })) },
});
const pod = (images: string[]) => (ns: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', namespace: ns },
  spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })) },
});
const configMap =
  (data: Record<string, string>, checked = 'yes') =>
  (ns: string) => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'cm', namespace: ns, labels: { checked } },
    data,
  });
// From JSON, as the API server sends it: an object literal would take `__proto__` for its prototype.
const protoKeys = (json: string) => (ns: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'cm', namespace: ns, labels: { protokeys: 'yes' } },
  data: JSON.parse(json) as Record<string, string>,
});
const DIGEST = `@sha256:${'a'.repeat(64)}`;

const CASES: Case[] = [
  { name: 'deployment with owner and 2 replicas', object: deployment({ owner: 'team-a' }, 2) },
  { name: 'deployment without labels', object: deployment(undefined, 2) },
  { name: 'deployment with other labels', object: deployment({ app: 'web' }, 1) },
  { name: 'deployment with owner, 5 replicas', object: deployment({ owner: 'team-a' }, 5) },
  { name: 'ClusterIP service on 8080', object: service('ClusterIP', [8080]) },
  { name: 'LoadBalancer service', object: service('LoadBalancer', [8080]) },
  { name: 'service on 22 and 25', object: service('ClusterIP', [22, 25, 8080]) },
  { name: 'service on 80 and 443', object: service('NodePort', [80, 443]) },
  { name: 'pod pinned by digest', object: pod([`ghcr.io/acme/app${DIGEST}`]) },
  { name: 'pod with a tag', object: pod([`ghcr.io/acme/app${DIGEST}`, 'nginx:1.27']) },
  { name: 'configmap unchecked (matchCondition false)', object: configMap({ cidr: 'nope' }, 'no') },
  {
    name: 'configmap good',
    object: configMap({ cidr: '10.1.0.0/16', memory: '512Mi', endpoint: 'https://x.example/a', name: 'ok' }),
  },
  { name: 'configmap wide cidr', object: configMap({ cidr: '10.0.0.0/8' }) },
  { name: 'configmap bad cidr', object: configMap({ cidr: '10.0.0.0/33' }) },
  { name: 'configmap memory too high', object: configMap({ memory: '2Gi' }) },
  { name: 'configmap memory not a quantity', object: configMap({ memory: 'lots' }) },
  { name: 'configmap http endpoint', object: configMap({ endpoint: 'http://x.example/' }) },
  // One bad key: Go iterates a map in random order, so two would come out in either order.
  { name: 'configmap bad key', object: configMap({ good: 'y', 'with-dash': 'z' }) },
  { name: 'configmap bad name', object: configMap({ name: 'Not_A_Label' }) },
  {
    name: 'configmap keys __proto__, constructor, toString',
    object: protoKeys('{"__proto__":"fine","constructor":"ok-1","toString":"t"}'),
  },
  { name: 'configmap key __proto__ denied', object: protoKeys('{"__proto__":"evil"}') },
  { name: 'configmap key constructor denied', object: protoKeys('{"constructor":"nope"}') },
  { name: 'configmap key toString denied', object: protoKeys('{"toString":"bad"}') },
  { name: 'configmap key hasOwnProperty forbidden', object: protoKeys('{"hasOwnProperty":"forbidden"}') },
  { name: 'configmap key valueOf denied', object: protoKeys('{"valueOf":"x"}') },
];

/** The policy's own message from either error text, without the API server's or Portcullis' framing. */
function verdictOf(result: RunResult): { allowed: boolean; message?: string } {
  if (result.code === 0) return { allowed: true };
  const text = result.stderr.trim();
  const vap = /ValidatingAdmissionPolicy '[^']*' with binding '[^']*' denied request: (.*)$/m.exec(text);
  if (vap !== null) return { allowed: false, message: vap[1] ?? '' };
  const webhook =
    /admission webhook "[a-z-]+\.portcullis\.io" denied the request: (.*?) \[[a-z0-9-]+\]$/m.exec(text);
  if (webhook !== null) return { allowed: false, message: webhook[1] ?? '' };
  return { allowed: false, message: `unrecognised refusal: ${text}` };
}

async function suite(t: Test, binaries: Binaries): Promise<void> {
  const e2e = await startCluster(t, binaries, { name: 'cel' });
  const { cluster, kubectl } = e2e;

  // --- the RuleSet: the policies as cel rules, scoped to namespace pc ------------------------
  const ruleSet = (extra: unknown[] = []) => ({
    apiVersion: 'portcullis.io/v1',
    kind: 'RuleSet',
    exemptions: { namespaces: ['kube-system'] },
    rules: [
      ...POLICIES.map((p) => ({
        name: p.name,
        check: 'cel',
        namespaces: ['pc'],
        params: { ...p.spec, ...(p.params === undefined ? {} : { paramsObject: { data: p.params } }) },
      })),
      ...extra,
    ],
  });
  // What ships but the Deployment and the webhooks, the rules ConfigMap with these rules instead.
  const shipped = shippedManifests();
  await applyShippedManifests(e2e, shipped, ruleSet());
  for (const ns of ['vap', 'pc']) await must(kubectl(['create', 'namespace', ns]), `namespace ${ns}`);

  // --- the same policies as VAPs, bound in namespace vap -------------------------------------
  const vaps: unknown[] = [];
  for (const p of POLICIES) {
    vaps.push({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: p.name },
      spec: { failurePolicy: 'Fail', ...p.spec },
    });
    if (p.params !== undefined) {
      vaps.push({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `${p.name}-params`, namespace: 'vap' },
        data: p.params,
      });
    }
    vaps.push({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: p.name },
      spec: {
        policyName: p.name,
        validationActions: ['Deny'],
        matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'vap' } } },
        ...(p.params === undefined
          ? {}
          : { paramRef: { name: `${p.name}-params`, namespace: 'vap', parameterNotFoundAction: 'Deny' } }),
      },
    });
  }
  await must(kubectl(['apply', '-f', '-'], toYaml(vaps)), 'apply the VAPs and bindings');

  // --- Portcullis, as its ServiceAccount, following the ConfigMap and its webhook configuration
  // (registered first: serve keeps the one it is named in step with the cel rules).
  const validating = shipped.objects.find((o) => o.kind === 'ValidatingWebhookConfiguration');
  const validatingName = isRecord(validating?.['metadata']) ? String(validating['metadata']['name']) : '';
  await startPortcullis(e2e, { webhooks: 'before', extraArgs: ['--webhook-configuration', validatingName] });

  const webhookRules = async (): Promise<string[]> => {
    const got = await cluster.api(
      'GET',
      `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${validatingName}`,
    );
    const config = JSON.parse(got.body) as {
      webhooks?: { name: string; rules?: { resources?: string[] }[] }[];
    };
    const webhook = config.webhooks?.find((w) => w.name === 'custom.portcullis.io');
    return (webhook?.rules ?? []).flatMap((r) => r.resources ?? []).sort();
  };
  const synced = await poll(async () => ((await webhookRules()).length === 4 ? true : undefined), 10_000);
  t.ok(synced, 'serve set custom.portcullis.io to send what the cel rules judge');
  t.same(await webhookRules(), ['configmaps', 'deployments', 'pods', 'services']);

  // VAPs take effect once the API server's policy informer has them: wait for a known denial.
  const create = (object: Record<string, unknown>) =>
    kubectl(['create', '--dry-run=server', '-f', '-'], JSON.stringify(object));
  const vapReady = await poll(
    async () => (verdictOf(await create(service('LoadBalancer', [8080])('vap'))).allowed ? undefined : true),
    20_000,
  );
  t.ok(vapReady, 'the VAPs are in force');
  const pcReady = await poll(
    async () => (verdictOf(await create(service('LoadBalancer', [8080])('pc'))).allowed ? undefined : true),
    20_000,
  );
  t.ok(pcReady, 'the Portcullis rules are in force');

  // --- the differential ----------------------------------------------------------------------
  let denials = 0;
  for (const c of CASES) {
    const [byVap, byPortcullis] = await Promise.all([create(c.object('vap')), create(c.object('pc'))]);
    const vap = verdictOf(byVap);
    const portcullis = verdictOf(byPortcullis);
    if (!vap.allowed) denials++;
    t.same(portcullis, vap, `${c.name}: ${vap.allowed ? 'allowed' : `denied: ${vap.message ?? ''}`}`);
  }
  t.ok(
    denials >= 10 && denials < CASES.length,
    `${denials} of ${CASES.length} cases denied: both verdicts are exercised`,
  );

  // --- a rule for a kind the webhook did not send: enforced within 2 s of the edit -----------
  const serviceAccount = {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'robot', namespace: 'pc', annotations: { 'example.com/token': 'long-lived' } },
  };
  t.equal(
    (await create(serviceAccount)).code,
    0,
    'before the edit: ServiceAccounts are not sent, so admitted',
  );
  const noLongLived = {
    name: 'no-long-lived-tokens',
    check: 'cel',
    params: {
      matchConstraints: { resourceRules: [rule('', ['serviceaccounts'])] },
      validations: [
        {
          expression: "object.metadata.?annotations[?'example.com/token'].orValue('') != 'long-lived'",
          message: 'long-lived tokens are not allowed',
        },
      ],
    },
  };
  const edited = shipped.rulesConfigMap(ruleSet([noLongLived]));
  const replaced = await cluster.api(
    'PUT',
    '/api/v1/namespaces/portcullis/configmaps/portcullis-rules',
    edited,
  );
  t.equal(replaced.status, 200, 'the rules ConfigMap edit is accepted');
  const accepted = performance.now();
  const serviceAccountPath = '/api/v1/namespaces/pc/serviceaccounts?dryRun=All';
  const enforced = await poll(
    async () => {
      const res = await cluster.api('POST', serviceAccountPath, serviceAccount);
      return res.status === 201 ? undefined : res;
    },
    10_000,
    20,
  );
  const elapsed = performance.now() - accepted;
  t.ok(
    enforced !== undefined && elapsed < RELOAD_BUDGET_MS,
    `enforced ${elapsed.toFixed(0)} ms after the edit (budget ${RELOAD_BUDGET_MS} ms)`,
  );
  t.match(
    enforced?.body ?? '',
    /long-lived tokens are not allowed \[no-long-lived-tokens\]/,
    'with the rule message',
  );
  t.same(
    await webhookRules(),
    ['configmaps', 'deployments', 'pods', 'serviceaccounts', 'services'],
    'the webhook rules followed',
  );
}

runSuite('cel rules and ValidatingAdmissionPolicy on a real kube-apiserver', suite);
