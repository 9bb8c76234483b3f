// The Helm chart installs what `kubectl apply -k` of manifests/ installs. For each kustomize render
// (the base and its overlays) the chart, given the equivalent values, must render the same objects,
// field for field, but for the four labels Helm charts carry (checked separately). A difference is
// reported as the object and field that differ, so whoever changes manifests/ or charts/portcullis/
// sees what to change in the other. Then each value the chart offers changes exactly the fields it
// should (a table against the default render), and bad values are refused with a message that names
// them.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  CHART_DIR,
  chartRefuses,
  certValues,
  diffRenders,
  equivalentValues,
  findHelm,
  HELM_LABELS,
  helm,
  objectKey,
  renderChart,
  skipWithout,
  withoutHelmLabels,
  type ChartValues,
} from '../helpers/chart.js';
import {
  at,
  isRecord,
  PLACEHOLDER_CERTS,
  renderInScratchTree,
  renderManifests,
  REPO_ROOT,
  stringMap,
  unfoldBase64,
  type KubeObject,
} from '../helpers/manifests.js';

const skip = skipWithout(findHelm());

const HINT =
  'manifests/ and charts/portcullis/templates/ must install the same objects: change both ' +
  '(test/helpers/chart.ts equivalentValues says which values match which overlay)';

/** The kustomize render as the API server would store it: caBundles and Secret data unfolded. */
function kustomize(overlay: string): KubeObject[] {
  const objects = overlay === '' ? renderManifests() : renderInScratchTree(overlay, PLACEHOLDER_CERTS);
  return objects.map(unfoldBase64);
}

function helmLabelsOf(o: KubeObject): Record<string, string> {
  const labels = stringMap(at(o, 'metadata', 'labels'));
  return Object.fromEntries(Object.keys(HELM_LABELS).map((key) => [key, labels[key] ?? '(absent)']));
}

t.test('the chart’s copy of the shipped RuleSet is rules/default.yaml', skip, async (t) => {
  t.equal(
    readFileSync(join(CHART_DIR, 'files/rules.yaml'), 'utf8'),
    readFileSync(join(REPO_ROOT, 'rules/default.yaml'), 'utf8'),
    'a chart may not read files outside its directory: cp rules/default.yaml charts/portcullis/files/rules.yaml',
  );
});

const overlays: { overlay: string; name: string }[] = [
  { overlay: '', name: 'manifests/ (the base: certificate and caBundle brought by you)' },
  { overlay: 'overlays/portcullis-certs', name: 'overlays/portcullis-certs' },
  { overlay: 'overlays/cert-manager', name: 'overlays/cert-manager' },
];

for (const { overlay, name } of overlays) {
  t.test(
    `${name} and the chart with ${JSON.stringify(equivalentValues(overlay, PLACEHOLDER_CERTS))}`,
    skip,
    async (t) => {
      const chart = renderChart(equivalentValues(overlay, PLACEHOLDER_CERTS));
      for (const o of chart) {
        t.same(helmLabelsOf(o), HELM_LABELS, `${objectKey(o)} carries Helm's labels`);
        t.notOk(
          at(o, 'metadata', 'annotations', 'helm.sh/hook'),
          `${objectKey(o)} is no hook: helm uninstall removes it`,
        );
      }
      const differences = diffRenders(kustomize(overlay), chart.map(withoutHelmLabels));
      t.same(differences, [], `${HINT}:\n  ${differences.join('\n  ')}`);
    },
  );
}

t.test(
  'the chart’s default leaves out only the Namespace, which must exist before helm install',
  skip,
  async (t) => {
    const values = equivalentValues('overlays/portcullis-certs', PLACEHOLDER_CERTS);
    const differences = diffRenders(
      kustomize('overlays/portcullis-certs'),
      renderChart({ certificates: values['certificates'] }).map(withoutHelmLabels),
    );
    t.same(differences, ['v1 Namespace portcullis: only in kustomize'], differences.join('\n'));
  },
);

t.test(
  'overlays/local-url and the chart with webhooks.url: the same webhook configurations',
  skip,
  async (t) => {
    const configurations = (objects: KubeObject[]) =>
      objects.filter((o) => o.kind.endsWith('WebhookConfiguration'));
    const differences = diffRenders(
      configurations(kustomize('overlays/local-url')),
      configurations(renderChart(equivalentValues('overlays/local-url', PLACEHOLDER_CERTS))).map(
        withoutHelmLabels,
      ),
    );
    t.same(differences, [], `${HINT}:\n  ${differences.join('\n  ')}`);
  },
);

