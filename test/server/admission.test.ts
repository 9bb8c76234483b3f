// /validate and /mutate over real HTTPS on loopback, with the shipped RuleSet and the Pod CREATE
// the ReplicaSet controller sends. Messages are API: they are asserted exactly.

import jsonPatch, { type Operation } from 'fast-json-patch';
import t from 'tap';
import { PACKAGE_VERSION } from '../helpers/package.js';
import {
  admissionResponse,
  localhostCertificates,
  podCreateReview,
  currentHash,
  defaultRules,
  rulesFromText,
  startServer,
  type Pod,
} from '../helpers/server.js';

const certificates = await localhostCertificates();
const srv = await startServer({ certificates });
t.teardown(() => srv.close());
const hash = currentHash(srv.rules);
// fast-json-patch is CommonJS: its functions hang off the default export under ESM.
const { applyPatch } = jsonPatch;

/**
 * The fixture made compliant with the shipped rules, their restricted `warn` rules included: a
 * seccomp profile, non-root, and each container without privilege escalation or capabilities.
 */
function compliant(change: (pod: Pod) => void = () => undefined) {
  const review = podCreateReview();
  const spec = review.request.object.spec;
  spec.securityContext = { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } };
  for (const container of [...spec.containers, ...(spec.initContainers ?? [])]) {
    container['securityContext'] = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };
  }
  change(review.request.object);
  return review;
}

/** Sets fields of a container's securityContext, keeping the ones `compliant` set. */
function securityContextOf(pod: Pod, index: number, fields: Record<string, unknown>): void {
  const container = pod.spec.containers[index];
  if (container === undefined) throw new Error(`the fixture has no container ${index}`);
  container.securityContext = { ...container.securityContext, ...fields };
}

function clusterAdminBinding(subjects: unknown[]) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'c0ffee00-1111-4222-8333-444455556666',
      kind: { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRoleBinding' },
      resource: { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterrolebindings' },
      name: 'bob-admin',
      operation: 'CREATE',
      userInfo: { username: 'bob', groups: ['system:authenticated'] },
      object: {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'bob-admin' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
        subjects,
      },
      dryRun: false,
    },
  };
}

const cases: { name: string; review: object; message?: string; rules?: string }[] = [
  { name: 'compliant pod', review: compliant() },
  {
    name: 'privileged: privileged container',
    review: compliant((pod) => {
      securityContextOf(pod, 0, { privileged: true });
    }),
    message: 'container "web": securityContext.privileged must not be true [no-privileged]',
    rules: 'no-privileged=deny',
  },
  {
    name: 'privileged: privileged false (distractor)',
    review: compliant((pod) => {
      securityContextOf(pod, 0, { privileged: false });
    }),
  },
  {
    name: 'hostPath: docker socket',
    review: compliant((pod) => {
      pod.spec.volumes!.push({ name: 'docker', hostPath: { path: '/var/run/docker.sock' } });
    }),
    message: 'volume "docker": hostPath "/var/run/docker.sock" is not under an allowed path [no-host-path]',
    rules: 'no-host-path=deny',
  },
  {
    name: 'hostPath: emptyDir (distractor)',
    review: compliant((pod) => {
      pod.spec.volumes!.push({ name: 'scratch', emptyDir: { medium: 'Memory' } });
    }),
  },
  {
    name: 'trustedRegistries: Docker Hub sidecar',
    review: compliant((pod) => {
      pod.spec.containers[1]!['image'] = 'docker.io/fluent/fluent-bit:3.1.9';
    }),
    message:
      'container "log-shipper": image "docker.io/fluent/fluent-bit:3.1.9" is not from a trusted registry [trusted-registries]',
    rules: 'trusted-registries=deny',
  },
  {
    name: 'trustedRegistries: look-alike organisation in an init container',
    review: compliant((pod) => {
      pod.spec.initContainers![0]!['image'] = 'ghcr.io/portcullis-evil/shop-web:2.14.1';
    }),
    message:
      'initContainer "migrate": image "ghcr.io/portcullis-evil/shop-web:2.14.1" is not from a trusted registry [trusted-registries]',
    rules: 'trusted-registries=deny',
  },
  {
    name: 'seccomp: no profile anywhere',
    review: compliant((pod) => {
      delete pod.spec.securityContext?.['seccompProfile'];
    }),
    message:
      'pod or containers "migrate", "web", "log-shipper": securityContext.seccompProfile.type must be set to RuntimeDefault or Localhost [require-seccomp]',
    rules: 'require-seccomp=deny',
  },
  {
    name: 'seccomp: Unconfined container',
    review: compliant((pod) => {
      securityContextOf(pod, 1, { seccompProfile: { type: 'Unconfined' } });
    }),
    message:
      'container "log-shipper": securityContext.seccompProfile.type must not be Unconfined [require-seccomp]',
    rules: 'require-seccomp=deny',
  },
  {
    name: 'clusterAdminBinding: a user',
    review: clusterAdminBinding([{ kind: 'User', name: 'bob', apiGroup: 'rbac.authorization.k8s.io' }]),
    message:
      'ClusterRoleBinding must not grant ClusterRole "cluster-admin" to User "bob" [no-cluster-admin-binding]',
    rules: 'no-cluster-admin-binding=deny',
  },
  {
    name: 'clusterAdminBinding: system:masters (allowed subject)',
    review: clusterAdminBinding([
      { kind: 'Group', name: 'system:masters', apiGroup: 'rbac.authorization.k8s.io' },
    ]),
  },
  {
    name: 'two rules, each cited once',
    review: compliant((pod) => {
      securityContextOf(pod, 0, { privileged: true });
      pod.spec.containers[1]!['image'] = 'nginx';
    }),
    message:
      'container "web": securityContext.privileged must not be true [no-privileged]; ' +
      'container "log-shipper": image "nginx" (docker.io/library/nginx) is not from a trusted registry [trusted-registries]',
    rules: 'no-privileged=deny,trusted-registries=deny',
  },
  {
    name: 'malformed object fails closed: containers not a list',
    review: compliant((pod) => {
      Object.assign(pod.spec, { containers: 'web' });
    }),
    message: 'object is malformed: spec.containers must be a list, not a string',
  },
  {
    name: 'malformed object fails closed: image not a string',
    review: compliant((pod) => {
      pod.spec.containers[0]!['image'] = 42;
    }),
    message: 'object is malformed: spec.containers[0].image must be a string, not a number',
  },
];

