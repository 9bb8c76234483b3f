// Certificates for the webhook's TLS: a CA, whose PEM becomes the webhook configuration's `caBundle`,
// and a serving cert it signs for the Service's DNS names and any IP addresses. The API server checks
// them with Go's crypto/x509, the strictest reader they meet, so the encoding follows it: names in
// SANs only (Go ignores the CN), positive serials in minimal DER, the issuer name byte-equal to the
// CA's subject (Go finds a parent by raw subject bytes), SHA-256 RSA signatures.
//
// node-forge builds the X.509 structures (RSA only). Keys come from Node's native generator in the
// libuv thread pool: about 0.1–0.3 s for two 2048-bit keys here against 2–4 s in forge's pure JS,
// and the event loop keeps serving while they are made.

import { createPrivateKey, generateKeyPair, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import forge from 'node-forge';

export interface PemPair {
  cert: string;
  key: string;
}

export interface GenerateCertificatesOptions {
  dnsNames: string[];
  ipAddresses: string[];
  /** Validity of the serving cert, cut short to the CA's own end when the CA ends first. */
  days: number;
  /** A CA to sign with instead of making one, so that the `caBundle` stays the same. */
  ca?: PemPair;
  /** Validity of a CA made here (default: `days`). Ignored when `ca` is given. */
  caDays?: number;
  /**
   * `server` (the default): a serving cert (extKeyUsage serverAuth). `client`: a cert a caller
   * presents (clientAuth), such as the API server's for `serve --client-ca`; its first DNS name is
   * also its CN, the name `--client-name` matches.
   */
  usage?: 'server' | 'client';
}

export interface GeneratedCertificates {
  ca: PemPair;
  cert: string;
  key: string;
}

export type CertificateErrorCode =
  | 'ERR_CERT_INVALID_NAME'
  | 'ERR_CERT_INVALID_DAYS'
  | 'ERR_CA_UNREADABLE'
  | 'ERR_CA_NOT_CA'
  | 'ERR_CA_NOT_RSA'
  | 'ERR_CA_KEY_MISMATCH'
  | 'ERR_CA_EXPIRED'
  | 'ERR_CA_UNSUPPORTED';

/** Bad options or an unusable CA. Callers that take these from a user check them first with
 * `checkSubjectAltNames`, `checkDays` and `checkCertificateAuthority`, which return the same codes. */
export class CertificateError extends Error {
  constructor(
    readonly code: CertificateErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CertificateError';
  }
}

export type CaCheck =
  { ok: true; notAfter: Date } | { ok: false; code: CertificateErrorCode; message: string };

const KEY_BITS = 2048;
const DAY_MS = 86_400_000;
/** How far notBefore is backdated, so a node whose clock lags a little still accepts a fresh cert. */
const CLOCK_SKEW_MS = 5 * 60_000;
const MAX_DAYS = 36_500;
const CA_COMMON_NAME = 'portcullis-ca';
/** X.520 upper bound for a commonName. */
const MAX_COMMON_NAME = 64;
const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

const generateRsaKeyPair = promisify(generateKeyPair);

interface KeyPair {
  pem: string;
  privateKey: forge.pki.rsa.PrivateKey;
  publicKey: forge.pki.rsa.PublicKey;
}

interface Authority {
  pem: PemPair;
  cert: forge.pki.Certificate;
  privateKey: forge.pki.rsa.PrivateKey;
  keyIdentifier: string;
  notAfter: Date;
}

export async function generateCertificates(
  opts: GenerateCertificatesOptions,
): Promise<GeneratedCertificates> {
  const nameProblems = checkSubjectAltNames(opts.dnsNames, opts.ipAddresses);
  if (nameProblems.length > 0) throw new CertificateError('ERR_CERT_INVALID_NAME', nameProblems.join('; '));
  for (const days of opts.ca === undefined ? [opts.days, opts.caDays ?? opts.days] : [opts.days]) {
    const problem = checkDays(days);
    if (problem !== undefined) throw new CertificateError('ERR_CERT_INVALID_DAYS', problem);
  }
  const now = Date.now();
  const notBefore = new Date(now - CLOCK_SKEW_MS);

  // Both keys at once: the thread pool makes them on two cores.
  const [servingKey, authority] = await Promise.all([
    newKeyPair(),
    opts.ca === undefined
      ? newAuthority(notBefore, new Date(now + (opts.caDays ?? opts.days) * DAY_MS))
      : loadAuthority(opts.ca),
  ]);

  const requestedEnd = now + opts.days * DAY_MS;
  const notAfter = new Date(Math.min(requestedEnd, authority.notAfter.getTime()));
  const dnsNames = unique(opts.dnsNames);
  const ipAddresses = unique(opts.ipAddresses);
  // Only for people reading the cert (Go ignores it); forge writes it as a PrintableString, which has
  // no "*".
  const commonName =
    dnsNames.find((n) => n.length <= MAX_COMMON_NAME && !n.includes('*')) ?? ipAddresses[0] ?? 'portcullis';

  const cert = forge.pki.createCertificate();
  cert.publicKey = servingKey.publicKey;
  cert.serialNumber = randomSerialNumber();
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  // Replaced by the CA's subject bytes when signing; set so that forge's own view is right too.
  cert.setIssuer(authority.cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', critical: true, cA: false },
    { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true },
    opts.usage === 'client'
      ? { name: 'extKeyUsage', clientAuth: true }
      : { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        ...dnsNames.map((value) => ({ type: 2, value })),
        ...ipAddresses.map((ip) => ({ type: 7, value: ipAddressBytes(ip) })),
      ],
    },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: authority.keyIdentifier },
  ]);
  signWithIssuerBytes(cert, authority);

  return { ca: authority.pem, cert: certificateToPem(cert), key: servingKey.pem };
}

