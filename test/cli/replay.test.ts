// `portcullis replay` in-process: what it prints for a log, what --baseline keeps, how updates are
// compared with the previous body in the log, and its exit status. The reader's own cases are in
// test/audit/log-reader.test.ts; the real API server's log is replayed in test/e2e/impact.test.ts.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import t from 'tap';
import { runReplay, type ReplayOptions } from '../../src/cli/replay.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-replay-'));
const write = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

const RULES = write(
  'rules.yaml',
  `apiVersion: portcullis.io/v1
kind: RuleSet
exemptions:
  namespaces: [kube-system]
  usernames: [system:serviceaccount:ops:deployer]
rules:
  - name: no-privileged
    check: privileged
  - name: trusted
    check: trustedRegistries
    action: warn
    params: {registries: [registry.k8s.io]}
`,
);
// The baseline: privileged only audited, registries denied.
const BASELINE = write(
  'baseline.yaml',
  `apiVersion: portcullis.io/v1
kind: RuleSet
rules:
  - name: no-privileged
    check: privileged
    action: audit
  - name: trusted
    check: trustedRegistries
    params: {registries: [registry.k8s.io]}
`,
);

let clock = 0;
const stamp = (): string => `2026-12-01T10:00:${String(clock++).padStart(2, '0')}.000000Z`;
interface PodEvent {
  id: string;
  name: string;
  ns?: string;
  user?: string;
  as?: string;
  verb?: string;
  privileged?: boolean;
  image?: string;
  labels?: Record<string, string>;
  code?: number;
  stage?: string;
  /** The API server's defaults, as a stored object (or a body read back from it) carries them. */
  defaulted?: boolean;
  /** Level RequestResponse: the stored object is logged too. */
  response?: boolean;
}
const podBody = (e: PodEvent, defaulted = e.defaulted === true) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: e.name, ...(e.labels === undefined ? {} : { labels: e.labels }) },
  spec: {
    containers: [
      {
        name: 'app',
        image: e.image ?? 'registry.k8s.io/pause:3.10',
        ...(e.privileged === true ? { securityContext: { privileged: true } } : {}),
        ...(defaulted
          ? { imagePullPolicy: 'IfNotPresent', terminationMessagePath: '/dev/termination-log' }
          : {}),
      },
    ],
    ...(defaulted ? { dnsPolicy: 'ClusterFirst', restartPolicy: 'Always' } : {}),
  },
});
const podEvent = (e: PodEvent): string => {
  const time = stamp();
  return JSON.stringify({
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: e.response === true ? 'RequestResponse' : 'Request',
    auditID: e.id,
    stage: e.stage ?? 'ResponseComplete',
    requestURI: `/api/v1/namespaces/${e.ns ?? 'shop'}/pods`,
    verb: e.verb ?? 'create',
    user: { username: e.user ?? 'alice', groups: ['dev', 'system:authenticated'] },
    ...(e.as === undefined ? {} : { impersonatedUser: { username: e.as } }),
    objectRef: { resource: 'pods', namespace: e.ns ?? 'shop', name: e.name, apiVersion: 'v1' },
    responseStatus: { metadata: {}, code: e.code ?? 201 },
    ...(e.verb === 'delete' ? {} : { requestObject: podBody(e) }),
    ...(e.response === true && e.verb !== 'delete' ? { responseObject: podBody(e, true) } : {}),
    requestReceivedTimestamp: time,
    stageTimestamp: time,
  });
};
const log = (...lines: string[]): string => lines.join('\n') + '\n';

async function replay(logs: string[], options: Partial<ReplayOptions> = {}, stdin = '') {
  const stdout = new PassThrough();
  let out = '';
  stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  let err = '';
  const code = await runReplay(
    logs,
    { rules: RULES, output: 'table', ...options },
    {
      stdin: Readable.from([Buffer.from(stdin)]),
      stdout,
      stderr: { write: (s: string) => (err += s) },
      progress: false,
    },
  );
  return { code, out, err };
}

