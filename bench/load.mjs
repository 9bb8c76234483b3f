// The bench's load generator, in a process of its own (bench/admission.mjs forks it): on a 2-core
// machine autocannon competes with the server for the CPU whatever we do, but in its own process it
// competes alike with Portcullis and with the baseline, and the orchestrator's bookkeeping (RSS
// sampling, CPU accounting, result arrays) runs in neither the client's nor a server's process.
//
// One message in, one message out, over IPC ('advanced' serialization, so latencies travel as a
// Float64Array): { kind: 'keepAlive', url, body, connections, seconds } runs autocannon;
// { kind: 'newConnection', port, ca, body, seconds, max } sends requests one at a time, each on a
// fresh, verified TLS connection.

import { request } from 'node:https';
import autocannon from 'autocannon';

process.on('message', (job) => {
  const run = job.kind === 'keepAlive' ? keepAlive(job) : newConnectionPerRequest(job);
  run.then(
    (result) => process.send({ ok: true, result }),
    (err) => process.send({ ok: false, error: err instanceof Error ? err.stack : String(err) }),
  );
});
process.send({ ready: true });

/** One autocannon run; latencies are taken from each response (autocannon's histogram is whole ms). */
async function keepAlive({ url, body, connections, seconds }) {
  const latencies = [];
  const instance = autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    pipelining: 1,
    duration: seconds,
  });
  instance.on('response', (_client, _status, _bytes, responseTime) => latencies.push(responseTime));
  const result = await instance;
  return {
    requests: result.requests.total,
    duration: result.duration,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    latencies: Float64Array.from(latencies),
  };
}

/**
 * Sequential requests, each on its own connection with a full handshake: `agent: false` gives every
 * request a fresh socket and no TLS session cache, and the client verifies the chain as the API
 * server does. Checked, not assumed: a reused socket or a resumed session is counted and shown.
 */
async function newConnectionPerRequest({ port, ca, body, seconds, max }) {
  const latencies = [];
  const seen = new WeakSet();
  let reusedSockets = 0;
  let resumed = 0;
  let failed = 0;
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  while (latencies.length < max && performance.now() < until) {
    const begin = performance.now();
    const answer = await send(port, ca, body);
    latencies.push(performance.now() - begin);
    if (answer.status !== 200) failed++;
    if (seen.has(answer.socket)) reusedSockets++;
    seen.add(answer.socket);
    if (answer.socket.isSessionReused()) resumed++;
  }
  return {
    requests: latencies.length,
    duration: (performance.now() - t0) / 1000,
    failed,
    reusedSockets,
    resumed,
    latencies: Float64Array.from(latencies),
  };
}

/** A POST /validate over its own verified TLS connection (no agent, no keep-alive). */
function send(port, ca, body) {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/validate',
        ca,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, socket: res.socket }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
