// `serve --client-ca`: over real mutual TLS on loopback, only a caller with a client certificate from
// the configured CA (and, with names, one of those names) is judged. Everyone else is refused before
// the body is read, and recorded as refused with no user — never as the user the review claims.

import t from 'tap';
import { ANNOTATIONS } from '../../src/audit/event.js';
import { generateCertificates, type GeneratedCertificates } from '../../src/tls/certs.js';
import { checkClientCa } from '../../src/server/client-auth.js';
import { admissionResponse, localhostCertificates, podCreateReview, startServer } from '../helpers/server.js';

const certificates = await localhostCertificates();
const clientCa = await generateCertificates({
  dnsNames: ['kube-apiserver'],
  ipAddresses: [],
  days: 1,
  usage: 'client',
});
const [otherName, otherCa, servingFromClientCa] = await Promise.all([
  generateCertificates({
    dnsNames: ['someone-else'],
    ipAddresses: [],
    days: 1,
    usage: 'client',
    ca: clientCa.ca,
  }),
  generateCertificates({ dnsNames: ['kube-apiserver'], ipAddresses: [], days: 1, usage: 'client' }),
  // Signed by the right CA, but for serving: not a certificate a client may present.
  generateCertificates({ dnsNames: ['kube-apiserver'], ipAddresses: [], days: 1, ca: clientCa.ca }),
]);

const open = await startServer({ certificates, server: { clientAuth: { ca: clientCa.ca.cert, names: [] } } });
const named = await startServer({
  certificates,
  server: { clientAuth: { ca: clientCa.ca.cert, names: ['kube-apiserver'] } },
});
t.teardown(async () => {
  await open.close();
  await named.close();
});

/** The review an attacker in the cluster would send to have the audit log blame someone else. */
function forgedReview() {
  const review = podCreateReview();
  review.request['userInfo'] = { username: 'system:admin', groups: ['system:masters'] };
  return review;
}

type Client = Pick<GeneratedCertificates, 'cert' | 'key'> | undefined;

const cases: {
  name: string;
  client: Client;
  server: 'open' | 'named';
  status: number;
  message?: string | RegExp;
}[] = [
  {
    name: 'no client certificate',
    client: undefined,
    server: 'open',
    status: 401,
    message: 'a client certificate is required: this webhook admits only the API server',
  },
  {
    name: 'a certificate from another CA',
    client: otherCa,
    server: 'open',
    status: 401,
    message:
      'the client certificate is not trusted (UNABLE_TO_VERIFY_LEAF_SIGNATURE): this webhook admits only the API server',
  },
  {
    name: "the right CA's serving certificate (no clientAuth usage)",
    client: servingFromClientCa,
    server: 'open',
    status: 401,
    message: /^the client certificate is not trusted \(.+\): this webhook admits only the API server$/,
  },
  { name: 'the API server', client: clientCa, server: 'open', status: 200 },
  { name: 'the API server, by name', client: clientCa, server: 'named', status: 200 },
  { name: 'any name from the CA when no names are given', client: otherName, server: 'open', status: 200 },
  {
    name: 'a name not allowed',
    client: otherName,
    server: 'named',
    status: 403,
    message: 'client "someone-else" is not among the clients allowed to call this webhook',
  },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const srv = c.server === 'open' ? open : named;
    for (const path of ['/validate', '/mutate']) {
      const before = srv.audit.events.length;
      const review = forgedReview();
      const reply = await srv.request(path, {
        body: review,
        agent: false,
        ...(c.client === undefined ? {} : { cert: c.client.cert, key: c.client.key }),
      });
      t.equal(reply.status, c.status, `${path} status`);
      t.equal(srv.audit.events.length, before + 1, `${path}: one audit event`);
      const event = srv.audit.events.at(-1);
      if (c.status === 200) {
        t.equal(admissionResponse(reply).uid, review.request['uid']);
        // Authenticated: the user is the API server's word, and the event says who vouched for it.
        t.same(event?.user, { username: 'system:admin', groups: ['system:masters'] });
        t.equal(event?.annotations[ANNOTATIONS.client], nameOf(c.client), 'the verified client is named');
        continue;
      }
      const body = reply.json() as Record<string, unknown>;
      t.match(body, { kind: 'Status', status: 'Failure', code: c.status }, `${path} body`);
      if (typeof c.message === 'string') t.equal(body['message'], c.message);
      else t.match(body['message'], c.message);
      t.equal(reply.headers['connection'], 'close', 'the connection closes: the body is not read');
      t.same(event?.user, {}, 'recorded under no user, not the one claimed');
      t.not(event?.auditID, review.request['uid'], 'the review was never read');
      t.match(event, {
        verb: 'post',
        requestURI: path,
        responseStatus: {
          code: c.status,
          reason: c.status === 401 ? 'Unauthorized' : 'Forbidden',
          message: body['message'],
        },
      });
      t.notOk(event?.annotations[ANNOTATIONS.client], 'no client is named');
    }
  });
}

function nameOf(client: Client): string {
  return client === otherName ? 'someone-else' : 'kube-apiserver';
}

t.test(
  'probes and metrics stay open to callers without a certificate (the kubelet, Prometheus)',
  async (t) => {
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      t.equal((await named.request(path, { agent: false })).status, 200, path);
    }
    const metrics = await named.request('/metrics', { agent: false });
    t.match(
      metrics.text,
      /portcullis_admission_decisions_total\{endpoint="validate",decision="invalid"\} [1-9]/,
    );
    t.match(metrics.text, /portcullis_admission_decisions_total\{endpoint="validate",decision="error"\} 0/);
  },
);

t.test('--client-ca must hold CA certificates', async (t) => {
  t.same(checkClientCa(clientCa.ca.cert), { ok: true, count: 1 });
  t.same(checkClientCa(`${clientCa.ca.cert}\n${otherCa.ca.cert}`), { ok: true, count: 2 });
  t.same(checkClientCa('not a certificate'), { ok: false, error: 'holds no PEM certificate' });
  t.same(checkClientCa(clientCa.cert), {
    ok: false,
    error: 'certificate "CN=kube-apiserver" is not a CA certificate',
  });
});