t.test('an image pinned by digest renders as kustomize’s `images: digest:` does', skip, async (t) => {
  const digest = `sha256:${'0123456789abcdef'.repeat(4)}`;
  const pinned = renderInScratchTree('../pin', PLACEHOLDER_CERTS, {
    'pin/kustomization.yaml': `resources: [../manifests]\nimages:\n  - name: ghcr.io/portcullis/portcullis\n    digest: ${digest}\n`,
  }).map(unfoldBase64);
  const differences = diffRenders(
    pinned,
    renderChart({ ...equivalentValues('', PLACEHOLDER_CERTS), image: { digest } }).map(withoutHelmLabels),
  );
  t.same(differences, [], `${HINT}:\n  ${differences.join('\n  ')}`);
});

t.test(
  'manifests/components/monitoring and the chart’s monitoring values: the same objects',
  skip,
  async (t) => {
    const withMonitoring = renderInScratchTree('../monitored', PLACEHOLDER_CERTS, {
      'monitored/kustomization.yaml':
        'resources: [../manifests/overlays/cert-manager]\ncomponents: [../manifests/components/monitoring]\n',
    }).map(unfoldBase64);
    const chart = renderChart({
      ...equivalentValues('overlays/cert-manager', PLACEHOLDER_CERTS),
      monitoring: {
        serviceMonitor: { enabled: true },
        prometheusRule: { enabled: true },
        grafanaDashboard: { enabled: true },
      },
    });
    const differences = diffRenders(withMonitoring, chart.map(withoutHelmLabels));
    t.same(
      differences,
      [],
      `${HINT} (charts/portcullis/files/portcullis-dashboard.json is a copy of manifests/components/monitoring/portcullis-dashboard.json):\n  ${differences.join('\n  ')}`,
    );
    const kinds = withMonitoring.map((o) => o.kind);
    for (const kind of ['ServiceMonitor', 'PrometheusRule'])
      t.ok(kinds.includes(kind), `the component renders a ${kind}`);
    const dashboard = withMonitoring.find((o) => at(o, 'metadata', 'name') === 'portcullis-dashboard');
    t.equal(
      at(dashboard, 'metadata', 'labels', 'grafana_dashboard'),
      '1',
      'the label Grafana’s sidecar looks for',
    );
  },
);

// --- each value changes what it should, and nothing else ------------------------------------

const BASE_VALUES: ChartValues = { certificates: { source: 'portcullis', ...certValues(PLACEHOLDER_CERTS) } };
const DEPLOYMENT = 'apps/v1 Deployment portcullis/portcullis';
const CONTAINER = `${DEPLOYMENT}: spec.template.spec.containers[0]`;
const VALIDATING = 'admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration portcullis';
const MUTATING = 'admissionregistration.k8s.io/v1 MutatingWebhookConfiguration portcullis';
const ROLE = 'rbac.authorization.k8s.io/v1 Role portcullis/portcullis';
const RULES = 'v1 ConfigMap portcullis/portcullis-rules';
const ALL_WEBHOOKS = [
  `${MUTATING}: webhooks[0]`,
  `${VALIDATING}: webhooks[0]`,
  `${VALIDATING}: webhooks[1]`,
  `${VALIDATING}: webhooks[2]`,
  `${VALIDATING}: webhooks[3]`,
];

