// Release hygiene: one version for the package, the chart and the image, a CHANGELOG section for
// it, the Apache-2.0 text package.json's `license` names, `portcullis --version`, and the chart's
// default image pinned by digest once a release has set one.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { CHART_DIR, findHelm, renderChart, skipWithout } from './helpers/chart.js';
import { at, PLACEHOLDER_CERTS, plainNode, REPO_ROOT } from './helpers/manifests.js';
import { PACKAGE_VERSION } from './helpers/package.js';

const read = (path: string): string => readFileSync(join(REPO_ROOT, path), 'utf8');
const chart: unknown = parse(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8'));
const values: unknown = parse(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8'));

t.test('package.json, the chart’s version and appVersion are one version', async (t) => {
  t.match(PACKAGE_VERSION, /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'semver');
  t.equal(at(chart, 'version'), PACKAGE_VERSION, 'Chart.yaml version');
  t.equal(at(chart, 'appVersion'), PACKAGE_VERSION, 'Chart.yaml appVersion');
});

t.test('CHANGELOG.md has a section for this version', async (t) => {
  const headings = [...read('CHANGELOG.md').matchAll(/^## (\S+)/gm)].map((m) => m[1]);
  t.equal(headings[0], PACKAGE_VERSION, 'the newest section is the current version');
});

t.test('LICENSE is the Apache License 2.0 that package.json and the chart name', async (t) => {
  const license = read('LICENSE');
  t.match(license, /^\s*Apache License\s+Version 2\.0, January 2004\s+http:\/\/www\.apache\.org\/licenses\//);
  t.match(license, /TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION/);
  t.match(license, /END OF TERMS AND CONDITIONS/);
  t.match(license, /9\. Accepting Warranty or Additional Liability\./, 'all nine sections');
  t.equal(at(JSON.parse(read('package.json')), 'license'), 'Apache-2.0');
  t.equal(at(chart, 'annotations', 'artifacthub.io/license'), 'Apache-2.0');
});

t.test('portcullis --version (and -V) prints the version and exits 0', async (t) => {
  for (const flag of ['--version', '-V']) {
    const [command, args] = plainNode([join(REPO_ROOT, 'bin/portcullis'), flag]);
    const run = spawnSync(command, args, { encoding: 'utf8' });
    t.equal(run.status, 0, run.stderr);
    t.equal(run.stdout, `${PACKAGE_VERSION}\n`, flag);
  }
});

t.test(
  'the chart’s default image: the digest a release pinned, else the appVersion tag',
  skipWithout(findHelm()),
  async (t) => {
    const pinned = at(values, 'image', 'digest');
    const digest = typeof pinned === 'string' ? pinned : '';
    const repository = String(at(values, 'image', 'repository'));
    t.match(digest, /^(sha256:[a-f0-9]{64})?$/, 'image.digest is empty or a sha256 digest');
    const objects = renderChart({
      certificates: { source: 'portcullis', caCrt: PLACEHOLDER_CERTS['ca.crt'], tlsCrt: 'x', tlsKey: 'y' },
    });
    const image = at(
      objects.find((o) => o.kind === 'Deployment'),
      'spec',
      'template',
      'spec',
      'containers',
      0,
      'image',
    );
    t.equal(image, digest === '' ? `${repository}:${PACKAGE_VERSION}` : `${repository}@${digest}`);
  },
);
