// The RuleSet as the server holds it: not ready and failing closed until a first good one loads,
// edits of its own rules ConfigMap judged at admission, and `serve --rules` following its file the
// way the kubelet updates a mounted ConfigMap (a `..data` symlink swap), keeping the last good
// RuleSet through a broken edit. The ConfigMap watch against a real API server is in test/e2e.

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { NO_RULESET_MESSAGE } from '../../src/server/admission.js';
import {
  admissionResponse,
  currentHash,
  defaultRules,
  localhostCertificates,
  podCreateReview,
  request,
  startServer,
} from '../helpers/server.js';
import { KNOWN_CHECKS } from '../helpers/rules.js';
import { until } from '../helpers/until.js';

const certificates = await localhostCertificates();
const RULES_CONFIGMAP = { namespace: 'portcullis', name: 'portcullis-rules' };
const shipped = await readFile(new URL('../../rules/default.yaml', import.meta.url), 'utf8');
const BROKEN = shipped.replace('check: privileged', 'check: privilegd');
const BROKEN_MESSAGE = `configmap portcullis/portcullis-rules rules.yaml:13: rules[0].check: unknown check "privilegd"; ${KNOWN_CHECKS} [portcullis-ruleset]`;

/** A CREATE or UPDATE of a ConfigMap, as the API server sends it. */
function configMapReview(
  name: string,
  rules: string | undefined,
  options: { operation?: 'CREATE' | 'UPDATE'; oldRules?: string; labels?: Record<string, string> } = {},
) {
  const object = (text: string | undefined, labels: Record<string, string> = {}) => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: 'portcullis', labels },
    data: text === undefined ? {} : { 'rules.yaml': text },
  });
  const operation = options.operation ?? 'CREATE';
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `cm-${name}-${operation}`,
      kind: { group: '', version: 'v1', kind: 'ConfigMap' },
      resource: { group: '', version: 'v1', resource: 'configmaps' },
      requestKind: { group: '', version: 'v1', kind: 'ConfigMap' },
      requestResource: { group: '', version: 'v1', resource: 'configmaps' },
      name,
      namespace: 'portcullis',
      operation,
      userInfo: { username: 'alice', groups: ['security-team', 'system:authenticated'] },
      object: object(rules, options.labels),
      oldObject: operation === 'UPDATE' ? object(options.oldRules) : null,
      dryRun: false,
      options: {},
    },
  };
}

function privilegedPod() {
  const review = podCreateReview();
  review.request.object.spec.securityContext = { seccompProfile: { type: 'RuntimeDefault' } };
  review.request.object.spec.containers[0]!.securityContext = { privileged: true };
  return review;
}

t.test('with no RuleSet: not ready, every request denied, the rules ConfigMap still judged', async (t) => {
  const srv = await startServer({ certificates, rules: null, rulesConfigMap: RULES_CONFIGMAP });
  t.teardown(() => srv.close());

  const notReady = await srv.request('/readyz');
  t.equal(notReady.status, 503);
  t.match(notReady.json(), { status: 'not ready', reasons: ['no valid RuleSet loaded'], ruleset: null });

  const pod = admissionResponse(await srv.request('/validate', { body: podCreateReview() }));
  t.equal(pod.allowed, false, 'fails closed');
  t.equal(pod.status?.message, `${NO_RULESET_MESSAGE} [portcullis-ruleset]`);
  t.equal(pod.auditAnnotations['ruleset-hash'], undefined, 'no RuleSet, no hash');
  const mutated = admissionResponse(await srv.request('/mutate', { body: podCreateReview() }));
  t.equal(mutated.allowed, true, '/mutate leaves judging to /validate');
  t.equal(mutated.patch, undefined, 'and patches nothing without a RuleSet');

  const fix = admissionResponse(
    await srv.request('/validate', { body: configMapReview('portcullis-rules', shipped) }),
  );
  t.equal(fix.allowed, true, 'the fix itself is let in');
  const broken = admissionResponse(
    await srv.request('/validate', { body: configMapReview('portcullis-rules', BROKEN) }),
  );
  t.equal(broken.allowed, false);
  t.equal(broken.status?.message, BROKEN_MESSAGE);

  srv.rules.setRuleSet(await defaultRules());
  const ready = await srv.request('/readyz');
  t.equal(ready.status, 200);
  t.match(ready.json(), { status: 'ready', reasons: [], ruleset: currentHash(srv.rules) });
  t.equal(srv.audit.events.length, 4, 'one audit event per answer, denials included');
  t.equal(srv.audit.events[0]?.annotations['portcullis.io/decision'], 'deny');
});