/** Problems with the SANs, one sentence each; empty when they can go into a certificate. */
export function checkSubjectAltNames(dnsNames: readonly string[], ipAddresses: readonly string[]): string[] {
  const problems: string[] = [];
  if (dnsNames.length + ipAddresses.length === 0)
    problems.push('at least one DNS name or IP address is required');
  for (const name of dnsNames) {
    const problem = dnsNameProblem(name);
    if (problem !== undefined) problems.push(`DNS name "${name}" ${problem}`);
  }
  for (const ip of ipAddresses) {
    if (ipAddressBytes(ip) === undefined) problems.push(`IP address "${ip}" is not an IPv4 or IPv6 address`);
  }
  return problems;
}

export function checkDays(days: number): string | undefined {
  return Number.isInteger(days) && days >= 1 && days <= MAX_DAYS
    ? undefined
    : `days must be a whole number from 1 to ${MAX_DAYS}, not ${days}`;
}

/**
 * Whether a CA can sign serving certs: both PEMs readable, a CA certificate, an RSA key (forge signs
 * nothing else) that belongs to it, and not expired. Checked with Node's own X.509 reader, so a
 * file forge would misread is caught with a plain reason.
 */
export function checkCertificateAuthority(ca: PemPair, now: Date = new Date()): CaCheck {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(ca.cert);
  } catch {
    return {
      ok: false,
      code: 'ERR_CA_UNREADABLE',
      message: 'the CA certificate is not a PEM X.509 certificate',
    };
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(ca.key);
  } catch {
    return {
      ok: false,
      code: 'ERR_CA_UNREADABLE',
      message: 'the CA key is not an unencrypted PEM private key',
    };
  }
  if (!x509.ca)
    return {
      ok: false,
      code: 'ERR_CA_NOT_CA',
      message: 'the CA certificate is not a CA (basicConstraints cA is not true)',
    };
  if (x509.publicKey.asymmetricKeyType !== 'rsa' || key.asymmetricKeyType !== 'rsa') {
    return {
      ok: false,
      code: 'ERR_CA_NOT_RSA',
      message: 'the CA key is not an RSA key (node-forge signs with RSA only)',
    };
  }
  if (!x509.checkPrivateKey(key)) {
    return {
      ok: false,
      code: 'ERR_CA_KEY_MISMATCH',
      message: 'the CA key does not belong to the CA certificate',
    };
  }
  const notAfter = new Date(x509.validTo);
  if (Number.isNaN(notAfter.getTime())) {
    return {
      ok: false,
      code: 'ERR_CA_UNREADABLE',
      message: `the CA certificate has an unreadable end date (${x509.validTo})`,
    };
  }
  if (notAfter.getTime() <= now.getTime()) {
    return {
      ok: false,
      code: 'ERR_CA_EXPIRED',
      message: `the CA certificate expired on ${notAfter.toISOString()}`,
    };
  }
  return { ok: true, notAfter };
}

/**
 * A serial with 128 random bits, as positive minimal DER: leading zero bytes dropped, and one put back
 * only where the top bit would otherwise read as a sign (Go rejects negative serials and
 * non-minimal integers).
 */
export function randomSerialNumber(): string {
  for (;;) {
    const hex = randomBytes(16)
      .toString('hex')
      .replace(/^(?:00)+/, '');
    if (hex === '') continue;
    return Number.parseInt(hex.slice(0, 2), 16) >= 0x80 ? `00${hex}` : hex;
  }
}

