// `portcullis check` with `cel` rules: the object as the API server would show it to admission
// (its namespace set, its kind mapped to its resource, custom kinds from CRDs in the input, the
// Namespace objects of the input as namespaceObject), and the warning for kinds the shipped
// webhooks do not send.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import t from 'tap';
import { stringify } from 'yaml';
import { runCheck } from '../../src/cli/check.js';
import { SHIPPED_STATIC_WEBHOOK_RULES } from '../../src/config/shipped-webhooks.js';
import { at, only, records } from '../helpers/manifests.js';
import { renderManifests } from '../helpers/webhooks.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-check-cel-'));
t.teardown(() => {
  rmSync(dir, { recursive: true, force: true });
});
const file = (name: string, content: unknown): string => {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : stringify(content));
  return path;
};

const celRule = (name: string, group: string, resources: string[], expression: string, message: string) => ({
  name,
  check: 'cel',
  params: {
    matchConstraints: {
      resourceRules: [{ apiGroups: [group], apiVersions: ['*'], operations: ['CREATE'], resources }],
    },
    validations: [{ expression, message }],
  },
});
const rules = file('rules.yaml', {
  apiVersion: 'portcullis.io/v1',
  kind: 'RuleSet',
  rules: [
    celRule('no-lb', '', ['services'], "object.spec.type != 'LoadBalancer'", 'no LoadBalancer'),
    celRule('namespaced', '', ['configmaps'], "object.metadata.namespace == 'team'", 'not in team'),
    celRule('widgets-small', 'example.com', ['widgets'], 'object.spec.size <= 3', 'widget too big'),
    celRule(
      'prod-ns',
      'networking.k8s.io',
      ['ingresses'],
      "namespaceObject == null || namespaceObject.metadata.?labels.?env.orValue('') != 'prod'",
      'no Ingress in a prod namespace',
    ),
  ],
});

const crd = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'widgets.example.com' },
  spec: {
    group: 'example.com',
    scope: 'Namespaced',
    names: { kind: 'Widget', plural: 'widgets', singular: 'widget' },
  },
};
const widget = (size: number) => ({
  apiVersion: 'example.com/v1',
  kind: 'Widget',
  metadata: { name: `w${size}` },
  spec: { size },
});

async function judge(paths: string[], namespace = 'team') {
  const run = await runCheck(paths, { rules, output: 'json', namespace }, Readable.from([]));
  const parsed = JSON.parse(run.output === '' ? '{"results":[]}' : run.output) as {
    results: { kind: string; violations: { rule: string; message: string }[] }[];
  };
  return {
    run,
    verdicts: parsed.results.map(
      (r) => `${r.kind}: ${r.violations.map((v) => v.message).join('; ') || 'allowed'}`,
    ),
  };
}

t.test('a Service is judged by its resource, services', async (t) => {
  const lb = file('lb.yaml', {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 's' },
    spec: { type: 'LoadBalancer' },
  });
  const ip = file('ip.yaml', {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 't' },
    spec: { type: 'ClusterIP' },
  });
  const { run, verdicts } = await judge([lb, ip]);
  t.same(verdicts, ['Service: no LoadBalancer', 'Service: allowed']);
  t.equal(run.exitCode, 1);
});

t.test('object.metadata.namespace is set from -n when the object names none', async (t) => {
  const cm = file('cm.yaml', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } });
  t.same((await judge([cm], 'team')).verdicts, ['ConfigMap: allowed']);
  t.same((await judge([cm], 'other')).verdicts, ['ConfigMap: not in team']);
  const own = file('own.yaml', {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'c', namespace: 'other' },
  });
  t.same((await judge([own], 'team')).verdicts, ['ConfigMap: not in team'], 'its own namespace wins over -n');
});

t.test('a custom kind maps to its plural from a CRD in the input', async (t) => {
  const withCrd = file('widgets.yaml', [crd, widget(2), widget(5)].map((o) => stringify(o)).join('---\n'));
  t.same((await judge([withCrd])).verdicts, [
    'CustomResourceDefinition: allowed',
    'Widget: allowed',
    'Widget: widget too big',
  ]);
  // Without the CRD the guess is the same plural here; a kind whose plural is irregular needs it.
  const irregular = { ...crd, spec: { ...crd.spec, names: { kind: 'Widget', plural: 'widgetz' } } };
  const other = file('widgetz.yaml', [irregular, widget(5)].map((o) => stringify(o)).join('---\n'));
  t.same(
    (await judge([other])).verdicts,
    ['CustomResourceDefinition: allowed', 'Widget: allowed'],
    'widgetz is not widgets',
  );
});

t.test('Namespace objects of the input are namespaceObject', async (t) => {
  const ingress = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: 'i', namespace: 'shop' },
    spec: {},
  };
  const prod = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { env: 'prod' } } };
  const dev = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { env: 'dev' } } };
  t.same(
    (await judge([file('ing.yaml', ingress)])).verdicts,
    ['Ingress: allowed'],
    'no Namespace in the input: null',
  );
  t.same((await judge([file('ing.yaml', ingress), file('prod.yaml', prod)])).verdicts, [
    'Ingress: no Ingress in a prod namespace',
    'Namespace: allowed',
  ]);
  t.same((await judge([file('ing.yaml', ingress), file('dev.yaml', dev)])).verdicts, [
    'Ingress: allowed',
    'Namespace: allowed',
  ]);
});

t.test('a warning names the cel rules whose kinds the shipped webhooks do not send', async (t) => {
  const { run } = await judge([
    file('empty-cm.yaml', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }),
  ]);
  const tail =
    ', which the shipped webhook configuration sends only while `serve --webhook-configuration` keeps its custom.portcullis.io webhook in step with the RuleSet';
  t.same(run.warnings, [
    `rule "no-lb" judges CREATE services${tail}`,
    `rule "namespaced" judges CREATE configmaps${tail}`,
    `rule "widgets-small" judges CREATE example.com/widgets${tail}`,
    `rule "prod-ns" judges CREATE networking.k8s.io/ingresses${tail}`,
  ]);
  t.equal(run.exitCode, 0, 'a warning does not change the exit status');
});

t.test('the static webhook rules check warns by are those of the shipped configuration', async (t) => {
  const config = only(renderManifests(), 'ValidatingWebhookConfiguration');
  // workloads-own-namespace.portcullis.io sends the same in one namespace only
  // (test/manifests/webhooks.test.ts holds the two to the same rules).
  const staticRules = records(at(config, 'webhooks'))
    .filter(
      (w) =>
        !['custom.portcullis.io', 'rules.portcullis.io', 'workloads-own-namespace.portcullis.io'].includes(
          String(w['name']),
        ),
    )
    .flatMap((w) => records(w['rules']))
    .map((rule) => Object.fromEntries(Object.entries(rule).filter(([key]) => key !== 'scope')));
  t.same(staticRules, SHIPPED_STATIC_WEBHOOK_RULES);
  const custom = records(at(config, 'webhooks')).find((w) => w['name'] === 'custom.portcullis.io');
  t.same(custom?.['rules'], [], 'custom.portcullis.io ships with no rules: serve fills them in');
});