const valueCases: { name: string; values: ChartValues; expect: string[] }[] = [
  { name: 'replicas', values: { replicas: 3 }, expect: [`${DEPLOYMENT}: spec.replicas: default 2, set 3`] },
  {
    name: 'resources',
    values: { resources: { requests: { cpu: '250m', memory: '128Mi' }, limits: { memory: '512Mi' } } },
    // Helm merges maps into the defaults: limits.cpu stays (`limits: {cpu: null}` would drop it).
    expect: [
      `${CONTAINER}.resources.limits.memory: default "256Mi", set "512Mi"`,
      `${CONTAINER}.resources.requests.cpu: default "100m", set "250m"`,
    ],
  },
  {
    name: 'image.tag',
    values: { image: { tag: '0.2.0-rc.1' } },
    expect: [
      `${CONTAINER}.image: default "ghcr.io/portcullis/portcullis:0.1.0", set "ghcr.io/portcullis/portcullis:0.2.0-rc.1"`,
    ],
  },
  {
    name: 'image.digest wins over image.tag',
    values: { image: { tag: '9.9.9', digest: `sha256:${'ab'.repeat(32)}` } },
    expect: [
      `${CONTAINER}.image: default "ghcr.io/portcullis/portcullis:0.1.0", set "ghcr.io/portcullis/portcullis@sha256:${'ab'.repeat(32)}"`,
    ],
  },
  {
    name: 'webhooks.failurePolicy',
    values: { webhooks: { failurePolicy: 'Ignore' } },
    expect: ALL_WEBHOOKS.map((w) => `${w}.failurePolicy: default "Fail", set "Ignore"`).sort(),
  },
  {
    name: 'webhooks.timeoutSeconds',
    values: { webhooks: { timeoutSeconds: 10 } },
    expect: ALL_WEBHOOKS.map((w) => `${w}.timeoutSeconds: default 5, set 10`).sort(),
  },
  {
    name: 'webhooks.excludedNamespaces (the rules webhook keeps its own namespace)',
    values: { webhooks: { excludedNamespaces: ['kube-system', 'tigera-operator'] } },
    expect: [
      ...[`${MUTATING}: webhooks[0]`, `${VALIDATING}: webhooks[2]`].map(
        (w) =>
          `${w}.namespaceSelector.matchExpressions[0].values[1]: default (absent), set "tigera-operator"`,
      ),
      // workloads.portcullis.io leaves the release's namespace to workloads-own-namespace, last.
      `${VALIDATING}: webhooks[0].namespaceSelector.matchExpressions[0].values[1]: default "portcullis", set "tigera-operator"`,
      `${VALIDATING}: webhooks[0].namespaceSelector.matchExpressions[0].values[2]: default (absent), set "portcullis"`,
    ],
  },
  {
    name: 'webhooks.excludedNamespaces with the release’s own: its workload webhook goes, no name twice',
    values: { webhooks: { excludedNamespaces: ['kube-system', 'portcullis'] } },
    expect: [
      `${MUTATING}: webhooks[0].namespaceSelector.matchExpressions[0].values[1]: default (absent), set "portcullis"`,
      `${VALIDATING}: webhooks[2].namespaceSelector.matchExpressions[0].values[1]: default (absent), set "portcullis"`,
      `${VALIDATING}: webhooks[3]: default {"name":"workloads-own-namespace.portcullis.io","admissionReviewVersions":["v1"],"sideEffects":"None","timeoutSeconds":5,"failurePolicy":"Fail","matchPolicy":"Equivalent","clientConfig":{"service":{"n…, set (absent)`,
    ],
  },
  {
    name: 'webhooks.enabled=false (the first step of a safe install)',
    values: { webhooks: { enabled: false } },
    expect: [`${MUTATING}: only in default`, `${VALIDATING}: only in default`],
  },
  {
    name: 'rules.inline',
    values: { rules: { inline: 'apiVersion: portcullis.io/v1\nkind: RuleSet\nrules: []\n' } },
    expect: [
      `${RULES}: data["rules.yaml"]: default ${JSON.stringify(readFileSync(join(REPO_ROOT, 'rules/default.yaml'), 'utf8')).slice(0, 200)}…, set "apiVersion: portcullis.io/v1\\nkind: RuleSet\\nrules: []\\n"`,
    ],
  },
  {
    name: 'rules.existingConfigMap: no ConfigMap, and the server, its Role and the rules webhook name it',
    values: { rules: { existingConfigMap: 'team-rules' } },
    expect: [
      `${CONTAINER}.args[2]: default "portcullis/portcullis-rules", set "portcullis/team-rules"`,
      `${ROLE}: rules[0].resourceNames[0]: default "portcullis-rules", set "team-rules"`,
      `${VALIDATING}: webhooks[1].matchConditions[0].expression: default "request.namespace == 'portcullis' && has(request.name) && request.name == 'portcullis-rules'", set "request.namespace == 'portcullis' && has(request.name) && request.name == 'team-rules'"`,
      `${RULES}: only in default`,
    ],
  },
  {
    name: 'audit.webhook with its CA: the flags, and the CA in a ConfigMap mounted read-only',
    values: { audit: { webhook: { url: 'https://audit.example:8443/events', ca: 'PEM' } } },
    expect: [
      `${CONTAINER}.args[11]: default (absent), set "--audit-webhook"`,
      `${CONTAINER}.args[12]: default (absent), set "https://audit.example:8443/events"`,
      `${CONTAINER}.args[13]: default (absent), set "--audit-webhook-ca"`,
      `${CONTAINER}.args[14]: default (absent), set "/etc/portcullis/audit-webhook-ca/ca.crt"`,
      `${CONTAINER}.volumeMounts[2]: default (absent), set {"name":"audit-webhook-ca","mountPath":"/etc/portcullis/audit-webhook-ca","readOnly":true}`,
      `${DEPLOYMENT}: spec.template.spec.volumes[2]: default (absent), set {"name":"audit-webhook-ca","configMap":{"name":"portcullis-audit-webhook-ca"}}`,
      'v1 ConfigMap portcullis/portcullis-audit-webhook-ca: only in set',
    ].sort(),
  },
  {
    name: 'clientCA: --client-ca and each --client-name, the CA in a ConfigMap mounted read-only',
    values: { clientCA: { ca: 'PEM', allowedNames: ['kube-apiserver', 'apiserver.example'] } },
    expect: [
      `${CONTAINER}.args[11]: default (absent), set "--client-ca"`,
      `${CONTAINER}.args[12]: default (absent), set "/etc/portcullis/client-ca/ca.crt"`,
      `${CONTAINER}.args[13]: default (absent), set "--client-name"`,
      `${CONTAINER}.args[14]: default (absent), set "kube-apiserver"`,
      `${CONTAINER}.args[15]: default (absent), set "--client-name"`,
      `${CONTAINER}.args[16]: default (absent), set "apiserver.example"`,
      `${CONTAINER}.volumeMounts[2]: default (absent), set {"name":"client-ca","mountPath":"/etc/portcullis/client-ca","readOnly":true}`,
      `${DEPLOYMENT}: spec.template.spec.volumes[2]: default (absent), set {"name":"client-ca","configMap":{"name":"portcullis-client-ca"}}`,
      'v1 ConfigMap portcullis/portcullis-client-ca: only in set',
    ],
  },
  {
    name: 'audit.file: the flag and a volume for its directory',
    values: { audit: { file: { path: '/var/log/portcullis/audit.log' } } },
    expect: [
      `${CONTAINER}.args[11]: default (absent), set "--audit-log"`,
      `${CONTAINER}.args[12]: default (absent), set "/var/log/portcullis/audit.log"`,
      `${CONTAINER}.volumeMounts[2]: default (absent), set {"name":"audit-log","mountPath":"/var/log/portcullis"}`,
      `${DEPLOYMENT}: spec.template.spec.volumes[2]: default (absent), set {"name":"audit-log","emptyDir":{"sizeLimit":"1Gi"}}`,
    ].sort(),
  },
];

