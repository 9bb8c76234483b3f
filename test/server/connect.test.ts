// kubectl exec, attach and port-forward through /validate over real HTTPS: the CONNECT review the
// API server sends (captured from kube-apiserver 1.34), judged by the shipped RuleSet's podExec
// rules, each answer audited with the session it opens; and the pod lookup a podSelector rule
// waits for (a function here: the real one, against a real API server, is in test/e2e/exec.test.ts).

import t from 'tap';
import { VERSION } from '../../src/version.js';
import type { PodLookup } from '../../src/core/index.js';
import {
  admissionResponse,
  currentHash,
  localhostCertificates,
  podExecReview,
  rulesFromText,
  startServer,
} from '../helpers/server.js';

const certificates = await localhostCertificates();

function exec(command: string[], change: (request: Record<string, unknown>) => void = () => undefined) {
  const review = podExecReview();
  const object = review.request['object'] as Record<string, unknown>;
  object['command'] = command;
  change(review.request);
  return review;
}

t.test('the shipped RuleSet: an exec that reads the token is denied, citing the pattern', async (t) => {
  const srv = await startServer({ certificates });
  t.teardown(() => srv.close());
  const hash = currentHash(srv.rules);

  const denied = await srv.request('/validate', { method: 'POST', body: podExecReview() });
  t.equal(denied.status, 200);
  const message =
    'exec "sh -c \'cat /var/run/secrets/x\'" into pod default/web container web: command matches "*/var/run/secrets/*" [no-secret-reads]';
  t.same(admissionResponse(denied), {
    uid: 'c6513d31-6f99-4b90-8c3b-551c7ddf89d2',
    allowed: false,
    status: { code: 403, message },
    auditAnnotations: {
      decision: 'deny',
      'ruleset-hash': hash,
      rules: 'no-secret-reads=deny',
      command: "sh -c 'cat /var/run/secrets/x'",
      container: 'web',
      stdin: 'false',
      tty: 'false',
    },
  });

  const hostEntry = await srv.request('/validate', {
    method: 'POST',
    body: exec(['nsenter', '-t', '1', '-m', '-u', '-i', '-n', 'sh']),
  });
  t.equal(
    admissionResponse(hostEntry).status?.message,
    'exec "nsenter -t 1 -m -u -i -n sh" into pod default/web container web: command matches "*nsenter*" [no-host-entry]',
  );

  const allowed = await srv.request('/validate', {
    method: 'POST',
    body: exec(['ls', '-l', '/tmp'], (r) => {
      r['uid'] = 'a11owed0-0000-4000-8000-000000000001';
      (r['object'] as Record<string, unknown>)['stdin'] = true;
      (r['object'] as Record<string, unknown>)['tty'] = true;
    }),
  });
  t.same(admissionResponse(allowed), {
    uid: 'a11owed0-0000-4000-8000-000000000001',
    allowed: true,
    auditAnnotations: {
      decision: 'allow',
      'ruleset-hash': hash,
      command: 'ls -l /tmp',
      container: 'web',
      stdin: 'true',
      tty: 'true',
    },
  });

  // The audit record alone answers who ran what in which pod, allowed or not.
  const events = srv.audit.events;
  t.equal(events.length, 3, 'one event per answer');
  const [first, , third] = events;
  t.same(first?.user, {
    username: 'portcullis-admin',
    uid: 'portcullis-admin',
    groups: ['system:masters', 'system:authenticated'],
  });
  t.same(first?.verb, 'connect');
  t.same(first?.objectRef, {
    resource: 'pods',
    subresource: 'exec',
    namespace: 'default',
    name: 'web',
    apiVersion: 'v1',
  });
  t.same(first?.responseStatus, { metadata: {}, status: 'Failure', code: 403, reason: 'Forbidden', message });
  t.same(first?.annotations, {
    'portcullis.io/decision': 'deny',
    'portcullis.io/ruleset-hash': hash,
    'portcullis.io/dry-run': 'false',
    'portcullis.io/endpoint': 'validate',
    'portcullis.io/version': VERSION,
    'portcullis.io/violations': 'no-secret-reads=deny',
    'portcullis.io/command': "sh -c 'cat /var/run/secrets/x'",
    'portcullis.io/container': 'web',
    'portcullis.io/stdin': 'false',
    'portcullis.io/tty': 'false',
  });
  t.same(third?.annotations['portcullis.io/decision'], 'allow');
  t.same(third?.annotations['portcullis.io/command'], 'ls -l /tmp');
  t.same(third?.annotations['portcullis.io/tty'], 'true');
});

t.test('both tries of one kubectl exec (WebSocket, then SPDY) are judged and recorded', async (t) => {
  const srv = await startServer({ certificates });
  t.teardown(() => srv.close());
  for (const uid of ['c6513d31-6f99-4b90-8c3b-551c7ddf89d2', 'fd8a8757-2906-4ffa-88c4-67b5262712ff']) {
    const review = podExecReview();
    review.request['uid'] = uid;
    const reply = await srv.request('/validate', { method: 'POST', body: review });
    t.equal(admissionResponse(reply).allowed, false, uid);
  }
  t.same(
    srv.audit.events.map((e) => [e.auditID, e.annotations['portcullis.io/decision']]),
    [
      ['c6513d31-6f99-4b90-8c3b-551c7ddf89d2', 'deny'],
      ['fd8a8757-2906-4ffa-88c4-67b5262712ff', 'deny'],
    ],
  );
});