const MIXED = write(
  'mixed.log',
  log(
    podEvent({ id: '1', name: 'good' }),
    podEvent({ id: '2', name: 'priv', privileged: true }),
    podEvent({ id: '3', name: 'priv-2', privileged: true, user: 'admin', as: 'bob' }),
    podEvent({ id: '4', name: 'priv-3', privileged: true, as: 'bob' }),
    podEvent({ id: '5', name: 'docker', image: 'docker.io/library/nginx' }),
    podEvent({ id: '6', name: 'system', ns: 'kube-system', privileged: true }),
    podEvent({ id: '7', name: 'deployer', privileged: true, as: 'system:serviceaccount:ops:deployer' }),
    podEvent({ id: '8', name: 'refused', privileged: true, code: 422 }),
    podEvent({ id: '9', name: 'x', stage: 'RequestReceived', privileged: true }),
    podEvent({ id: '10', name: 'good', verb: 'delete' }),
  ),
);

t.test('the table: who would have been blocked, by which rule, how often, first and last seen', async (t) => {
  const r = await replay([MIXED]);
  t.equal(r.code, 1, 'something would be denied');
  t.equal(r.err, '');
  t.equal(
    r.out,
    [
      'RULE           ACTION  NAMESPACE  USER   EVENTS  FIRST SEEN                   LAST SEEN                    OBJECTS',
      'no-privileged  deny    shop       bob    2       2026-12-01T10:00:02.000000Z  2026-12-01T10:00:03.000000Z  Pod priv-2, Pod priv-3',
      'no-privileged  deny    shop       alice  1       2026-12-01T10:00:01.000000Z  2026-12-01T10:00:01.000000Z  Pod priv',
      'trusted        warn    shop       alice  1       2026-12-01T10:00:04.000000Z  2026-12-01T10:00:04.000000Z  Pod docker',
      '',
      '10 events read: 7 judged (3 would be denied, 1 warned, 0 audited, 1 allowed, 2 skipped)',
      'not judged: 1 not at stage ResponseComplete, 1 read, watch or delete, 0 of kinds no rule judges, ' +
        '1 refused by the API server, 0 patches (the log holds the patch, not the object), 0 without a requestObject (level Metadata)',
      '',
    ].join('\n'),
  );
});

t.test('JSON: each judged event and the summary', async (t) => {
  clock = 0;
  const path = write(
    'one.log',
    log(podEvent({ id: 'p', name: 'priv', privileged: true, user: 'admin', as: 'bob' })),
  );
  const r = await replay([path], { output: 'json' });
  t.equal(r.code, 1);
  t.same(JSON.parse(r.out), {
    events: [
      {
        auditID: 'p',
        time: '2026-12-01T10:00:00.000000Z',
        source: `${path}:1`,
        verb: 'create',
        user: { username: 'bob', groups: [] },
        impersonatedBy: 'admin',
        objectRef: { resource: 'pods', namespace: 'shop', name: 'priv', apiVersion: 'v1' },
        allowed: false,
        violations: [
          {
            rule: 'no-privileged',
            check: 'privileged',
            action: 'deny',
            message: 'container "app": securityContext.privileged must not be true',
            field: 'spec.containers[0].securityContext.privileged',
          },
        ],
      },
    ],
    summary: {
      events: 1,
      judged: 1,
      denied: 1,
      warned: 0,
      audited: 0,
      allowed: 0,
      skipped: 0,
      updatesNotCompared: 0,
      notJudged: { stage: 0, verb: 0, kind: 0, refused: 0, patch: 0, noBody: 0 },
      unreadable: 0,
      truncated: 0,
    },
  });
  const empty = await replay([write('empty.log', '')], { output: 'json' });
  t.equal(empty.code, 0, 'nothing judged, nothing denied');
  t.same((JSON.parse(empty.out) as { events: unknown[] }).events, [], 'still one JSON document');
});

