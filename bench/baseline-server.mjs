// The bench's baseline: the least an admission webhook can do over the same TLS, parse the JSON body
// and answer allowed (on /validate and /mutate). Deliberately bare (no Portcullis imports), so the
// ratio prices exactly what Portcullis adds. The bench passes the same cert, key, body limit and keep-alive timeout.
//
// node bench/baseline-server.mjs CERT KEY PORT BODY_LIMIT KEEP_ALIVE_TIMEOUT_MS

import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const [certFile, keyFile, port, bodyLimit, keepAliveTimeout] = process.argv.slice(2);
if (keepAliveTimeout === undefined) {
  process.stderr.write('usage: baseline-server.mjs CERT KEY PORT BODY_LIMIT KEEP_ALIVE_TIMEOUT_MS\n');
  process.exit(2);
}

const app = Fastify({
  https: { cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.2' },
  bodyLimit: Number(bodyLimit),
  keepAliveTimeout: Number(keepAliveTimeout),
});

app.get('/readyz', async () => 'ok');
const allow = async (request) => {
  const body = request.body;
  const uid = typeof body?.request?.uid === 'string' ? body.request.uid : '';
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true } };
};
app.post('/validate', allow);
// bench:apiserver puts this server behind Portcullis' own webhook configurations too, mutating one
// included: allowed without a patch.
app.post('/mutate', allow);

await app.listen({ host: '127.0.0.1', port: Number(port) });
process.once('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
