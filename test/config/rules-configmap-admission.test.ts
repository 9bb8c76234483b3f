// Portcullis judging edits to its own rules ConfigMap, through AdmissionReviews shaped as the API
// server sends them for `kubectl apply` / `kubectl edit` (parsed by the webhook's own parser).

import t from 'tap';
import { parseAdmissionReview } from '../../src/admission/review.js';
import { judgeRulesConfigMap, RULES_CONFIGMAP_RULE } from '../../src/config/rules-configmap-admission.js';
import { parseConfigMapRef } from '../../src/config/rules-configmap.js';
import { denyMessage, type AdmissionRequest } from '../../src/core/index.js';
import { BROKEN_RULES_ERROR, brokenRulesText, rulesText } from '../helpers/ruleset-recorder.js';

const ref = { namespace: 'portcullis', name: 'portcullis-rules' };
const ORIGIN = 'configmap portcullis/portcullis-rules rules.yaml';

function configMap(data: Record<string, string> | undefined, extra: Record<string, unknown> = {}) {
  return {
    kind: 'ConfigMap',
    apiVersion: 'v1',
    metadata: {
      name: 'portcullis-rules',
      namespace: 'portcullis',
      uid: '0d6c4b2e-5a4e-4d3b-9a51-3f1c2e9b7a10',
      resourceVersion: '4711',
      creationTimestamp: '2026-11-23T10:00:00Z',
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
      managedFields: [
        {
          manager: 'kubectl-client-side-apply',
          operation: 'Update',
          apiVersion: 'v1',
          time: '2026-11-23T10:00:00Z',
          fieldsType: 'FieldsV1',
          fieldsV1: { 'f:data': { '.': {}, 'f:rules.yaml': {} } },
        },
      ],
      ...extra,
    },
    ...(data === undefined ? {} : { data }),
  };
}

interface Options {
  operation?: 'CREATE' | 'UPDATE' | 'DELETE';
  namespace?: string;
  name?: string;
  resource?: string;
  group?: string;
  oldObject?: unknown;
  dryRun?: boolean;
}

/** An admission.k8s.io/v1 AdmissionReview as the API server posts it, through the webhook's parser. */
function review(object: unknown, o: Options = {}): AdmissionRequest {
  const resource = o.resource ?? 'configmaps';
  const group = o.group ?? '';
  const kind = resource === 'configmaps' ? 'ConfigMap' : 'Secret';
  const body: unknown = JSON.parse(
    JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'b2a5e3c8-7f1d-4c2a-9e6b-1d0f8a7c3e21',
        kind: { group, version: 'v1', kind },
        resource: { group, version: 'v1', resource },
        requestKind: { group, version: 'v1', kind },
        requestResource: { group, version: 'v1', resource },
        name: o.name ?? 'portcullis-rules',
        namespace: o.namespace ?? 'portcullis',
        operation: o.operation ?? 'UPDATE',
        userInfo: { username: 'alice@example.com', groups: ['security-team', 'system:authenticated'] },
        object: o.operation === 'DELETE' ? null : object,
        oldObject:
          o.operation === 'CREATE' ? null : (o.oldObject ?? configMap({ 'rules.yaml': rulesText('old') })),
        dryRun: o.dryRun ?? false,
        options: {
          kind: o.operation === 'CREATE' ? 'CreateOptions' : 'UpdateOptions',
          apiVersion: 'meta.k8s.io/v1',
          fieldManager: 'kubectl-client-side-apply',
          fieldValidation: 'Strict',
        },
      },
    }),
  );
  const parsed = parseAdmissionReview(body);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.review.request;
}

const denied = (errors: string[]) => ({
  allowed: false,
  message: errors.map((e) => `${e} [${RULES_CONFIGMAP_RULE}]`).join('; '),
  messages: errors,
});