t.test('--baseline: only what changes, newly denied and newly allowed', async (t) => {
  clock = 0;
  const r = await replay([MIXED], { baseline: BASELINE });
  t.equal(r.code, 1, 'something is newly denied');
  t.equal(
    r.out,
    [
      'CHANGE         RULE           ACTION  NAMESPACE  USER   EVENTS  FIRST SEEN                   LAST SEEN                    OBJECTS',
      'newly allowed  trusted        deny    shop       alice  1       2026-12-01T10:00:04.000000Z  2026-12-01T10:00:04.000000Z  Pod docker',
      'newly denied   no-privileged  deny    shop       bob    2       2026-12-01T10:00:02.000000Z  2026-12-01T10:00:03.000000Z  Pod priv-2, Pod priv-3',
      'newly denied   no-privileged  deny    shop       alice  1       2026-12-01T10:00:01.000000Z  2026-12-01T10:00:01.000000Z  Pod priv',
      '',
      '10 events read: 7 judged (3 would be denied, 1 warned, 0 audited, 1 allowed, 2 skipped)',
      'not judged: 1 not at stage ResponseComplete, 1 read, watch or delete, 0 of kinds no rule judges, ' +
        '1 refused by the API server, 0 patches (the log holds the patch, not the object), 0 without a requestObject (level Metadata)',
      'against the baseline: 3 newly denied, 1 newly allowed',
      '',
    ].join('\n'),
  );
  // The exempt pods (kube-system, the deployer) are judged by the baseline, which exempts nothing,
  // but only audited there: allowed under both, so they are not a change.
  const json = await replay([MIXED], { baseline: BASELINE, output: 'json' });
  const events = (JSON.parse(json.out) as { events: unknown }).events as {
    auditID: string;
    change: string;
    baseline: { allowed: boolean };
  }[];
  t.same(
    events.map((e) => `${e.auditID} ${e.change} baseline-allowed=${String(e.baseline.allowed)}`),
    [
      '2 newly-denied baseline-allowed=true',
      '3 newly-denied baseline-allowed=true',
      '4 newly-denied baseline-allowed=true',
      '5 newly-allowed baseline-allowed=false',
    ],
  );
  const same = await replay([MIXED], { rules: BASELINE, baseline: BASELINE });
  t.equal(same.code, 0, 'a RuleSet against itself changes nothing');
  t.match(
    same.out,
    /^10 events read: 7 judged \(1 would be denied, 0 warned, 5 audited, 1 allowed, 0 skipped\)\n/,
  );
  t.match(same.out, /\nagainst the baseline: 0 newly denied, 0 newly allowed\n$/);
  const relaxed = await replay([MIXED], { rules: BASELINE, baseline: RULES });
  t.equal(relaxed.code, 1, 'the reverse change newly denies the untrusted image');
});

