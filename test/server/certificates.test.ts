// Certificate rotation under traffic: the files change (in place, key after cert, or as a Secret
// volume's atomic `..data` swap) while requests keep coming; none fails, and new connections get
// the new certificate without a restart.

import https from 'node:https';
import { mkdir, mkdtemp, rename, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { generateCertificates, type GeneratedCertificates } from '../../src/tls/certs.js';
import {
  localhostCertificates,
  podCreateReview,
  serving,
  startServer,
  type TestServer,
} from '../helpers/server.js';
import { until } from '../helpers/until.js';

const first = await localhostCertificates();
const renew = (days: number) =>
  generateCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days, ca: first.ca });

/**
 * Requests in a loop until stopped, half on one keep-alive connection and half each on a new
 * connection, recording every failure and the serial each new connection was shown.
 */
function traffic(srv: TestServer) {
  const state = { sent: 0, failures: [] as string[], serials: [] as string[], stopped: false };
  const keepAlive = new https.Agent({ keepAlive: true, ca: srv.ca });
  const done = (async () => {
    while (!state.stopped) {
      const fresh = state.sent % 2 === 0;
      state.sent++;
      try {
        const reply = await srv.request('/validate', {
          body: podCreateReview(),
          agent: fresh ? false : keepAlive,
        });
        if (reply.status !== 200) state.failures.push(`status ${reply.status}`);
        if (fresh) state.serials.push(reply.serialNumber);
      } catch (err) {
        state.failures.push(err instanceof Error ? err.message : String(err));
      }
    }
    keepAlive.destroy();
  })();
  return {
    state,
    stop: async () => {
      state.stopped = true;
      await done;
    },
  };
}

/** The serials in the order seen, each run collapsed: [A, B] means A until the swap, then only B. */
function runs(serials: readonly string[]): string[] {
  return serials.filter((s, i) => i === 0 || s !== serials[i - 1]);
}

t.test(
  'in-place rewrite, certificate first and key after: no failed request, new connections see the new serial',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-certs-'));
    const files = { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
    await writeFile(files.cert, first.cert);
    await writeFile(files.key, first.key);
    const srv = await startServer({
      certificates: first,
      certificateFiles: files,
      watch: { debounceMs: 20, pollMs: 200 },
    });
    t.teardown(() => srv.close());
    const oldSerial = serving(first).serialNumber;
    const next = await renew(2);
    const newSerial = serving(next).serialNumber;

    const load = traffic(srv);
    await until(() => load.state.serials.length >= 10);
    await writeFile(files.cert, next.cert);
    // A half-rotated pair: the new certificate with the old key. It must not be served.
    await until(() =>
      srv.logs().some((l) => l['msg'] === 'certificate files not usable yet; keeping the pair in use'),
    );
    t.equal(srv.server.certificate.serialNumber, oldSerial, 'mismatched pair not swapped in');
    const beforeKey = load.state.serials.length;
    await until(() => load.state.serials.length >= beforeKey + 5);
    await writeFile(files.key, next.key);
    await until(() => load.state.serials.at(-1) === newSerial);
    const afterSwap = load.state.serials.length;
    await until(() => load.state.serials.length >= afterSwap + 10);
    await load.stop();

    t.strictSame(load.state.failures, [], `no failed request out of ${load.state.sent}`);
    t.strictSame(
      runs(load.state.serials),
      [oldSerial, newSerial],
      'old serial until the swap, only the new one after',
    );
    t.equal(srv.server.certificate.serialNumber, newSerial);
    const metrics = (await srv.request('/metrics')).text;
    t.match(
      metrics,
      `portcullis_certificate_expiration_timestamp_seconds ${serving(next).notAfter.getTime() / 1000}`,
    );
    t.ok(
      srv.logs().some((l) => l['msg'] === 'serving certificate rotated' && l['serialNumber'] === newSerial),
      'rotation logged',
    );
  },
);

t.test("a Secret volume's atomic ..data swap is picked up", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-secret-'));
  const version = async (name: string, pair: GeneratedCertificates) => {
    await mkdir(join(dir, name));
    await writeFile(join(dir, name, 'tls.crt'), pair.cert);
    await writeFile(join(dir, name, 'tls.key'), pair.key);
  };
  // The kubelet's layout: tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>.
  await version('..2026_11_23_10_00_00.1', first);
  await symlink('..2026_11_23_10_00_00.1', join(dir, '..data'));
  await symlink('..data/tls.crt', join(dir, 'tls.crt'));
  await symlink('..data/tls.key', join(dir, 'tls.key'));
  const files = { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
  // A long poll: the watch alone must see the swap.
  const srv = await startServer({
    certificates: first,
    certificateFiles: files,
    watch: { debounceMs: 20, pollMs: 60_000 },
  });
  t.teardown(() => srv.close());

  const next = await renew(3);
  const load = traffic(srv);
  await until(() => load.state.serials.length >= 5);
  await version('..2026_11_23_11_00_00.2', next);
  await symlink('..2026_11_23_11_00_00.2', join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  await until(() => load.state.serials.at(-1) === serving(next).serialNumber);
  await load.stop();
  t.strictSame(load.state.failures, []);
  t.strictSame(runs(load.state.serials), [serving(first).serialNumber, serving(next).serialNumber]);
});

t.test('files that never become a whole pair leave the pair in use, and the server ready', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-broken-'));
  const files = { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
  await writeFile(files.cert, first.cert);
  await writeFile(files.key, first.key);
  const srv = await startServer({
    certificates: first,
    certificateFiles: files,
    watch: { debounceMs: 20, pollMs: 50 },
  });
  t.teardown(() => srv.close());
  const rejected = () =>
    srv.logs().filter((l) => l['msg'] === 'certificate files not usable yet; keeping the pair in use');
  await writeFile(files.cert, first.cert.slice(0, 200)); // truncated mid-write
  await until(() => rejected().some((l) => String(l['reason']).startsWith('certificate does not parse')));
  await writeFile(files.cert, (await renew(1)).cert);
  await until(() => rejected().at(-1)?.['reason'] === 'key does not match certificate');
  const settled = rejected().length;
  await new Promise((r) => setTimeout(r, 300));
  t.equal(rejected().length, settled, 'logged once per state, not once per 50 ms poll');
  const reply = await srv.request('/readyz');
  t.equal(reply.status, 200);
  t.equal(reply.serialNumber, serving(first).serialNumber);
});
