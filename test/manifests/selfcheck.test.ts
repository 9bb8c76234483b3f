// Portcullis' own manifests pass Portcullis' own default rules, judged by the real binary:
// `bin/portcullis check --rules rules/default.yaml` on each render exits 0. The binary runs dist/,
// which `npm test` builds first (its `pretest` script).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { stringify } from 'yaml';
import {
  at,
  PLACEHOLDER_CERTS,
  plainNode,
  renderInScratchTree,
  renderManifests,
  REPO_ROOT,
  type KubeObject,
} from '../helpers/manifests.js';
import { equivalentValues, findHelm, renderChart, skipWithout } from '../helpers/chart.js';

const scratch = mkdtempSync(join(tmpdir(), 'portcullis-selfcheck-'));
t.teardown(() => {
  rmSync(scratch, { recursive: true, force: true });
});

function check(name: string, objects: readonly KubeObject[]): { status: number | null; output: string } {
  const file = join(scratch, `${name}.yaml`);
  writeFileSync(file, objects.map((o) => stringify(o)).join('---\n'));
  const [command, args] = plainNode([
    join(REPO_ROOT, 'bin/portcullis'),
    'check',
    '--rules',
    join(REPO_ROOT, 'rules/default.yaml'),
    file,
  ]);
  const run = spawnSync(command, args, { encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

const renders: Record<string, () => KubeObject[]> = {
  base: () => renderManifests(),
  'overlays/cert-manager': () => renderManifests(join(REPO_ROOT, 'manifests/overlays/cert-manager')),
  'overlays/portcullis-certs': () => renderInScratchTree('overlays/portcullis-certs'),
  'overlays/local-url': () => renderInScratchTree('overlays/local-url'),
  'base with the image pinned by digest': () =>
    renderInScratchTree('../pin', PLACEHOLDER_CERTS, {
      'pin/kustomization.yaml': `resources: [../manifests]\nimages:\n  - name: ghcr.io/portcullis/portcullis\n    digest: sha256:${'ab'.repeat(32)}\n`,
    }),
};

// The Helm chart's renders too (skipped, saying why, when helm is not built).
const helmSkip = skipWithout(findHelm());
const chartRenders: Record<string, () => KubeObject[]> = {
  'the chart, certificates from portcullis certs': () =>
    renderChart(equivalentValues('overlays/portcullis-certs', PLACEHOLDER_CERTS)),
  'the chart, cert-manager, monitoring on': () =>
    renderChart({
      certificates: { source: 'cert-manager' },
      monitoring: {
        serviceMonitor: { enabled: true },
        prometheusRule: { enabled: true },
        grafanaDashboard: { enabled: true },
      },
    }),
  'the chart, image pinned by digest, audit sinks set': () =>
    renderChart({
      ...equivalentValues('', PLACEHOLDER_CERTS),
      image: { digest: `sha256:${'ab'.repeat(32)}` },
      audit: {
        webhook: { url: 'https://audit.example/events', ca: 'PEM' },
        file: { path: '/var/log/portcullis/audit.log' },
      },
    }),
};

for (const [name, render] of Object.entries(chartRenders)) {
  t.test(`${name} passes the default rules`, helmSkip, async (t) => {
    const run = check(name.replace(/\W+/g, '-'), render());
    t.equal(run.status, 0, run.output);
    t.match(run.output, /objects? checked: 0 denied/);
  });
}

for (const [name, render] of Object.entries(renders)) {
  t.test(`${name} passes the default rules`, async (t) => {
    const run = check(name.replace(/\W+/g, '-'), render());
    t.equal(run.status, 0, run.output);
    t.match(run.output, /objects? checked: 0 denied/);
  });
}

t.test('the same check denies the Deployment once it breaks a rule (the check is not a no-op)', async (t) => {
  const objects = renderManifests().map((o) => structuredClone(o));
  const deployment = objects.find((o) => o.kind === 'Deployment');
  const container = at(deployment, 'spec', 'template', 'spec', 'containers', 0);
  if (typeof container !== 'object' || container === null) throw new Error('no container in the Deployment');
  Object.assign(container, { image: 'docker.io/library/busybox:1.36' });
  const run = check('untrusted', objects);
  t.equal(run.status, 1, run.output);
  t.match(run.output, /trusted-registries/);
});
