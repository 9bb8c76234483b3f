// Bad input over real HTTPS: always a 4xx with a metav1.Status message, never a 5xx or a crash,
// and still one audit event per answer.

import t from 'tap';
import {
  MAX_JSON_DEPTH,
  MAX_JSON_NODES,
  nestsDeeperThan,
  parseJsonBody,
  RequestError,
} from '../../src/server/json-body.js';
import { localhostCertificates, podCreateReview, startServer } from '../helpers/server.js';

const certificates = await localhostCertificates();
const srv = await startServer({ certificates });
t.teardown(() => srv.close());

const MiB = 1024 * 1024;

function withRequest(change: (request: Record<string, unknown>) => void) {
  const review = podCreateReview();
  change(review.request);
  return review;
}

const deep = (depth: number) => `{"a":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;

const cases: {
  name: string;
  body: string | Buffer;
  headers?: Record<string, string>;
  method?: string;
  status: number;
  message: string | RegExp;
}[] = [
  {
    name: 'malformed JSON',
    body: '{"apiVersion": "admission.k8s.io/v1",',
    status: 400,
    message: /^body is not valid JSON: /,
  },
  { name: 'empty JSON body', body: '', status: 400, message: /^body is not valid JSON: / },
  {
    name: 'JSON that is not an object',
    body: '[1, 2, 3]',
    status: 400,
    message: 'invalid AdmissionReview: AdmissionReview must be object',
  },
  {
    name: 'not an AdmissionReview',
    body: JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } }),
    status: 400,
    message: 'invalid AdmissionReview: request is required',
  },
  {
    name: 'missing uid',
    body: JSON.stringify(withRequest((r) => delete r['uid'])),
    status: 400,
    message: 'invalid AdmissionReview: request.uid is required',
  },
  {
    name: 'empty uid',
    body: JSON.stringify(withRequest((r) => (r['uid'] = ''))),
    status: 400,
    message: /^invalid AdmissionReview: request\.uid /,
  },
  {
    name: 'unknown apiVersion (v1beta1)',
    body: JSON.stringify({ ...podCreateReview(), apiVersion: 'admission.k8s.io/v1beta1' }),
    status: 400,
    message: 'invalid AdmissionReview: apiVersion must be "admission.k8s.io/v1"',
  },
  {
    name: 'unknown operation',
    body: JSON.stringify(withRequest((r) => (r['operation'] = 'PATCH'))),
    status: 400,
    message: /^invalid AdmissionReview: request\.operation /,
  },
  // Every field evaluate reads, missing or of the wrong type: the schema (its type derived from it)
  // refuses each with a 400 naming the field, so none can reach the core and throw.
  ...(['userInfo', 'kind', 'resource', 'operation'] as const).map((field) => ({
    name: `missing ${field}`,
    body: JSON.stringify(
      withRequest((r) => {
        // Rebuilt without the field: the review as a client that never sent it would.
        for (const key of Object.keys(r)) if (key === field) Reflect.deleteProperty(r, key);
      }),
    ),
    status: 400,
    message: `invalid AdmissionReview: request.${field} is required`,
  })),
  {
    name: 'userInfo not an object',
    body: JSON.stringify(withRequest((r) => (r['userInfo'] = 'system:admin'))),
    status: 400,
    message: 'invalid AdmissionReview: request.userInfo must be object',
  },
  {
    name: 'groups not a list of strings',
    body: JSON.stringify(withRequest((r) => (r['userInfo'] = { username: 'a', groups: ['x', 7] }))),
    status: 400,
    message: 'invalid AdmissionReview: request.userInfo.groups.1 must be string',
  },
  {
    name: 'kind without its kind',
    body: JSON.stringify(withRequest((r) => (r['kind'] = { group: '', version: 'v1' }))),
    status: 400,
    message: 'invalid AdmissionReview: request.kind.kind is required',
  },
  {
    name: 'resource of the wrong type',
    body: JSON.stringify(withRequest((r) => (r['resource'] = { group: '', version: 'v1', resource: 5 }))),
    status: 400,
    message: 'invalid AdmissionReview: request.resource.resource must be string',
  },
  {
    name: 'operation not one of the four',
    body: JSON.stringify(withRequest((r) => (r['operation'] = 'create'))),
    status: 400,
    message: 'invalid AdmissionReview: request.operation must be one of CREATE, UPDATE, DELETE, CONNECT',
  },
  {
    name: 'a uid longer than any the API server sends',
    body: JSON.stringify(withRequest((r) => (r['uid'] = 'u'.repeat(129)))),
    status: 400,
    message: 'invalid AdmissionReview: request.uid must NOT have more than 128 characters',
  },
  {
    name: 'dryRun not a boolean',
    body: JSON.stringify(withRequest((r) => (r['dryRun'] = 'false'))),
    status: 400,
    message: 'invalid AdmissionReview: request.dryRun must be boolean',
  },
  {
    name: 'wrong content type',
    body: JSON.stringify(podCreateReview()),
    headers: { 'content-type': 'text/plain' },
    status: 415,
    message: 'content type "text/plain" is not accepted: send application/json',
  },
  {
    name: 'a JSON look-alike content type',
    body: JSON.stringify(podCreateReview()),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    status: 415,
    message: 'content type "application/x-www-form-urlencoded" is not accepted: send application/json',
  },
  {
    name: 'absurd nesting',
    body: deep(100_000),
    status: 400,
    message: `body nests deeper than ${MAX_JSON_DEPTH} levels`,
  },
  {
    name: 'absurd nesting inside a valid review',
    body: JSON.stringify(
      withRequest((r) => (r['options'] = JSON.parse(deep(MAX_JSON_DEPTH + 1)) as unknown)),
    ),
    status: 400,
    message: `body nests deeper than ${MAX_JSON_DEPTH} levels`,
  },
  {
    name: 'body over the 8 MiB limit',
    body: Buffer.alloc(8 * MiB + 1, 0x20),
    status: 413,
    message: `body is larger than the ${8 * MiB} bytes accepted`,
  },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    for (const path of ['/validate', '/mutate']) {
      const events = srv.audit.events.length;
      const reply = await srv.request(path, { body: c.body, ...(c.headers ? { headers: c.headers } : {}) });
      t.equal(reply.status, c.status, `${path} status`);
      const body = reply.json() as Record<string, unknown>;
      t.match(body, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: c.status }, `${path} body`);
      if (typeof c.message === 'string') t.equal(body['message'], c.message, `${path} message`);
      else t.match(body['message'], c.message, `${path} message`);
      t.equal(srv.audit.events.length, events + 1, `${path}: one audit event`);
      t.match(srv.audit.events.at(-1), {
        verb: 'post',
        requestURI: path,
        responseStatus: { code: c.status, status: 'Failure', message: body['message'] },
      });
    }
  });
}

t.test('a broken review still has its uid cited in the audit event', async (t) => {
  const review = withRequest((r) => (r['operation'] = 'PATCH'));
  await srv.request('/validate', { body: review });
  t.equal(srv.audit.events.at(-1)?.auditID, review.request['uid']);
});

t.test('what the API server can send fits: an UPDATE carrying two 3 MiB objects', async (t) => {
  const review = podCreateReview();
  const big = 'x'.repeat(3 * MiB);
  review.request['operation'] = 'UPDATE';
  review.request.object.metadata['annotations'] = { 'example.com/blob': big };
  review.request['oldObject'] = {
    ...review.request.object,
    metadata: { annotations: { 'example.com/blob': big } },
  };
  const reply = await srv.request('/validate', { body: review });
  t.equal(reply.status, 200);
});

t.test('nesting as deep as the limit is accepted; strings full of brackets do not count', async (t) => {
  t.equal(nestsDeeperThan(deep(MAX_JSON_DEPTH), MAX_JSON_DEPTH), false);
  t.equal(nestsDeeperThan(deep(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH), true);
  t.equal(nestsDeeperThan(JSON.stringify({ a: '[[[[{{{{'.repeat(1000) }), 2), false);
  t.equal(nestsDeeperThan(JSON.stringify({ a: 'quote \\" [[[[ \\\\', b: [[[]]] }), 3), true);
  t.equal(nestsDeeperThan(JSON.stringify({ a: 'quote \\" [[[[ \\\\', b: [[[]]] }), 4), false);

  const review = withRequest((r) => (r['options'] = { kind: 'CreateOptions', note: '['.repeat(10_000) }));
  t.equal((await srv.request('/validate', { body: review })).status, 200);
});

t.test('the count of objects and arrays is exact, in the shortest text that can exceed it', async (t) => {
  // `[[],[],…]`: one array per three characters, the densest way to reach the bound flat.
  const arrays = (n: number): string => `[${'[],'.repeat(n - 2)}[]]`;
  const atTheBound = parseJsonBody(arrays(MAX_JSON_NODES));
  t.equal(Array.isArray(atTheBound) ? atTheBound.length : -1, MAX_JSON_NODES - 1);
  t.throws(() => parseJsonBody(arrays(MAX_JSON_NODES + 1)), {
    constructor: RequestError,
    statusCode: 400,
    code: 'PORTCULLIS_ERR_JSON_TOO_LARGE',
  });
});

t.test('other paths and methods: 404 and 405-ish answers, never a 5xx', async (t) => {
  t.equal((await srv.request('/validate', { method: 'GET' })).status, 404);
  t.equal((await srv.request('/nope', { body: podCreateReview() })).status, 404);
});

t.test('the server survived all of it', async (t) => {
  t.equal((await srv.request('/healthz')).status, 200);
  const metrics = await srv.request('/metrics');
  t.match(
    metrics.text,
    /portcullis_admission_decisions_total\{endpoint="validate",decision="invalid"\} [1-9]\d*/,
  );
  t.match(
    metrics.text,
    /portcullis_admission_decisions_total\{endpoint="validate",decision="error"\} 0\n/,
    'no server error among them',
  );
  t.notOk(
    srv.logs().some((l) => typeof l['level'] === 'number' && l['level'] >= 50),
    'nothing logged as an error',
  );
});
