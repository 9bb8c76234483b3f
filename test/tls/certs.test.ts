// The webhook's certificates, judged by readers other than the forge that wrote them: Node's
// X509Certificate (OpenSSL) for fields, a real TLS handshake with the CA as the only trust anchor,
// and openssl-made CAs for reuse. Then `portcullis certs` in process and through bin/.

import { execFile, execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer as createNetServer } from 'node:net';
import { connect, createServer, type TLSSocket } from 'node:tls';
import forge from 'node-forge';
import t from 'tap';
import { runCerts, type CertsOptions } from '../../src/cli/certs.js';
import {
  CertificateError,
  checkCertificateAuthority,
  checkSubjectAltNames,
  generateCertificates,
  randomSerialNumber,
  type GeneratedCertificates,
} from '../../src/tls/certs.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const DAY_MS = 86_400_000;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const made = await generateCertificates({
  dnsNames: ['portcullis', 'portcullis.system.svc'],
  ipAddresses: ['127.0.0.1', '::1'],
  days: 30,
});

function x509(pem: string): X509Certificate {
  return new X509Certificate(pem);
}

/** The certificate as forge reads it back, for the extension bits Node does not expose. */
function extension(pem: string, name: string): Record<string, unknown> {
  const ext = forge.pki.certificateFromPem(pem).getExtension(name);
  if (ext === undefined) throw new Error(`no ${name} extension`);
  return { ...ext };
}

function caSki(certs: GeneratedCertificates): string {
  const ski = extension(certs.ca.cert, 'subjectKeyIdentifier')['subjectKeyIdentifier'];
  if (typeof ski !== 'string') throw new Error('CA has no subject key id');
  return ski;
}

/** keyIdentifier of the authorityKeyIdentifier extension, in hex (forge does not decode this one). */
function authorityKeyId(pem: string): string {
  const value = extension(pem, 'authorityKeyIdentifier')['value'];
  if (typeof value !== 'string') throw new Error('no authorityKeyIdentifier value');
  const keyIdentifier = forge.asn1.fromDer(value).value[0];
  if (
    keyIdentifier === undefined ||
    typeof keyIdentifier === 'string' ||
    typeof keyIdentifier.value !== 'string'
  ) {
    throw new Error('no keyIdentifier');
  }
  return forge.util.bytesToHex(keyIdentifier.value);
}

/** Issuer and subject as their raw DER bytes (Go matches a cert to its parent on these). */
function rawNames(pem: string): { issuer: string; subject: string } {
  const tbs = forge.asn1.fromDer(x509(pem).raw.toString('binary')).value[0];
  if (tbs === undefined || typeof tbs === 'string' || !Array.isArray(tbs.value)) throw new Error('no TBS');
  const [, , , issuer, , subject] = tbs.value;
  if (issuer === undefined || subject === undefined) throw new Error('no names');
  return { issuer: forge.asn1.toDer(issuer).toHex(), subject: forge.asn1.toDer(subject).toHex() };
}

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