t.test('each value changes exactly the fields it should', skip, async (t) => {
  const defaults = renderChart(BASE_VALUES);
  for (const { name, values, expect } of valueCases) {
    const merged = { ...BASE_VALUES, ...values };
    const differences = diffRenders(defaults, renderChart(merged), ['default', 'set']);
    t.same([...differences].sort(), [...expect].sort(), `${name}:\n  ${differences.join('\n  ')}`);
  }
});

t.test('installed in another namespace, every reference follows it', skip, async (t) => {
  const namespace = 'security';
  const objects = renderChart({ ...BASE_VALUES, namespace: { create: true } }, namespace);
  const namespaces: string[] = [];
  const strings: string[] = [];
  const walk = (value: unknown): void => {
    if (typeof value === 'string') strings.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (isRecord(value)) {
      for (const [key, v] of Object.entries(value)) {
        if (key === 'namespace' && typeof v === 'string') namespaces.push(v);
        walk(v);
      }
    }
  };
  walk(objects);
  t.same([...new Set(namespaces)], [namespace], 'every namespace field');
  // The namespace appears in DNS names (portcullis.security.svc), references (security/portcullis-tls)
  // and CEL literals (request.namespace == 'security'); `portcullis` there would be a leftover.
  t.same(
    strings.filter((s) =>
      /request\.namespace == 'portcullis'|(^|\s)portcullis\/|portcullis\.portcullis/.test(s),
    ),
    [],
    'no reference to the namespace portcullis',
  );
  const expression = String(
    at(
      objects.find((o) => o.kind === 'ValidatingWebhookConfiguration'),
      'webhooks',
      1,
      'matchConditions',
      0,
      'expression',
    ),
  );
  t.equal(
    expression,
    "request.namespace == 'security' && has(request.name) && request.name == 'portcullis-rules'",
  );
  t.equal(
    at(
      objects.find((o) => o.kind === 'Namespace'),
      'metadata',
      'name',
    ),
    namespace,
  );
});