for (const c of cases) {
  t.test(`/validate ${c.name}`, async (t) => {
    const reply = await srv.request('/validate', { body: c.review });
    t.equal(reply.status, 200);
    t.equal(reply.headers['keep-alive'], 'timeout=120', "idle connections outlive the API server's 90 s");
    const body = reply.json() as { apiVersion: string; kind: string };
    t.equal(body.apiVersion, 'admission.k8s.io/v1');
    t.equal(body.kind, 'AdmissionReview');
    const response = admissionResponse(reply);
    t.equal(response.uid, (c.review as { request: { uid: string } }).request.uid, 'uid echoed');
    t.equal(response.allowed, c.message === undefined);
    t.same(response.status, c.message === undefined ? undefined : { code: 403, message: c.message });
    t.equal(response.warnings, undefined);
    t.strictSame(response.auditAnnotations, {
      decision: c.message === undefined ? 'allow' : 'deny',
      'ruleset-hash': hash,
      ...(c.rules === undefined ? {} : { rules: c.rules }),
    });
  });
}

t.test('warn rules answer allowed with warnings, and deny rules still deny', async (t) => {
  const shipped = await defaultRules();
  t.teardown(() => {
    srv.rules.setRuleSet(shipped);
  });
  srv.rules.setRuleSet(
    rulesFromText(`apiVersion: portcullis.io/v1
kind: RuleSet
rules:
  - { name: no-privileged, check: privileged, action: deny }
  - { name: registries, check: trustedRegistries, action: warn, params: { registries: [registry.k8s.io] } }
  - { name: seccomp-audit, check: seccomp, action: audit }
`),
  );
  const warned = admissionResponse(await srv.request('/validate', { body: podCreateReview() }));
  t.equal(warned.allowed, true);
  t.equal(warned.status, undefined);
  t.strictSame(warned.warnings, [
    'initContainer "migrate": image "ghcr.io/portcullis/shop-web:2.14.1" is not from a trusted registry [registries]',
    'container "web": image "ghcr.io/portcullis/shop-web:2.14.1" is not from a trusted registry [registries]',
  ]);
  t.equal(warned.auditAnnotations['decision'], 'warn');
  t.equal(warned.auditAnnotations['rules'], 'registries=warn,seccomp-audit=audit');
  t.equal(warned.auditAnnotations['ruleset-hash'], currentHash(srv.rules));

  const review = podCreateReview();
  review.request.object.spec.containers[0]!.securityContext = { privileged: true };
  const denied = admissionResponse(await srv.request('/validate', { body: review }));
  t.equal(denied.allowed, false);
  t.equal(
    denied.status?.message,
    'container "web": securityContext.privileged must not be true [no-privileged]',
  );
  t.equal(denied.warnings?.length, 2, 'warnings come with a denial too');
  t.equal(denied.auditAnnotations['rules'], 'no-privileged=deny,registries=warn,seccomp-audit=audit');
});

t.test('/mutate patches what /validate would deny, and the patched object is allowed', async (t) => {
  const review = podCreateReview();
  const reply = await srv.request('/mutate', { body: review });
  t.equal(reply.status, 200);
  const response = admissionResponse(reply);
  t.equal(response.uid, review.request.uid);
  t.equal(response.allowed, true);
  t.equal(response.patchType, 'JSONPatch');
  const patch = JSON.parse(Buffer.from(response.patch ?? '', 'base64').toString('utf8')) as Operation[];
  t.strictSame(patch, [
    { op: 'add', path: '/spec/securityContext/seccompProfile', value: { type: 'RuntimeDefault' } },
  ]);
  t.strictSame(response.auditAnnotations, {
    decision: 'allow',
    'ruleset-hash': hash,
    rules: 'require-seccomp=mutate',
  });

  const patched = applyPatch(review.request.object, patch, true, false).newDocument;
  const again = { ...review, request: { ...review.request, object: patched } };
  t.equal(
    admissionResponse(await srv.request('/validate', { body: again })).allowed,
    true,
    're-validated: allowed',
  );

  const second = admissionResponse(await srv.request('/mutate', { body: again }));
  t.equal(second.allowed, true);
  t.equal(second.patch, undefined, 'reinvocation on the patched object: no patch');
  t.equal(second.patchType, undefined);
});

