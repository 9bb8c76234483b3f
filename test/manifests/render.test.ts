// The kustomize base and its overlays render with the real `kubectl kustomize`, and every rendered
// object validates against the Kubernetes OpenAPI schemas (kubernetes-models).

import { Buffer } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import {
  at,
  describe,
  NO_SCHEMA_KINDS,
  only,
  PLACEHOLDER_CERTS,
  record,
  records,
  renderInScratchTree,
  renderManifests,
  REPO_ROOT,
  strings,
  validateSchema,
  unfoldBase64,
  type KubeObject,
} from '../helpers/manifests.js';

const base = renderManifests();

async function assertSchemas(t: Test, objects: readonly KubeObject[]): Promise<void> {
  for (const o of objects.map(unfoldBase64)) {
    const result = await validateSchema(o);
    if (result.kind === 'no-schema') {
      t.ok(
        NO_SCHEMA_KINDS.has(`${o.apiVersion} ${o.kind}`),
        `${describe(o)}: no schema is expected only for CRDs`,
      );
    } else {
      t.equal(
        result.kind === 'invalid' ? result.message : 'valid',
        'valid',
        `${describe(o)} matches its schema`,
      );
    }
  }
}

const idOf = (o: KubeObject): string => `${o.kind} ${String(record(o['metadata'])['name'])}`;

t.test('the base renders exactly the objects Portcullis needs, in namespace portcullis', async (t) => {
  t.same(base.map(idOf).sort(), [
    'ClusterRole portcullis',
    'ClusterRole portcullis-clusterrole-reader',
    'ClusterRoleBinding portcullis',
    'ClusterRoleBinding portcullis-clusterrole-reader',
    'ConfigMap portcullis-rules',
    'Deployment portcullis',
    'MutatingWebhookConfiguration portcullis',
    'Namespace portcullis',
    'NetworkPolicy portcullis',
    'PodDisruptionBudget portcullis',
    'Role portcullis',
    'RoleBinding portcullis',
    'Service portcullis',
    'ServiceAccount portcullis',
    'ValidatingWebhookConfiguration portcullis',
  ]);
  const clusterScoped = new Set([
    'ClusterRole',
    'ClusterRoleBinding',
    'Namespace',
    'ValidatingWebhookConfiguration',
    'MutatingWebhookConfiguration',
  ]);
  for (const o of base) {
    t.equal(
      at(o, 'metadata', 'namespace'),
      clusterScoped.has(o.kind) ? undefined : 'portcullis',
      describe(o),
    );
    t.equal(
      at(o, 'metadata', 'labels', 'app.kubernetes.io/name'),
      'portcullis',
      `${describe(o)} is labelled`,
    );
  }
  // kustomize's order puts the webhook configurations last: nothing is judged before it exists.
  t.same(
    base.slice(-2).map((o) => o.kind),
    ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'],
  );
  t.equal(base[0]?.kind, 'Namespace');
});

t.test('every object of the base matches the Kubernetes OpenAPI schema', (t) => assertSchemas(t, base));

t.test('a schema violation is caught (the validation is not a no-op)', async (t) => {
  const deployment = only(base, 'Deployment');
  const broken = structuredClone(deployment);
  record(broken['spec'])['replicas'] = 'two';
  const result = await validateSchema(broken);
  t.equal(result.kind, 'invalid');
  t.match(result.kind === 'invalid' ? result.message : '', /replicas must be integer/);
});

t.test('base files are numbered in apply order and all listed in the kustomization', async (t) => {
  const dir = join(REPO_ROOT, 'manifests/base');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  for (const f of files) t.match(f, /^\d\d-[a-z0-9-]+\.yaml$/, `${f} is numbered`);
  const kustomization: unknown = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'));
  const resources = strings(at(kustomization, 'resources'));
  t.same(
    resources.filter((r) => r.endsWith('.yaml')),
    [...files].sort(),
    'listed once each, in numbered order',
  );
  t.ok(resources.includes('../../rules'), 'the rules ConfigMap comes from rules/');
});

t.test('the rules ConfigMap is rules/default.yaml, byte for byte, under a stable name', async (t) => {
  const configMap = only(base, 'ConfigMap');
  t.equal(
    at(configMap, 'metadata', 'name'),
    'portcullis-rules',
    'no hash suffix: the server watches it by name',
  );
  t.same(Object.keys(record(configMap['data'])), ['rules.yaml']);
  t.equal(at(configMap, 'data', 'rules.yaml'), readFileSync(join(REPO_ROOT, 'rules/default.yaml'), 'utf8'));
});

t.test('the image is the package version, and a kustomize images entry pins a digest', async (t) => {
  const pkg: unknown = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
  const container = (objects: readonly KubeObject[]): unknown =>
    at(only(objects, 'Deployment'), 'spec', 'template', 'spec', 'containers', 0);
  t.equal(at(container(base), 'image'), `ghcr.io/portcullis/portcullis:${String(at(pkg, 'version'))}`);

  const digest = `sha256:${'0123456789abcdef'.repeat(4)}`;
  const pinned = renderInScratchTree('../pin', PLACEHOLDER_CERTS, {
    'pin/kustomization.yaml': [
      'resources: [../manifests]',
      'images:',
      '  - name: ghcr.io/portcullis/portcullis',
      `    digest: ${digest}`,
      '',
    ].join('\n'),
  });
  t.equal(at(container(pinned), 'image'), `ghcr.io/portcullis/portcullis@${digest}`);
});