const refusals: { name: string; values: ChartValues; message: string | RegExp }[] = [
  {
    name: 'no certificate files with source portcullis (the default)',
    values: {},
    message:
      'certificates.caCrt is required with certificates.source=portcullis: run `portcullis certs --service portcullis --namespace <namespace> --out DIR`, then --set-file certificates.caCrt=DIR/ca.crt,certificates.tlsCrt=DIR/tls.crt,certificates.tlsKey=DIR/tls.key',
  },
  {
    name: 'a key without its certificate',
    values: { certificates: { caCrt: 'x', tlsKey: 'y' } },
    message: 'certificates.tlsCrt is required with certificates.source=portcullis',
  },
  {
    name: 'an unknown source',
    values: { certificates: { source: 'vault' } },
    message: "at '/certificates/source': value must be one of 'portcullis', 'cert-manager', 'external'",
  },
  {
    name: 'an unknown failurePolicy',
    values: { webhooks: { failurePolicy: 'Never' } },
    message: "at '/webhooks/failurePolicy': value must be one of 'Fail', 'Ignore'",
  },
  {
    name: 'a timeout over the API server’s 30 s',
    values: { webhooks: { timeoutSeconds: 31 } },
    message: "at '/webhooks/timeoutSeconds': maximum: got 31, want 30",
  },
  {
    name: 'replicas as a string',
    values: { replicas: 'two' },
    message: "at '/replicas': got string, want integer",
  },
  {
    name: 'a digest that is not sha256',
    values: { image: { digest: 'sha256:abc' } },
    message: "at '/image/digest'",
  },
  {
    name: 'a misspelt value',
    values: { webhook: { timeoutSeconds: 3 } },
    message: "additional properties 'webhook' not allowed",
  },
  {
    name: 'inline rules and an existing ConfigMap together',
    values: { ...BASE_VALUES, rules: { inline: 'x', existingConfigMap: 'y' } },
    message: 'rules.inline and rules.existingConfigMap are alternatives: set one',
  },
  {
    name: 'a webhook URL with a path',
    values: { ...BASE_VALUES, webhooks: { url: 'https://127.0.0.1:8443/validate' } },
    message:
      'webhooks.url must be an https origin without a path (each webhook adds its own): https://127.0.0.1:8443/validate',
  },
  {
    name: 'client names without a client CA',
    values: { ...BASE_VALUES, clientCA: { allowedNames: ['kube-apiserver'] } },
    message: 'clientCA.allowedNames goes with clientCA.ca',
  },
  {
    name: 'an audit CA without an audit webhook',
    values: { ...BASE_VALUES, audit: { webhook: { ca: 'PEM' } } },
    message: 'audit.webhook.ca goes with audit.webhook.url',
  },
];

t.test('bad values are refused, naming the value', skip, async (t) => {
  for (const { name, values, message } of refusals) {
    const stderr = chartRefuses(values);
    if (typeof message === 'string') t.ok(stderr.includes(message), `${name}: ${stderr}`);
    else t.match(stderr, message, name);
  }
});

t.test('helm lint --strict is clean for each certificate source', skip, async (t) => {
  for (const values of [
    BASE_VALUES,
    { certificates: { source: 'cert-manager' } },
    { certificates: { source: 'external' } },
  ]) {
    const result = helm(['lint', '--strict', CHART_DIR], values);
    t.equal(result.status, 0, `${JSON.stringify(values)}:\n${result.stdout}${result.stderr}`);
    t.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  }
});
