// What a caller can hold: bodies and headers that never finish are dropped at the request and
// header timeouts, with a metav1.Status and (for an admission route) an audit event; bodies being
// received at once share a budget beyond a small allowance each, so stalled large bodies cannot
// take the memory while ordinary reviews keep being answered. Over raw TLS on loopback, with bounds
// scaled down so the test takes seconds (the shipped ones are in server.ts).

import { connect, type TLSSocket } from 'node:tls';
import t from 'tap';
import { localhostCertificates, podCreateReview, startServer, type TestServer } from '../helpers/server.js';

const KiB = 1024;
const REQUEST_TIMEOUT_MS = 1_500;
const HEADERS_TIMEOUT_MS = 1_000;
const BUDGET = 256 * KiB;

const certificates = await localhostCertificates();
const srv = await startServer({
  certificates,
  bodyLimit: 1024 * KiB,
  server: { bodyBudget: BUDGET, requestTimeoutMs: REQUEST_TIMEOUT_MS, headersTimeoutMs: HEADERS_TIMEOUT_MS },
});
t.teardown(() => srv.close());

interface RawExchange {
  socket: TLSSocket;
  /** Everything the server sent, once it closed the connection. */
  closed: Promise<{ text: string; afterMs: number }>;
}

/** Sends `head` and then `body` bytes over a fresh TLS connection, and keeps it open. */
async function raw(server: TestServer, head: string, body = ''): Promise<RawExchange> {
  const url = new URL(server.origin);
  const socket = connect({
    host: url.hostname,
    port: Number(url.port),
    ca: server.ca,
    servername: 'localhost',
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  const started = performance.now();
  const closed = new Promise<{ text: string; afterMs: number }>((resolve) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      resolve({ text, afterMs: performance.now() - started });
    });
  });
  socket.write(head);
  if (body !== '') socket.write(body);
  return { socket, closed };
}