t.test('overlays/cert-manager renders: CA chain, serving cert for the Service, CA injection', async (t) => {
  const objects = renderManifests(join(REPO_ROOT, 'manifests/overlays/cert-manager'));
  await assertSchemas(t, objects);
  const service = at(
    only(objects, 'ValidatingWebhookConfiguration'),
    'webhooks',
    0,
    'clientConfig',
    'service',
  );
  const serviceHost = `${String(at(service, 'name'))}.${String(at(service, 'namespace'))}.svc`;

  const certificate = only(objects, 'Certificate', 'portcullis-tls');
  const secretName = at(certificate, 'spec', 'secretName');
  t.equal(
    secretName,
    at(only(objects, 'Deployment'), 'spec', 'template', 'spec', 'volumes', 0, 'secret', 'secretName'),
    'the Deployment mounts the Secret cert-manager writes',
  );
  t.ok(strings(at(certificate, 'spec', 'dnsNames')).includes(serviceHost), `the cert names ${serviceHost}`);
  t.equal(at(certificate, 'metadata', 'namespace'), 'portcullis');
  const issuer = only(objects, 'Issuer', String(at(certificate, 'spec', 'issuerRef', 'name')));
  const caSecret = at(issuer, 'spec', 'ca', 'secretName');
  t.equal(
    at(only(objects, 'Certificate', 'portcullis-ca'), 'spec', 'secretName'),
    caSecret,
    'signed by the CA',
  );
  t.equal(at(only(objects, 'Certificate', 'portcullis-ca'), 'spec', 'isCA'), true);

  for (const kind of ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']) {
    const config = only(objects, kind);
    t.equal(
      at(config, 'metadata', 'annotations', 'cert-manager.io/inject-ca-from'),
      `portcullis/${String(at(certificate, 'metadata', 'name'))}`,
      `${kind} gets its caBundle from the serving Certificate`,
    );
  }
});

t.test('overlays/portcullis-certs puts the certs in the Secret and ca.crt in every caBundle', async (t) => {
  const objects = renderInScratchTree('overlays/portcullis-certs').map(unfoldBase64);
  await assertSchemas(t, objects);
  const secret = only(objects, 'Secret', 'portcullis-tls');
  t.equal(secret['type'], 'kubernetes.io/tls');
  const data = record(secret['data']);
  for (const [file, text] of Object.entries(PLACEHOLDER_CERTS)) {
    t.equal(data[file], Buffer.from(text).toString('base64'), `Secret ${file}`);
  }
  const caBundle = Buffer.from(PLACEHOLDER_CERTS['ca.crt']).toString('base64');
  let webhooks = 0;
  for (const config of objects.filter((o) => o.kind.endsWith('WebhookConfiguration'))) {
    for (const webhook of records(config['webhooks'])) {
      webhooks++;
      t.equal(at(webhook, 'clientConfig', 'caBundle'), caBundle, `${config.kind} ${String(webhook['name'])}`);
    }
  }
  t.equal(webhooks, 5);
});

t.test('the certs/ directory of overlays/portcullis-certs is git-ignored (it holds the keys)', async (t) => {
  for (const file of ['ca.key', 'tls.key']) {
    t.doesNotThrow(
      () =>
        execFileSync('git', ['check-ignore', '-q', `manifests/overlays/portcullis-certs/certs/${file}`], {
          cwd: REPO_ROOT,
        }),
      file,
    );
  }
});

t.test('overlays/local-url points every webhook at 127.0.0.1 and runs nothing in the cluster', async (t) => {
  const objects = renderInScratchTree('overlays/local-url').map(unfoldBase64);
  await assertSchemas(t, objects);
  t.same(objects.map(idOf).sort(), [
    'ClusterRole portcullis',
    'ClusterRole portcullis-clusterrole-reader',
    'ClusterRoleBinding portcullis',
    'ClusterRoleBinding portcullis-clusterrole-reader',
    'ConfigMap portcullis-rules',
    'MutatingWebhookConfiguration portcullis',
    'Namespace portcullis',
    'Role portcullis',
    'RoleBinding portcullis',
    'ServiceAccount portcullis',
    'ValidatingWebhookConfiguration portcullis',
  ]);
  const caBundle = Buffer.from(PLACEHOLDER_CERTS['ca.crt']).toString('base64');
  const expected: Record<string, string> = {
    ValidatingWebhookConfiguration: 'https://127.0.0.1:8443/validate',
    MutatingWebhookConfiguration: 'https://127.0.0.1:8443/mutate',
  };
  for (const config of objects.filter((o) => o.kind.endsWith('WebhookConfiguration'))) {
    for (const webhook of records(config['webhooks'])) {
      t.same(
        webhook['clientConfig'],
        { caBundle, url: expected[config.kind] },
        `${config.kind} ${String(webhook['name'])}`,
      );
    }
  }
});