async function newKeyPair(): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateRsaKeyPair('rsa', {
    modulusLength: KEY_BITS,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return {
    pem: privateKey,
    privateKey: forge.pki.privateKeyFromPem(privateKey),
    publicKey: forge.pki.publicKeyFromPem(publicKey),
  };
}

async function newAuthority(notBefore: Date, notAfter: Date): Promise<Authority> {
  const keys = await newKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerialNumber();
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  const name = [{ name: 'commonName', value: CA_COMMON_NAME }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    // pathLen 0: this CA signs serving certs, never another CA.
    { name: 'basicConstraints', critical: true, cA: true, pathLenConstraint: 0 },
    { name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return {
    pem: { cert: certificateToPem(cert), key: keys.pem },
    cert,
    privateKey: keys.privateKey,
    keyIdentifier: cert.generateSubjectKeyIdentifier().getBytes(),
    notAfter,
  };
}

function loadAuthority(pem: PemPair): Promise<Authority> {
  const check = checkCertificateAuthority(pem);
  if (!check.ok) return Promise.reject(new CertificateError(check.code, check.message));
  let cert: forge.pki.Certificate;
  let privateKey: forge.pki.rsa.PrivateKey;
  try {
    cert = forge.pki.certificateFromPem(pem.cert);
    privateKey = forge.pki.privateKeyFromPem(pem.key);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return Promise.reject(
      new CertificateError('ERR_CA_UNREADABLE', `node-forge cannot read the CA: ${reason}`),
    );
  }
  // The authority key id must equal the CA's own subject key id where it has one, whatever method
  // computed it; forge's SHA-1 of the key is the RFC 5280 default for a CA without one.
  const ski = cert.getExtension('subjectKeyIdentifier');
  const keyIdentifier =
    ski !== undefined && 'subjectKeyIdentifier' in ski && typeof ski.subjectKeyIdentifier === 'string'
      ? forge.util.hexToBytes(ski.subjectKeyIdentifier)
      : cert.generateSubjectKeyIdentifier().getBytes();
  return Promise.resolve({ pem, cert, privateKey, keyIdentifier, notAfter: check.notAfter });
}

/** forge writes CRLF line ends; the files people diff and paste are LF. */
function certificateToPem(cert: forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}

/**
 * Signs with the CA's subject copied byte for byte into the issuer. Go finds a cert's parent by raw
 * name bytes, and forge's re-encoding of a parsed name is not faithful: it UTF-8-encodes UTF8String
 * values a second time and splits multi-valued RDNs.
 */
function signWithIssuerBytes(cert: forge.pki.Certificate, authority: Authority): void {
  // forge's own signing first: it sets the signature algorithm and assembles the TBSCertificate.
  cert.sign(authority.privateKey, forge.md.sha256.create());
  const fields = tbsNameFields(cert);
  const caSubject = tbsNameFields(authority.cert)?.subject;
  if (fields === undefined || caSubject === undefined) {
    throw new CertificateError('ERR_CA_UNSUPPORTED', 'the CA certificate has no readable subject name');
  }
  fields.list[fields.issuerIndex] = caSubject;
  const md = forge.md.sha256.create();
  md.update(forge.asn1.toDer(cert.tbsCertificate).getBytes());
  cert.signature = authority.privateKey.sign(md);
}

/** The TBSCertificate's fields, with where the issuer sits and the subject as encoded. */
function tbsNameFields(
  cert: forge.pki.Certificate,
): { list: forge.asn1.Asn1[]; issuerIndex: number; subject: forge.asn1.Asn1 } | undefined {
  const list = cert.tbsCertificate.value;
  if (!Array.isArray(list)) return undefined;
  // [0] version (explicit; absent from v1 certs), serialNumber, signature, issuer, validity, subject.
  const first = list[0];
  const issuerIndex = first !== undefined && first.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC ? 3 : 2;
  const subject = list[issuerIndex + 2];
  return subject === undefined ? undefined : { list, issuerIndex, subject };
}

function dnsNameProblem(name: string): string | undefined {
  if (isIP(name) !== 0) return 'is an IP address: give it as an IP address instead';
  if (name.length > 253) return 'is longer than 253 characters';
  const labels = name.split('.');
  // A wildcard only as the whole leftmost label, and not directly over a top-level domain.
  const checked = labels[0] === '*' && labels.length > 2 ? labels.slice(1) : labels;
  return checked.every((label) => DNS_LABEL.test(label))
    ? undefined
    : 'is not a DNS name (dot-separated labels of letters, digits and inner "-", at most 63 each)';
}

/**
 * The 4 or 16 bytes of an IP SAN, as a forge byte string. Written here because forge's own parser
 * mangles zone ids and IPv4-mapped IPv6 addresses instead of refusing them.
 */
function ipAddressBytes(ip: string): string | undefined {
  const family = isIP(ip);
  if (family === 4) return String.fromCharCode(...ip.split('.').map(Number));
  if (family !== 6 || ip.includes('%')) return undefined;
  let text = ip;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const groupsOf = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const left = groupsOf(head);
  const right = rest === undefined ? [] : groupsOf(rest);
  const groups =
    rest === undefined
      ? left
      : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  if (groups.length !== 8) return undefined;
  return groups
    .map((g) => String.fromCharCode(Number.parseInt(g, 16) >> 8, Number.parseInt(g, 16) & 0xff))
    .join('');
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