const post = (path: string, length: number): string =>
  `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;

function statusOf(text: string): { code: number; body: Record<string, unknown> } {
  const code = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
  const json = text.slice(text.indexOf('\r\n\r\n') + 4);
  return { code, body: JSON.parse(json) as Record<string, unknown> };
}

t.test('a body that never finishes is dropped at the request timeout, and recorded', async (t) => {
  const before = srv.audit.events.length;
  const stalled = await raw(srv, post('/validate', 10_000), '{"apiVersion":');
  const { text, afterMs } = await stalled.closed;
  t.ok(afterMs >= REQUEST_TIMEOUT_MS - 100, `held until the timeout (${Math.round(afterMs)} ms)`);
  t.ok(afterMs < REQUEST_TIMEOUT_MS + 3_000, 'and not much longer');
  const answer = statusOf(text);
  t.equal(answer.code, 408);
  t.match(answer.body, {
    kind: 'Status',
    code: 408,
    reason: 'Timeout',
    message: `the request did not arrive in full within ${REQUEST_TIMEOUT_MS / 1000} s`,
  });
  t.equal(srv.audit.events.length, before + 1, 'one audit event');
  t.match(srv.audit.events.at(-1), {
    requestURI: '/validate',
    responseStatus: { code: 408, message: 'the connection closed before the whole body arrived' },
    annotations: { 'portcullis.io/endpoint': 'validate' },
  });
});

t.test('headers that never finish are dropped at the headers timeout', async (t) => {
  const stalled = await raw(srv, 'POST /validate HTTP/1.1\r\nHost: localhost\r\nX-Slow: ');
  const { text, afterMs } = await stalled.closed;
  t.ok(afterMs >= HEADERS_TIMEOUT_MS - 100, `held until the headers timeout (${Math.round(afterMs)} ms)`);
  t.ok(afterMs < REQUEST_TIMEOUT_MS + 1_000, 'before the request timeout would have');
  t.equal(statusOf(text).code, 408);
});

t.test('a body announced over the limit is refused before it is sent', async (t) => {
  const before = srv.audit.events.length;
  const started = performance.now();
  const big = await raw(srv, post('/validate', 1024 * KiB + 1));
  const { text } = await big.closed;
  t.ok(performance.now() - started < REQUEST_TIMEOUT_MS, 'answered at once, not at the timeout');
  t.match(statusOf(text), {
    code: 413,
    body: { message: `body is larger than the ${1024 * KiB} bytes accepted` },
  });
  t.match(text, /\r\nconnection: close\r\n/i);
  t.equal(srv.audit.events.length, before + 1);
});

const BUDGET_MESSAGE = `the server is receiving more than the ${BUDGET} bytes of request bodies it holds at once; retry`;

t.test('stalled large bodies share one budget; ordinary reviews still get through', async (t) => {
  // Declared 200 KiB: 168 KiB beyond a 32 KiB allowance each, so the second does not fit in what
  // the first left. The first is taken when its headers arrive, though it sends only part.
  const first = await raw(srv, post('/validate', 200 * KiB), `{"pad":"${'x'.repeat(100 * KiB)}`);
  await new Promise((r) => setTimeout(r, 200));
  let firstOpen = true;
  void first.closed.then(() => (firstOpen = false));
  // The second sends its headers only: refused on its Content-Length, before a byte of body.
  const second = await raw(srv, post('/validate', 200 * KiB));
  const refused = await second.closed;
  t.ok(refused.afterMs < REQUEST_TIMEOUT_MS, 'refused at once, not held');
  t.match(statusOf(refused.text), {
    code: 429,
    body: { reason: 'TooManyRequests', message: BUDGET_MESSAGE },
  });
  t.match(refused.text, /\r\nconnection: close\r\n/i);
  t.ok(firstOpen, 'the first, taken, is still being received');

  // Meanwhile the API server's reviews, within their allowance, are answered.
  for (let i = 0; i < 5; i++) {
    const reply = await srv.request('/validate', { body: podCreateReview() });
    t.equal(reply.status, 200, `ordinary review ${i + 1} answered while the budget is taken`);
  }
  // A body announced within what is left is taken too: 88 KiB left, 60 KiB beyond the allowance.
  const review = podCreateReview();
  review.request.object.metadata['annotations'] = { 'example.com/blob': 'x'.repeat(90 * KiB) };
  t.equal((await srv.request('/validate', { body: review })).status, 200, 'a 90 KiB review fits beside it');

  // Once the first is dropped, its bytes are given back: a large review fits again.
  await first.closed;
  review.request.object.metadata['annotations'] = { 'example.com/blob': 'x'.repeat(200 * KiB) };
  t.equal((await srv.request('/validate', { body: review })).status, 200, 'a 200 KiB review is answered');
});

t.test('a chunked body, of no declared length, draws on the budget as it arrives', async (t) => {
  const chunked = (text: string): string => `${text.length.toString(16)}\r\n${text}\r\n`;
  const head =
    'POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
  // 150 KiB received: 118 KiB beyond the allowance, taken.
  const first = await raw(srv, head, chunked(`{"pad":"${'x'.repeat(150 * KiB)}`));
  await new Promise((r) => setTimeout(r, 200));
  let firstOpen = true;
  void first.closed.then(() => (firstOpen = false));
  // The second is taken until what it has received passes what the first left (138 KiB).
  const second = await raw(srv, head, chunked(`{"pad":"${'x'.repeat(100 * KiB)}`));
  await new Promise((r) => setTimeout(r, 200));
  let secondOpen = true;
  void second.closed.then(() => (secondOpen = false));
  t.ok(secondOpen, 'within what is left: still being received');
  second.socket.write(chunked('x'.repeat(100 * KiB)));
  const refused = await second.closed;
  t.match(statusOf(refused.text), { code: 429, body: { message: BUDGET_MESSAGE } });
  t.ok(firstOpen, 'the first keeps its share');
  first.socket.destroy();
  await first.closed;
});

t.test('the server survived all of it', async (t) => {
  t.equal((await srv.request('/healthz')).status, 200);
  const metrics = await srv.request('/metrics');
  t.match(metrics.text, /portcullis_admission_decisions_total\{endpoint="validate",decision="error"\} 0/);
});