t.test('the serving cert carries the SANs and is signed by the CA', async (t) => {
  const ca = x509(made.ca.cert);
  const leaf = x509(made.cert);
  t.equal(
    leaf.subjectAltName,
    'DNS:portcullis, DNS:portcullis.system.svc, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
  );
  t.equal(ca.ca, true, 'CA flag on the CA');
  t.equal(leaf.ca, false, 'no CA flag on the serving cert');
  t.equal(leaf.issuer, ca.subject);
  t.ok(leaf.checkIssued(ca), 'issued by the CA');
  t.ok(leaf.verify(ca.publicKey), 'signature verifies with the CA key');
  t.ok(ca.verify(ca.publicKey), 'CA is self-signed');
  t.equal(
    rawNames(made.cert).issuer,
    rawNames(made.ca.cert).subject,
    'issuer bytes equal the CA subject bytes',
  );
  t.ok(leaf.checkPrivateKey(createPrivateKey(made.key)), 'tls.key belongs to tls.crt');
  t.ok(ca.checkPrivateKey(createPrivateKey(made.ca.key)), 'ca.key belongs to ca.crt');
  t.notOk(leaf.checkPrivateKey(createPrivateKey(made.ca.key)), 'and not the other way round');
  t.same(leaf.keyUsage, [SERVER_AUTH], 'extKeyUsage serverAuth only');
  t.equal(leaf.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  t.equal(ca.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  t.not(leaf.serialNumber, ca.serialNumber);
});

t.test('extensions and signature algorithm', async (t) => {
  const sha256WithRsa = forge.pki.oids['sha256WithRSAEncryption'];
  t.equal(forge.pki.certificateFromPem(made.cert).signatureOid, sha256WithRsa);
  t.equal(forge.pki.certificateFromPem(made.ca.cert).signatureOid, sha256WithRsa);
  t.match(extension(made.ca.cert, 'basicConstraints'), { critical: true, cA: true, pathLenConstraint: 0 });
  t.match(extension(made.ca.cert, 'keyUsage'), {
    critical: true,
    keyCertSign: true,
    cRLSign: true,
    digitalSignature: false,
  });
  t.match(extension(made.cert, 'basicConstraints'), { critical: true, cA: false });
  t.match(extension(made.cert, 'keyUsage'), {
    critical: true,
    digitalSignature: true,
    keyEncipherment: true,
    keyCertSign: false,
  });
  t.ok(
    forge.pki.certificateFromPem(made.ca.cert).verifySubjectKeyIdentifier(),
    'CA subject key id matches its key',
  );
  t.equal(authorityKeyId(made.cert), caSki(made), "authority key id is the CA's subject key id");
});

t.test('validity: backdated for clock skew, ends after the days asked for', async (t) => {
  const leaf = x509(made.cert);
  const now = Date.now();
  const notBefore = Date.parse(leaf.validFrom);
  const notAfter = Date.parse(leaf.validTo);
  t.ok(notBefore <= now - 2 * 60_000, `notBefore ${leaf.validFrom} is a few minutes back`);
  t.ok(notBefore >= now - 15 * 60_000, 'but not much more');
  t.ok(Math.abs(notAfter - (now + 30 * DAY_MS)) < 10 * 60_000, `notAfter ${leaf.validTo} is 30 days on`);
});

t.test('serials: random, positive, minimal DER', async (t) => {
  const serials = Array.from({ length: 2000 }, () => randomSerialNumber());
  t.equal(new Set(serials).size, serials.length, 'all different');
  const bad = serials.filter((hex) => {
    const first = Number.parseInt(hex.slice(0, 2), 16);
    const second = Number.parseInt(hex.slice(2, 4), 16);
    const minimal = first === 0 ? second >= 0x80 : first < 0x80;
    return hex.length % 2 !== 0 || hex.length > 34 || !minimal;
  });
  t.same(bad, [], 'even length, at most 17 bytes, positive with no superfluous leading zero');
  t.ok(
    serials.some((s) => s.startsWith('00')) && serials.some((s) => !s.startsWith('00')),
    'both forms occur',
  );
  const again = await generateCertificates({ dnsNames: ['portcullis'], ipAddresses: [], days: 1 });
  t.not(x509(again.cert).serialNumber, x509(made.cert).serialNumber, 'serving certs differ between runs');
  t.not(x509(again.ca.cert).serialNumber, x509(made.ca.cert).serialNumber, 'CAs differ between runs');
});

t.test('a given CA signs the new cert and comes back unchanged', async (t) => {
  const renewed = await generateCertificates({
    dnsNames: ['portcullis'],
    ipAddresses: [],
    days: 10,
    ca: made.ca,
  });
  t.equal(renewed.ca.cert, made.ca.cert, 'CA cert byte-identical');
  t.equal(renewed.ca.key, made.ca.key, 'CA key byte-identical');
  t.ok(x509(renewed.cert).verify(x509(made.ca.cert).publicKey));
  t.not(renewed.key, made.key, 'a new serving key');
  t.equal(authorityKeyId(renewed.cert), caSki(made));
});

t.test('a serving cert never outlives its CA', async (t) => {
  const shortCa = await generateCertificates({ dnsNames: ['a'], ipAddresses: [], days: 2 });
  const leaf = await generateCertificates({ dnsNames: ['a'], ipAddresses: [], days: 30, ca: shortCa.ca });
  t.equal(x509(leaf.cert).validTo, x509(shortCa.ca.cert).validTo);
  const longCa = await generateCertificates({ dnsNames: ['a'], ipAddresses: [], days: 1, caDays: 100 });
  t.ok(Date.parse(x509(longCa.ca.cert).validTo) > Date.now() + 99 * DAY_MS, 'caDays sets a new CA apart');
  t.ok(Date.parse(x509(longCa.cert).validTo) < Date.now() + 2 * DAY_MS);
});

t.test('names that cannot go into a SAN are refused', async (t) => {
  const table: { dns?: string[]; ip?: string[]; problem: RegExp | undefined }[] = [
    { dns: ['portcullis.system.svc.cluster.local', 'a-b.c', '*.example.com', 'x1'], problem: undefined },
    { ip: ['10.0.0.1', 'fe80::1', '::ffff:10.0.0.1'], problem: undefined },
    { dns: [], ip: [], problem: /at least one/ },
    { dns: ['-a'], problem: /"-a" is not a DNS name/ },
    { dns: ['a..b'], problem: /"a\.\.b" is not a DNS name/ },
    { dns: ['a_b'], problem: /"a_b" is not a DNS name/ },
    { dns: ['x'.repeat(64)], problem: /is not a DNS name/ },
    { dns: ['*.com'], problem: /"\*\.com" is not a DNS name/ },
    { dns: ['127.0.0.1'], problem: /is an IP address/ },
    { ip: ['1.2.3'], problem: /"1\.2\.3" is not an IPv4 or IPv6 address/ },
    { ip: ['fe80::1%eth0'], problem: /is not an IPv4 or IPv6/ },
    { ip: ['localhost'], problem: /is not an IPv4 or IPv6/ },
  ];
  for (const row of table) {
    const problems = checkSubjectAltNames(row.dns ?? ['ok'], row.ip ?? []);
    if (row.problem === undefined) t.same(problems, [], JSON.stringify(row));
    else t.match(problems.join('\n'), row.problem, JSON.stringify(row));
  }
  await t.rejects(generateCertificates({ dnsNames: ['a_b'], ipAddresses: [], days: 1 }), {
    name: 'CertificateError',
    code: 'ERR_CERT_INVALID_NAME',
  });
  for (const days of [0, 1.5, 36_501, Number.NaN]) {
    await t.rejects(generateCertificates({ dnsNames: ['a'], ipAddresses: [], days }), {
      code: 'ERR_CERT_INVALID_DAYS',
    });
  }
  await t.rejects(generateCertificates({ dnsNames: ['a'], ipAddresses: [], days: 1, caDays: 0 }), {
    code: 'ERR_CERT_INVALID_DAYS',
  });
});

t.test('IPv4-mapped and compressed IPv6 SANs are encoded as 16 bytes', async (t) => {
  const certs = await generateCertificates({
    dnsNames: [],
    ipAddresses: ['::ffff:10.1.2.3', '2001:db8::1', '::'],
    days: 1,
  });
  t.equal(
    x509(certs.cert).subjectAltName,
    'IP Address:0:0:0:0:0:FFFF:A01:203, IP Address:2001:DB8:0:0:0:0:0:1, IP Address:0:0:0:0:0:0:0:0',
  );
  t.ok(x509(certs.cert).checkIP('10.1.2.3') === undefined, 'the mapped address is not an IPv4 SAN');
});

t.test('an unusable CA is refused with a code', async (t) => {
  const other = await generateCertificates({ dnsNames: ['a'], ipAddresses: [], days: 1 });
  const cases: { name: string; ca: { cert: string; key: string }; code: string }[] = [
    { name: 'not PEM', ca: { cert: 'nope', key: made.ca.key }, code: 'ERR_CA_UNREADABLE' },
    { name: 'key not PEM', ca: { cert: made.ca.cert, key: 'nope' }, code: 'ERR_CA_UNREADABLE' },
    { name: 'a serving cert as CA', ca: { cert: made.cert, key: made.key }, code: 'ERR_CA_NOT_CA' },
    { name: "another CA's key", ca: { cert: made.ca.cert, key: other.ca.key }, code: 'ERR_CA_KEY_MISMATCH' },
  ];
  for (const c of cases) {
    const check = checkCertificateAuthority(c.ca);
    t.match(check, { ok: false, code: c.code }, c.name);
    await t.rejects(
      generateCertificates({ dnsNames: ['a'], ipAddresses: [], days: 1, ca: c.ca }),
      { code: c.code },
      c.name,
    );
  }
  t.match(checkCertificateAuthority(made.ca, new Date(Date.now() + 31 * DAY_MS)), {
    ok: false,
    code: 'ERR_CA_EXPIRED',
    message: /expired on 20\d\d-/,
  });
  t.match(checkCertificateAuthority(made.ca), { ok: true, notAfter: Date });
  t.ok(new CertificateError('ERR_CA_NOT_CA', 'x') instanceof Error);
});

t.test('CAs made by openssl', { skip: hasOpenssl() ? false : 'no openssl on PATH' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-openssl-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const makeCa = (name: string, args: string[]): { cert: string; key: string } => {
    const cert = join(dir, `${name}.crt`);
    const key = join(dir, `${name}.key`);
    execFileSync(
      'openssl',
      ['req', '-x509', '-nodes', '-days', '30', '-keyout', key, '-out', cert, ...args],
      {
        stdio: 'ignore',
      },
    );
    return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
  };
  const caExt = [
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ];

  // UTF8String with non-ASCII text and a multi-valued RDN: forge's own re-encoding of either differs
  // from the original bytes, which Go would not match to the CA.
  const foreign = makeCa('foreign', [
    '-newkey',
    'rsa:2048',
    '-utf8',
    '-multivalue-rdn',
    '-subj',
    '/O=Ärger GmbH/OU=ops+CN=acme-ca',
    ...caExt,
  ]);
  const signed = await generateCertificates({ dnsNames: ['svc'], ipAddresses: [], days: 1, ca: foreign });
  t.equal(rawNames(signed.cert).issuer, rawNames(foreign.cert).subject, 'issuer copied byte for byte');
  t.ok(x509(signed.cert).checkIssued(x509(foreign.cert)));
  t.ok(x509(signed.cert).verify(x509(foreign.cert).publicKey));

  const ec = makeCa('ec', [
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-subj',
    '/CN=ec-ca',
    ...caExt,
  ]);
  t.match(checkCertificateAuthority(ec), { ok: false, code: 'ERR_CA_NOT_RSA' });
});

/** Handshake result from a client that trusts only `ca`. */
async function handshake(
  certs: GeneratedCertificates,
  options: { host: string; servername?: string; ca?: string | undefined },
): Promise<{ authorized: boolean; error?: string; protocol?: string | null }> {
  const server = createServer({ key: certs.key, cert: certs.cert, minVersion: 'TLSv1.2' }, (socket) => {
    socket.end('ok');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, options.host, resolve);
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('server has no port');
  const { port } = address;
  try {
    return await new Promise((resolve) => {
      const socket: TLSSocket = connect({
        host: options.host,
        port,
        ...(options.servername === undefined ? {} : { servername: options.servername }),
        ...(options.ca === undefined ? {} : { ca: [options.ca] }),
      });
      socket.once('secureConnect', () => {
        resolve({ authorized: socket.authorized, protocol: socket.getProtocol() });
        socket.destroy();
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        resolve({ authorized: false, error: err.code ?? err.message });
      });
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

t.test('TLS handshake with the CA as the only trust anchor', async (t) => {
  t.match(
    await handshake(made, { host: '127.0.0.1', ca: made.ca.cert }),
    { authorized: true },
    'IP SAN 127.0.0.1',
  );
  t.match(
    await handshake(made, { host: '127.0.0.1', servername: 'portcullis.system.svc', ca: made.ca.cert }),
    { authorized: true },
    'DNS SAN via servername',
  );
  t.match(
    await handshake(made, { host: '127.0.0.1', servername: 'other.system.svc', ca: made.ca.cert }),
    { authorized: false, error: 'ERR_TLS_CERT_ALTNAME_INVALID' },
    'a name not in the SANs',
  );
  const other = await generateCertificates({ dnsNames: ['portcullis'], ipAddresses: ['127.0.0.1'], days: 1 });
  t.match(
    await handshake(made, { host: '127.0.0.1', ca: other.ca.cert }),
    { authorized: false, error: /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/ },
    'another CA does not vouch for it',
  );
  t.match(
    await handshake(made, { host: '127.0.0.1', ca: undefined }),
    { authorized: false, error: /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/ },
    'nor do the system roots',
  );
});

async function ipv6Loopback(): Promise<boolean> {
  const server = createNetServer();
  return new Promise((resolve) => {
    server.once('error', () => {
      resolve(false);
    });
    server.listen(0, '::1', () => {
      server.close(() => {
        resolve(true);
      });
    });
  });
}

t.test(
  'TLS handshake over IPv6 loopback',
  { skip: (await ipv6Loopback()) ? false : 'no ::1 here' },
  async (t) => {
    t.match(await handshake(made, { host: '::1', ca: made.ca.cert }), { authorized: true });
  },
);

// `portcullis certs`, in process.

const options = (out: string, extra: Partial<CertsOptions> = {}): CertsOptions => ({
  service: 'portcullis',
  namespace: 'portcullis-system',
  out,
  days: 365,
  caDays: 3650,
  dns: [],
  ip: [],
  ...extra,
});

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-certs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('certs writes the four files, keys private, and prints the caBundle', async (t) => {
  const out = join(await tempDir(t), 'nested', 'certs');
  const run = await runCerts(options(out, { dns: ['webhook.example.com'], ip: ['127.0.0.1'] }));
  t.equal(run.exitCode, 0, run.messages.join('\n'));
  const caCert = await readFile(join(out, 'ca.crt'), 'utf8');
  t.equal(run.output, `${Buffer.from(caCert).toString('base64')}\n`, 'stdout is the base64 caBundle alone');
  t.equal(Buffer.from(run.output.trim(), 'base64').toString('utf8'), caCert);
  for (const [file, mode] of [
    ['ca.key', 0o600],
    ['tls.key', 0o600],
  ] as const) {
    t.equal((await stat(join(out, file))).mode & 0o777, mode, `${file} is 0${mode.toString(8)}`);
  }
  t.equal((await stat(join(out, 'tls.crt'))).mode & 0o077 & ~0o044, 0, 'tls.crt is not writable by others');
  const leaf = x509(await readFile(join(out, 'tls.crt'), 'utf8'));
  t.equal(
    leaf.subjectAltName,
    'DNS:portcullis, DNS:portcullis.portcullis-system, DNS:portcullis.portcullis-system.svc, ' +
      'DNS:portcullis.portcullis-system.svc.cluster.local, DNS:webhook.example.com, IP Address:127.0.0.1',
  );
  t.ok(leaf.checkPrivateKey(createPrivateKey(await readFile(join(out, 'tls.key'), 'utf8'))));
  t.ok(leaf.checkIssued(x509(caCert)));
  t.match(run.messages.join('\n'), /new CA .*ca\.crt, valid until 20\d\d-/);
  t.ok(Date.parse(x509(caCert).validTo) > Date.now() + 3600 * DAY_MS, 'the CA gets --ca-days');
});

t.test('renewal keeps ca.crt byte-identical and replaces the serving pair', async (t) => {
  const out = await tempDir(t);
  const first = await runCerts(options(out));
  const before = {
    caCrt: await readFile(join(out, 'ca.crt')),
    caKey: await readFile(join(out, 'ca.key')),
    tlsCrt: await readFile(join(out, 'tls.crt')),
  };
  // A key left world-readable by someone else: renewal must not keep that mode.
  await chmod(join(out, 'tls.key'), 0o644);
  const second = await runCerts(options(out, { days: 30 }));
  t.equal(second.exitCode, 0, second.messages.join('\n'));
  t.equal(second.output, first.output, 'same caBundle');
  t.ok((await readFile(join(out, 'ca.crt'))).equals(before.caCrt), 'ca.crt unchanged');
  t.ok((await readFile(join(out, 'ca.key'))).equals(before.caKey), 'ca.key unchanged');
  t.notOk((await readFile(join(out, 'tls.crt'))).equals(before.tlsCrt), 'tls.crt renewed');
  t.equal((await stat(join(out, 'tls.key'))).mode & 0o777, 0o600, 'tls.key back to 0600');
  t.match(second.messages.join('\n'), /kept the CA .*the caBundle is unchanged/);
  t.same((await readdir(out)).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'], 'no temporary files left');
});

t.test('a CA that ends before the serving cert would is reported', async (t) => {
  const out = await tempDir(t);
  const first = await runCerts(options(out, { days: 5, caDays: 5 }));
  t.equal(first.exitCode, 0);
  const second = await runCerts(options(out, { days: 30 }));
  t.equal(second.exitCode, 0);
  t.match(second.messages.join('\n'), /warning: the CA ends before the 30 days asked for/);
});

t.test('certs refuses an unusable CA in the directory with exit 2', async (t) => {
  const fresh = async (): Promise<string> => {
    const out = await tempDir(t);
    t.equal((await runCerts(options(out))).exitCode, 0);
    return out;
  };
  const expectRefusal = async (out: string, message: RegExp, label: string): Promise<void> => {
    const before = await readFile(join(out, 'tls.crt')).catch(() => undefined);
    const run = await runCerts(options(out));
    t.equal(run.exitCode, 2, label);
    t.equal(run.output, '', `${label}: nothing on stdout`);
    t.match(run.messages.join('\n'), message, label);
    const after = await readFile(join(out, 'tls.crt')).catch(() => undefined);
    t.same(after, before, `${label}: tls.crt untouched`);
  };

  let out = await fresh();
  await rm(join(out, 'ca.key'));
  await expectRefusal(out, /ca\.crt is there but .*ca\.key is not/, 'key missing');

  out = await fresh();
  await rm(join(out, 'ca.crt'));
  await expectRefusal(out, /ca\.key is there but .*ca\.crt is not/, 'cert missing');

  out = await fresh();
  await copyFile(join(out, 'tls.key'), join(out, 'ca.key'));
  await expectRefusal(out, /cannot sign: the CA key does not belong to the CA certificate/, 'mismatched key');

  out = await fresh();
  await copyFile(join(out, 'tls.crt'), join(out, 'ca.crt'));
  await copyFile(join(out, 'tls.key'), join(out, 'ca.key'));
  await expectRefusal(out, /cannot sign: the CA certificate is not a CA/, 'serving cert as CA');

  out = await fresh();
  await writeFile(join(out, 'ca.crt'), 'garbage\n');
  await expectRefusal(out, /cannot sign: the CA certificate is not a PEM X\.509 certificate/, 'garbage');

  // Unreadable without relying on permissions (tests may run as root): a directory in its place.
  out = await fresh();
  await rm(join(out, 'ca.crt'));
  await mkdir(join(out, 'ca.crt'));
  await expectRefusal(out, /cannot read .*ca\.crt \(EISDIR\)/, 'unreadable');
});

t.test('certs refuses bad options and unwritable output with exit 2', async (t) => {
  const dir = await tempDir(t);
  const cases: { extra: Partial<CertsOptions>; message: RegExp }[] = [
    { extra: { service: 'Bad_Name' }, message: /--service "Bad_Name" is not a Service name/ },
    { extra: { namespace: 'a.b' }, message: /--namespace "a\.b" is not a namespace name/ },
    { extra: { ip: ['300.1.1.1'] }, message: /IP address "300\.1\.1\.1"/ },
    { extra: { dns: ['no spaces'] }, message: /DNS name "no spaces"/ },
    { extra: { days: 0 }, message: /days must be a whole number from 1/ },
  ];
  for (const c of cases) {
    const run = await runCerts(options(join(dir, 'x'), c.extra));
    t.equal(run.exitCode, 2, JSON.stringify(c.extra));
    t.match(run.messages.join('\n'), c.message);
  }
  await writeFile(join(dir, 'file'), '');
  const notADirectory = await runCerts(options(join(dir, 'file')));
  t.equal(notADirectory.exitCode, 2);
  t.match(notADirectory.messages.join('\n'), /cannot read .*file\/ca\.crt \(ENOTDIR\)/);

  // A write that fails half-way (permissions would not stop root): a directory where tls.crt goes.
  const out = join(dir, 'half');
  await mkdir(join(out, 'tls.crt', 'occupied'), { recursive: true });
  const half = await runCerts(options(out));
  t.equal(half.exitCode, 2);
  t.equal(half.output, '');
  t.match(
    half.messages.join('\n'),
    /cannot write to .*half \((EISDIR|ENOTEMPTY|EEXIST)\)\n.*already written: .*ca\.key, .*ca\.crt, .*tls\.key/,
  );
  t.same(
    (await readdir(out)).sort(),
    ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'],
    'no temporary file left behind',
  );
});

// `portcullis certs` through bin/, as a user runs it: needs `npm run build` first.

const SOURCES_AND_BUILDS = [
  ['src/cli/certs.ts', 'dist/cli/certs.js'],
  ['src/tls/certs.ts', 'dist/tls/certs.js'],
  ['src/cli/main.ts', 'dist/cli/main.js'],
] as const;

async function staleBuild(): Promise<string | undefined> {
  for (const [source, built] of SOURCES_AND_BUILDS) {
    const builtAt = await stat(join(ROOT, built)).then(
      (s) => s.mtimeMs,
      () => undefined,
    );
    if (builtAt === undefined || builtAt < (await stat(join(ROOT, source))).mtimeMs) {
      return `${built} is missing or older than ${source}: run \`npm run build\` first`;
    }
  }
  return undefined;
}

/**
 * Runs bin/portcullis as a user's shell would. tap's coverage hook (@tapjs/processinfo) puts itself
 * into every child's NODE_OPTIONS, and under it Node 20 and 24 load the extensionless ESM bin as
 * CommonJS and die with ERR_REQUIRE_CYCLE_MODULE; the shell clears it before exec'ing node.
 */
function portcullis(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      '/bin/sh',
      ['-c', 'NODE_OPTIONS= exec "$0" "$@"', process.execPath, join(ROOT, 'bin/portcullis'), ...args],
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

t.test('bin/portcullis certs end to end', async (t) => {
  const stale = await staleBuild();
  if (stale !== undefined) {
    t.fail(stale);
    return;
  }
  const out = join(await tempDir(t), 'certs');
  const args = ['certs', '--service', 'portcullis', '--namespace', 'portcullis-system', '--out', out];
  const first = await portcullis([...args, '--ip', '127.0.0.1', '--dns', 'localhost', '--days', '90']);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stdout, /^[A-Za-z0-9+/]+=*\n$/, 'stdout is one base64 line');
  t.equal(Buffer.from(first.stdout, 'base64').toString('utf8'), await readFile(join(out, 'ca.crt'), 'utf8'));
  t.match(first.stderr, /portcullis: new CA/);
  t.match(first.stderr, /caBundle .* printed on stdout/);
  const leaf = x509(await readFile(join(out, 'tls.crt'), 'utf8'));
  t.match(leaf.subjectAltName, /DNS:localhost, IP Address:127\.0\.0\.1$/);

  const second = await portcullis(args);
  t.equal(second.code, 0, second.stderr);
  t.equal(second.stdout, first.stdout, 'renewal prints the same caBundle');
  t.match(second.stderr, /kept the CA/);

  const usage = await portcullis(['certs', '--service', 'portcullis', '--out', out]);
  t.equal(usage.code, 2, 'missing --namespace is a usage error');
  t.match(usage.stderr, /required option '--namespace <ns>' not specified/);
  t.equal(usage.stdout, '');

  const badDays = await portcullis([...args, '--days', 'ten']);
  t.equal(badDays.code, 2);
  t.match(badDays.stderr, /days must be a whole number, not "ten"/);

  await copyFile(join(out, 'tls.key'), join(out, 'ca.key'));
  const mismatched = await portcullis(args);
  t.equal(mismatched.code, 2);
  t.match(mismatched.stderr, /cannot sign: the CA key does not belong to the CA certificate/);
  t.equal(mismatched.stdout, '');

  const help = await portcullis(['certs', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /--service <name>/);
});