t.test('/mutate adds a missing securityContext whole', async (t) => {
  const review = podCreateReview();
  delete review.request.object.spec.securityContext;
  const response = admissionResponse(await srv.request('/mutate', { body: review }));
  const patch = JSON.parse(Buffer.from(response.patch ?? '', 'base64').toString('utf8')) as Operation[];
  t.strictSame(patch, [
    { op: 'add', path: '/spec/securityContext', value: { seccompProfile: { type: 'RuntimeDefault' } } },
  ]);
  const patched = applyPatch(review.request.object, patch, true, false).newDocument;
  const again = { ...review, request: { ...review.request, object: patched } };
  t.equal(admissionResponse(await srv.request('/validate', { body: again })).allowed, true);
});

t.test(
  '/mutate never denies: an explicit Unconfined is left for /validate, a malformed object is allowed unpatched',
  async (t) => {
    const unconfined = podCreateReview();
    unconfined.request.object.spec.securityContext = { seccompProfile: { type: 'Unconfined' } };
    const left = admissionResponse(await srv.request('/mutate', { body: unconfined }));
    t.equal(left.allowed, true);
    t.equal(left.patch, undefined);

    const malformed = podCreateReview();
    Object.assign(malformed.request.object.spec, { containers: 'web' });
    const allowed = admissionResponse(await srv.request('/mutate', { body: malformed }));
    t.equal(allowed.allowed, true);
    t.equal(allowed.patch, undefined);
    t.equal(allowed.status, undefined);
  },
);

t.test('health, readiness and metrics', async (t) => {
  const health = await srv.request('/healthz');
  t.equal(health.status, 200);
  const ready = await srv.request('/readyz');
  t.equal(ready.status, 200);
  t.match(ready.json(), {
    status: 'ready',
    ruleset: hash,
    certificate: { serialNumber: srv.server.certificate.serialNumber },
  });

  const metrics = await srv.request('/metrics');
  t.equal(metrics.status, 200);
  t.match(metrics.headers['content-type'], /^text\/plain/);
  t.match(metrics.text, /portcullis_admission_decisions_total\{endpoint="validate",decision="deny"\} \d+/);
  t.match(metrics.text, /portcullis_rule_results_total\{rule="no-privileged",action="deny"\} \d+/);
  t.match(metrics.text, /portcullis_rule_results_total\{rule="require-seccomp",action="mutate"\} \d+/);
  t.match(metrics.text, /portcullis_admission_duration_seconds_count\{endpoint="mutate"\} \d+/);
  t.match(metrics.text, /portcullis_ruleset_loads_total\{result="success"\} \d+/);
  t.match(metrics.text, `portcullis_ruleset_info{hash="${currentHash(srv.rules)}"} 1`);
  t.match(metrics.text, /portcullis_certificate_expiration_timestamp_seconds \d+/);
  t.match(
    metrics.text,
    `portcullis_build_info{version="${PACKAGE_VERSION}",node_version="${process.version}"} 1`,
  );
  t.match(metrics.text, /^portcullis_ready 1$/m, 'ready, as /readyz said');
  t.match(metrics.text, /^portcullis_ruleset_last_load_success 1$/m);
  t.match(
    metrics.text,
    /portcullis_admission_duration_seconds_bucket\{le="30",endpoint="validate"\} \d+/,
    'buckets up to the API server’s largest timeout',
  );
  t.notMatch(
    metrics.text,
    /shop|bob|replicaset-controller/,
    'no object names, namespaces or users in labels',
  );
});

t.test('a RuleSet that failed to load is counted, and the one in force stays', async (t) => {
  const before = srv.rules.current;
  srv.rules.onInvalid();
  t.equal(srv.rules.current, before);
  const text = (await srv.request('/metrics')).text;
  t.match(text, 'portcullis_ruleset_loads_total{result="failure"} 1');
  t.match(text, /^portcullis_ruleset_last_load_success 0$/m, 'the last load was refused');
  t.match(text, /^portcullis_ready 1$/m, 'and the replica stays ready on the RuleSet before');
});

t.test('one audit event per answer, for every answer', async (t) => {
  const before = srv.audit.events.length;
  const sent = 20;
  const answers = await Promise.all(
    Array.from({ length: sent }, (_, i) =>
      srv.request(i % 2 === 0 ? '/validate' : '/mutate', { body: podCreateReview() }),
    ),
  );
  t.ok(answers.every((a) => a.status === 200));
  t.equal(srv.audit.events.length - before, sent);
});