t.test(
  'updates are compared with the previous body in the log, as the webhook compares the stored object',
  async (t) => {
    const path = write(
      'updates.log',
      log(
        podEvent({ id: 'c1', name: 'priv', privileged: true }),
        // A relabel: what the rules judge is unchanged, the webhook lets it through.
        podEvent({ id: 'u1', name: 'priv', privileged: true, verb: 'update', labels: { tier: 'web' } }),
        // A new image: judged, still privileged.
        podEvent({
          id: 'u2',
          name: 'priv',
          privileged: true,
          verb: 'update',
          image: 'registry.k8s.io/pause:3.11',
        }),
        // Created compliant, then made privileged: judged whole, and the previous body was in the log.
        podEvent({ id: 'c2', name: 'fine' }),
        podEvent({ id: 'u3', name: 'fine', privileged: true, verb: 'update' }),
        // Never created in this log: judged whole, and said so.
        podEvent({ id: 'u4', name: 'old', privileged: true, verb: 'update' }),
        // Deleted and created again: the old body is forgotten.
        podEvent({ id: 'd1', name: 'priv', verb: 'delete' }),
        podEvent({ id: 'u5', name: 'priv', privileged: true, verb: 'update', labels: { again: 'yes' } }),
      ),
    );
    const r = await replay([path], { output: 'json' });
    const out = JSON.parse(r.out) as { events: Record<string, unknown>[]; summary: Record<string, unknown> };
    t.same(
      out.events.map((e) => [e.auditID, e.allowed, e.skipped ?? null, e.previous ?? null]),
      [
        ['c1', false, null, null],
        ['u1', true, 'the update does not change what the rules judge', 'request body'],
        ['u2', false, null, 'request body'],
        ['c2', true, null, null],
        ['u3', false, null, 'broke no rule'],
        ['u4', false, null, 'not in log'],
        ['u5', false, null, 'not in log'],
      ],
    );
    t.equal(out.summary.updatesNotCompared, 3, 'u2, u4, u5: compared with a request body or nothing');
    const table = await replay([path]);
    t.match(
      table.out,
      /\n3 updates with violations not compared with the stored object \(no earlier write in the log/,
    );
  },
);

t.test(
  'at level RequestResponse an update is compared with the stored object, defaults and all',
  async (t) => {
    // `kubectl edit` and controllers send the object read back from the API server: defaulted.
    const edit = {
      id: 'u',
      name: 'priv',
      privileged: true,
      verb: 'update',
      defaulted: true,
      labels: { tier: 'web' },
    };
    const request = write(
      'request-level.log',
      log(podEvent({ id: 'c', name: 'priv', privileged: true }), podEvent(edit)),
    );
    const withResponse = write(
      'requestresponse-level.log',
      log(
        podEvent({ id: 'c', name: 'priv', privileged: true, response: true }),
        podEvent({ ...edit, response: true }),
      ),
    );
    const pick = async (path: string) => {
      const out = JSON.parse((await replay([path], { output: 'json' })).out) as {
        events: Record<string, unknown>[];
      };
      const update = out.events[1] ?? {};
      return [update.allowed, update.skipped ?? null, update.previous];
    };
    t.same(await pick(withResponse), [
      true,
      'the update does not change what the rules judge',
      'stored object',
    ]);
    t.same(
      await pick(request),
      [false, null, 'request body'],
      'the create body had no defaults: the specs differ',
    );
  },
);

t.test('unreadable input: every bad line named (up to 20), the report still printed, exit 2', async (t) => {
  const bad = write(
    'bad.log',
    log(podEvent({ id: '1', name: 'priv', privileged: true }), '{"kind":"Status"}', 'nope'),
  );
  const r = await replay([bad]);
  t.equal(r.code, 2);
  t.equal(
    r.err,
    `portcullis: ${bad}:2: not an audit.k8s.io/v1 Event or EventList (kind Status)\n` +
      `portcullis: ${bad}:3: not JSON (Unexpected token 'o', "nope" is not valid JSON)\n`,
  );
  t.match(r.out, /\n3 events read|\n1 event read: 1 judged \(1 would be denied/);
  t.match(r.out, /\n2 unreadable lines, 0 incomplete last lines\n$/);

  const many = write('many.log', log(...Array.from({ length: 25 }, (_, i) => `bad ${i}`)));
  const m = await replay([many]);
  t.equal(m.err.split('\n').filter((l) => l !== '').length, 21);
  t.match(m.err, /\nportcullis: … and 5 more unreadable lines\n$/);

  const truncated = write('live.log', log(podEvent({ id: '1', name: 'good' })) + '{"kind":"Ev');
  const live = await replay([truncated]);
  t.equal(live.code, 0, 'a log still being written is not an error');
  t.equal(live.err, 'portcullis: note: 1 incomplete last line(s) skipped (a log still being written)\n');

  const missing = await replay([join(dir, 'nope.log'), MIXED]);
  t.equal(missing.code, 2);
  t.match(missing.err, /^portcullis: .*nope\.log:1: cannot read \(ENOENT: no such file or directory/);
  t.match(missing.out, /^RULE /, 'the other file is still replayed');
});

t.test('stdin, and what is refused before reading anything', async (t) => {
  const piped = await replay(['-'], {}, log(podEvent({ id: '1', name: 'priv', privileged: true })));
  t.equal(piped.code, 1);
  t.match(piped.out, /\n1 event read: 1 judged \(1 would be denied/);
  const twice = await replay(['-', '-']);
  t.equal(twice.code, 2);
  t.equal(twice.err, 'portcullis: - (stdin) given more than once\n');
  const badRules = write(
    'bad-rules.yaml',
    'apiVersion: portcullis.io/v1\nkind: RuleSet\nrules:\n  - name: x\n    check: privilegd\n',
  );
  const r = await replay([MIXED], { baseline: badRules });
  t.equal(r.code, 2);
  t.match(r.err, new RegExp(`^portcullis: ${badRules}:5: rules\\[0\\]\\.check: unknown check "privilegd"`));
  t.equal(r.out, '');
});
