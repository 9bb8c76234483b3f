// An exception through the webhook: the answer, its warning, its audit annotations and the audit
// event say which exception let the pod through and until when; an expired one denies, and the
// log and a metric say it matched but lapsed. The server reads the real clock, so the windows here
// are set around today.

import t from 'tap';
import { ANNOTATIONS } from '../../src/audit/event.js';
import {
  admissionResponse,
  localhostCertificates,
  podCreateReview,
  rulesFromText,
  startServer,
} from '../helpers/server.js';

const certificates = await localhostCertificates();
const DAY = 24 * 60 * 60 * 1000;
const day = (offset: number): string => new Date(Date.now() + offset * DAY).toISOString().slice(0, 10);

// The fixture is a pod the ReplicaSet controller makes for Deployment "web" in "shop": its name is
// generated (web-7c9f8d6b5d-…), which is what `names: [web-*]` is for.
const rules = (granted: string, expires: string) =>
  rulesFromText(`apiVersion: portcullis.io/v1
kind: RuleSet
exceptions:
  - name: web-legacy-root
    rules: [no-privileged]
    namespaces: [shop]
    names: [web-*]
    reason: "SEC-42: the web image still needs root until the 3.0 rewrite"
    granted: ${granted}
    expires: ${expires}
rules:
  - name: no-privileged
    check: privileged
`);

function privilegedReview() {
  const review = podCreateReview();
  const [first] = review.request.object.spec.containers;
  if (first !== undefined) first.securityContext = { privileged: true };
  return review;
}

t.test('an exception in force: allowed, and every record says by which exception until when', async (t) => {
  const srv = await startServer({ certificates, rules: rules(day(-1), day(30)) });
  t.teardown(() => srv.close());
  const review = privilegedReview();
  const response = admissionResponse(await srv.request('/validate', { body: review }));
  const expires = `${day(30)}T00:00:00.000Z`;
  t.equal(response.allowed, true);
  t.same(response.warnings, [
    `container "web": securityContext.privileged must not be true [no-privileged] allowed by exception "web-legacy-root" until ${expires}: SEC-42: the web image still needs root until the 3.0 rewrite`,
  ]);
  t.equal(response.auditAnnotations['exceptions'], `web-legacy-root=${expires}`);
  t.equal(response.auditAnnotations['rules'], 'no-privileged=excepted');

  const [event] = srv.audit.events;
  t.equal(event?.annotations[ANNOTATIONS.exceptions], `web-legacy-root=${expires}`);
  t.equal(event?.annotations[ANNOTATIONS.violations], 'no-privileged=excepted');
  t.equal(event?.annotations[ANNOTATIONS.decision], 'allow');

  const text = await srv.metrics.registry.metrics();
  t.match(text, /^portcullis_exceptions_active 1$/m, 'in force now');
  t.match(
    text,
    new RegExp(
      `^portcullis_exception_expiration_timestamp_seconds\\{exception="web-legacy-root"\\} ${Date.parse(expires) / 1000}$`,
      'm',
    ),
  );

  const other = privilegedReview();
  other.request['namespace'] = 'payments';
  t.equal(
    admissionResponse(await srv.request('/validate', { body: other })).allowed,
    false,
    'no other namespace',
  );
});

t.test('an expired exception: denied, with the reason, a log line and a metric', async (t) => {
  const srv = await startServer({ certificates, rules: rules(day(-60), day(-1)) });
  t.teardown(() => srv.close());
  const response = admissionResponse(await srv.request('/validate', { body: privilegedReview() }));
  t.equal(response.allowed, false);
  t.match(
    response.status?.message,
    new RegExp(`; exception "web-legacy-root" expired at ${day(-1)}T00:00:00\\.000Z and no longer applies$`),
  );
  const text = await srv.metrics.registry.metrics();
  t.match(text, /^portcullis_exceptions_active 0$/m);
  t.match(text, /^portcullis_exception_lapsed_total\{exception="web-legacy-root"\} 1$/m);
  t.ok(
    srv
      .logs()
      .some(
        (l) => l['msg'] === 'exception matched but is not in force' && l['exception'] === 'web-legacy-root',
      ),
    'logged',
  );
});