t.test('edits of the rules ConfigMap are judged by the RuleSet they carry', async (t) => {
  const srv = await startServer({ certificates, rulesConfigMap: RULES_CONFIGMAP });
  t.teardown(() => srv.close());
  const cases = [
    { name: 'a valid RuleSet', review: configMapReview('portcullis-rules', shipped), allowed: true },
    { name: 'a broken RuleSet', review: configMapReview('portcullis-rules', BROKEN), allowed: false },
    {
      name: 'a broken UPDATE',
      review: configMapReview('portcullis-rules', BROKEN, { operation: 'UPDATE', oldRules: shipped }),
      allowed: false,
    },
    {
      name: 'rules.yaml removed',
      review: configMapReview('portcullis-rules', undefined, { operation: 'UPDATE', oldRules: shipped }),
      allowed: false,
      message:
        'configmap portcullis/portcullis-rules rules.yaml: missing: the ConfigMap has no data["rules.yaml"] [portcullis-ruleset]',
    },
    {
      name: 'a label edit of an already stored broken RuleSet',
      review: configMapReview('portcullis-rules', BROKEN, {
        operation: 'UPDATE',
        oldRules: BROKEN,
        labels: { team: 'security' },
      }),
      allowed: true,
    },
    { name: 'another ConfigMap (distractor)', review: configMapReview('other', BROKEN), allowed: true },
  ];
  for (const c of cases) {
    const answer = admissionResponse(await srv.request('/validate', { body: c.review }));
    t.equal(answer.allowed, c.allowed, c.name);
    if (!c.allowed) t.equal(answer.status?.message, c.message ?? BROKEN_MESSAGE, `${c.name}: message`);
  }
});

t.test('without --rules-configmap a ConfigMap is not Portcullis’ business', async (t) => {
  const srv = await startServer({ certificates });
  t.teardown(() => srv.close());
  const answer = admissionResponse(
    await srv.request('/validate', { body: configMapReview('portcullis-rules', BROKEN) }),
  );
  t.equal(answer.allowed, true);
});

/** Writes `text` the way the kubelet updates a ConfigMap volume: new directory, `..data` swapped. */
async function project(dir: string, text: string, version: number): Promise<void> {
  const data = `..2026_11_23_00_00_0${version}`;
  await mkdir(join(dir, data));
  await writeFile(join(dir, data, 'rules.yaml'), text);
  await symlink(data, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  if (version > 1) await rm(join(dir, `..2026_11_23_00_00_0${version - 1}`), { recursive: true });
}

t.test('serve --rules DIR follows a mounted ConfigMap and keeps the last good RuleSet', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-rules-'));
  const warnPrivileged = shipped.replace(/(- name: no-privileged\n(?:.*\n)*?\s+action:) deny/, '$1 warn');
  t.not(warnPrivileged, shipped, 'the edit changes the rule');
  // At start the directory holds a broken RuleSet: serve runs, but is not ready and denies.
  await project(dir, BROKEN, 1);
  await symlink('..data/rules.yaml', join(dir, 'rules.yaml'));

  const entry = fileURLToPath(new URL('../helpers/portcullis.ts', import.meta.url));
  const child = spawn(
    process.execPath,
    [...process.execArgv, entry, 'serve', '--port', '0', '--host', '127.0.0.1', '--rules', dir],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } },
  );
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const logs = () =>
    stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  const listening = await until(() => Promise.resolve(logs().find((l) => l['msg'] === 'listening')), 60_000);
  const ca = await readFile(/its CA is (\S+)/.exec(stderr)?.[1] ?? '', 'utf8');
  const origin = `https://127.0.0.1:${String(listening['port'])}`;
  const get = (path: string) => request(`${origin}${path}`, { ca });
  const validate = async () =>
    admissionResponse(await request(`${origin}/validate`, { ca, body: privilegedPod() }));

  t.match(
    logs().find((l) => l['msg'] === 'RuleSet refused; the last good RuleSet stays in force'),
    { errors: [/rules\.yaml:13: rules\[0\]\.check: unknown check "privilegd"/] },
    'the refusal names file, line and field',
  );
  t.equal((await get('/readyz')).status, 503, 'not ready without a valid RuleSet');
  t.match((await validate()).status?.message, NO_RULESET_MESSAGE);

  await project(dir, shipped, 2);
  await until(async () => ((await get('/readyz')).status === 200 ? true : undefined), 10_000);
  const denied = await validate();
  t.equal(denied.allowed, false);
  t.match(denied.status?.message, '[no-privileged]');

  const edited = Date.now();
  await project(dir, warnPrivileged, 3);
  const warned = await until(async () => {
    const answer = await validate();
    return answer.allowed ? answer : undefined;
  }, 10_000);
  t.comment(`the edit was enforced after ${Date.now() - edited} ms`);
  t.match(warned.warnings, [/securityContext\.privileged must not be true \[no-privileged\]/]);

  await project(dir, BROKEN, 4);
  await until(async () => {
    const metrics = (await get('/metrics')).text;
    return /portcullis_ruleset_loads_total\{result="failure"\} 2/.test(metrics) ? true : undefined;
  }, 10_000);
  t.equal((await validate()).allowed, true, 'the broken edit left the last good RuleSet in force');
  t.equal((await get('/readyz')).status, 200, 'and readiness up');

  child.kill('SIGTERM');
  const code = await new Promise((resolve) => child.on('exit', resolve));
  t.equal(code, 0);
});

t.test('readiness fails when the admission path throws', async (t) => {
  const srv = await startServer({ certificates });
  t.teardown(() => srv.close());
  t.equal((await srv.request('/readyz')).status, 200);
  const shipped = await defaultRules();
  // A compiled RuleSet no compiler would produce: judging with it throws, as a bug in a check would.
  srv.rules.setRuleSet({
    ...shipped,
    ruleset: { rules: null, exceptions: [] } as unknown as typeof shipped.ruleset,
  });
  const broken = await srv.request('/readyz');
  t.equal(broken.status, 503);
  t.match(broken.json(), { reasons: [/^admission self-check failed: /] });
});