const cases: {
  name: string;
  request: AdmissionRequest;
  expect: undefined | { allowed: boolean; message?: string; messages: string[]; skipped?: boolean };
}[] = [
  {
    name: 'kubectl apply of a valid RuleSet',
    request: review(configMap({ 'rules.yaml': rulesText('new') })),
    expect: { allowed: true, messages: [] },
  },
  {
    name: 'kubectl create of a valid RuleSet',
    request: review(configMap({ 'rules.yaml': rulesText('new') }), { operation: 'CREATE' }),
    expect: { allowed: true, messages: [] },
  },
  {
    name: 'kubectl apply of an invalid RuleSet',
    request: review(configMap({ 'rules.yaml': brokenRulesText() })),
    expect: denied([`${ORIGIN}:9: ${BROKEN_RULES_ERROR}`]),
  },
  {
    name: 'server-side dry run is judged alike',
    request: review(configMap({ 'rules.yaml': brokenRulesText() }), { dryRun: true }),
    expect: denied([`${ORIGIN}:9: ${BROKEN_RULES_ERROR}`]),
  },
  {
    name: 'a YAML syntax error names line and column',
    request: review(configMap({ 'rules.yaml': 'apiVersion: portcullis.io/v1\nrules: [\n' }), {
      operation: 'CREATE',
    }),
    expect: denied([
      `${ORIGIN}:3:1: Flow sequence in block collection must be sufficiently indented and end with a ]`,
    ]),
  },
  {
    name: 'several errors are all cited',
    request: review(configMap({ 'rules.yaml': 'apiVersion: portcullis.io/v2\nkind: RuleSet\nrules: []\n' })),
    expect: denied([
      `${ORIGIN}:1: apiVersion: must be "portcullis.io/v1"`,
      `${ORIGIN}:3: rules: must NOT have fewer than 1 items`,
    ]),
  },
  {
    name: 'rules.yaml missing from data',
    request: review(configMap({ 'other.yaml': 'x' })),
    expect: denied([`${ORIGIN}: missing: the ConfigMap has no data["rules.yaml"]`]),
  },
  {
    name: 'rules.yaml only in binaryData',
    request: review({ ...configMap(undefined), binaryData: { 'rules.yaml': 'AAEC' } }),
    expect: denied([
      `${ORIGIN}: missing: it is in binaryData, which is not read: the RuleSet must be UTF-8 text in data`,
    ]),
  },
  {
    name: 'CREATE that names the ConfigMap only in metadata',
    request: review(configMap({ 'rules.yaml': brokenRulesText() }), { operation: 'CREATE', name: '' }),
    expect: denied([`${ORIGIN}:9: ${BROKEN_RULES_ERROR}`]),
  },
  {
    name: 'a label edit that leaves an already stored broken rules.yaml alone',
    request: review(configMap({ 'rules.yaml': brokenRulesText() }, { labels: { team: 'sec' } }), {
      oldObject: configMap({ 'rules.yaml': brokenRulesText() }),
    }),
    expect: { allowed: true, messages: [], skipped: true },
  },
  { name: 'DELETE is not judged', request: review(undefined, { operation: 'DELETE' }), expect: undefined },
  {
    name: 'another ConfigMap in the same namespace (distractor)',
    request: review(configMap({ 'rules.yaml': brokenRulesText() }, { name: 'other' }), { name: 'other' }),
    expect: undefined,
  },
  {
    name: 'a ConfigMap of the same name in another namespace (distractor)',
    request: review(configMap({ 'rules.yaml': brokenRulesText() }, { namespace: 'default' }), {
      namespace: 'default',
    }),
    expect: undefined,
  },
  {
    name: 'a Secret of the same name (distractor)',
    request: review(
      { kind: 'Secret', apiVersion: 'v1', metadata: { name: 'portcullis-rules' } },
      { resource: 'secrets' },
    ),
    expect: undefined,
  },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const decision = judgeRulesConfigMap(c.request, ref);
    if (c.expect === undefined) {
      t.equal(decision, undefined, 'not for the rules ConfigMap: left to the rules');
      return;
    }
    t.ok(decision !== undefined);
    if (decision === undefined) return;
    t.equal(decision.allowed, c.expect.allowed);
    t.same(
      decision.violations.map((v) => v.message),
      c.expect.messages,
      'the exact parseRuleSet errors',
    );
    t.equal(denyMessage(decision), c.expect.message, 'what kubectl prints after "denied the request:"');
    t.equal(decision.skipped !== undefined, c.expect.skipped ?? false);
    for (const v of decision.violations) t.same(v.path, ['data', 'rules.yaml']);
  });
}

t.test('parseConfigMapRef', async (t) => {
  t.same(parseConfigMapRef('portcullis/portcullis-rules'), { ok: true, ref });
  t.same(parseConfigMapRef('portcullis-rules'), {
    ok: false,
    error: '"portcullis-rules" is not NAMESPACE/NAME',
  });
  t.same(parseConfigMapRef('a/b/c'), { ok: false, error: '"a/b/c" is not NAMESPACE/NAME' });
  t.same(parseConfigMapRef('Portcullis/rules'), {
    ok: false,
    error: '"Portcullis" is not a valid namespace name',
  });
  t.same(parseConfigMapRef('portcullis/'), { ok: false, error: '"" is not a valid ConfigMap name' });
  t.same(parseConfigMapRef('ns/rules.v2'), { ok: true, ref: { namespace: 'ns', name: 'rules.v2' } });
});