t.test('attach and port-forward are recorded with what they carry; other CONNECTs are skipped', async (t) => {
  const srv = await startServer({ certificates });
  t.teardown(() => srv.close());
  const attach = podExecReview();
  attach.request['subResource'] = 'attach';
  attach.request['kind'] = { group: '', version: 'v1', kind: 'PodAttachOptions' };
  attach.request['object'] = {
    kind: 'PodAttachOptions',
    apiVersion: 'v1',
    stdin: true,
    stdout: true,
    container: 'web',
  };
  const forward = podExecReview();
  forward.request['subResource'] = 'portforward';
  forward.request['object'] = { kind: 'PodPortForwardOptions', apiVersion: 'v1' };
  const proxy = podExecReview();
  proxy.request['resource'] = { group: '', version: 'v1', resource: 'nodes' };
  proxy.request['subResource'] = 'proxy';
  proxy.request['object'] = { kind: 'NodeProxyOptions', apiVersion: 'v1', path: '/' };
  for (const review of [attach, forward, proxy]) {
    const reply = await srv.request('/validate', { method: 'POST', body: review });
    t.equal(admissionResponse(reply).allowed, true);
  }
  const session = (annotations: Record<string, string>) =>
    Object.fromEntries(
      Object.entries(annotations).filter(([k]) =>
        ['command', 'container', 'stdin', 'tty'].some((s) => k === `portcullis.io/${s}`),
      ),
    );
  t.same(
    srv.audit.events.map((e) => [
      e.objectRef?.subresource,
      e.annotations['portcullis.io/decision'],
      session(e.annotations),
    ]),
    [
      [
        'attach',
        'allow',
        { 'portcullis.io/container': 'web', 'portcullis.io/stdin': 'true', 'portcullis.io/tty': 'false' },
      ],
      ['portforward', 'allow', {}],
      ['proxy', 'skip', {}],
    ],
  );
});

t.test('podSelector: the pod is looked up only when such a rule judges the request', async (t) => {
  const rules = rulesFromText(`
apiVersion: portcullis.io/v1
kind: RuleSet
rules:
  - name: debuggable-only
    check: podExec
    namespaces: [default]
    params: { podSelector: { matchLabels: { debuggable: 'true' } } }
  - name: no-privileged
    check: privileged
`);
  const asked: string[] = [];
  let answer: PodLookup = { ok: true, labels: { debuggable: 'true' } };
  const srv = await startServer({
    certificates,
    rules,
    lookupPod: (namespace, name) => {
      asked.push(`${namespace}/${name}`);
      return Promise.resolve(answer);
    },
  });
  t.teardown(() => srv.close());
  const verdict = async (review: object) =>
    admissionResponse(await srv.request('/validate', { method: 'POST', body: review }));

  t.equal((await verdict(podExecReview())).allowed, true, 'a labelled pod');
  answer = { ok: true, labels: { app: 'web' } };
  t.equal(
    (await verdict(podExecReview())).status?.message,
    'exec "sh -c \'cat /var/run/secrets/x\'" into pod default/web container web: the pod is not labelled debuggable=true [debuggable-only]',
  );
  answer = { ok: false, error: 'looking pod default/web up took more than 2000 ms' };
  t.equal(
    (await verdict(podExecReview())).status?.message,
    "exec \"sh -c 'cat /var/run/secrets/x'\" into pod default/web container web: the pod's labels are unknown (looking pod default/web up took more than 2000 ms), so it is not known to carry debuggable=true [debuggable-only]",
    'a failed lookup fails closed under deny',
  );
  t.same(asked, ['default/web', 'default/web', 'default/web']);

  const elsewhere = podExecReview();
  elsewhere.request['namespace'] = 'shop';
  t.equal((await verdict(elsewhere)).allowed, true, 'out of the rule’s namespaces');
  const { podCreateReview } = await import('../helpers/server.js');
  await verdict(podCreateReview());
  t.same(asked, ['default/web', 'default/web', 'default/web'], 'neither asked the API server');
  t.equal(srv.audit.events.length, 5, 'every answer audited');
});

t.test('podSelector without a way to look pods up: denied under deny, a warning under warn', async (t) => {
  const rules = rulesFromText(`
apiVersion: portcullis.io/v1
kind: RuleSet
rules:
  - name: debuggable-only
    check: podExec
    action: warn
    params: { podSelector: { matchLabels: { debuggable: 'true' } } }
`);
  const srv = await startServer({ certificates, rules });
  t.teardown(() => srv.close());
  const response = admissionResponse(
    await srv.request('/validate', { method: 'POST', body: podExecReview() }),
  );
  t.equal(response.allowed, true);
  t.same(response.warnings, [
    "exec \"sh -c 'cat /var/run/secrets/x'\" into pod default/web container web: the pod's labels are unknown (this server does not look pods up), so it is not known to carry debuggable=true [debuggable-only]",
  ]);
});
