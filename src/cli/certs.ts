// `portcullis certs`: a CA and a serving cert for the webhook's Service, written as ca.crt, ca.key,
// tls.crt and tls.key (the names a `kubernetes.io/tls` Secret and cert-manager use). The base64
// `caBundle` goes to stdout alone, so `portcullis certs … > cabundle` captures it; everything for
// people goes to stderr. An existing CA in the directory is reused, so renewing the serving cert
// leaves the caBundle in every webhook configuration valid. Exit 0: written; 2: bad options, or a
// CA in the directory that cannot be used, or a file that cannot be written.

import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import {
  CertificateError,
  checkCertificateAuthority,
  checkDays,
  checkSubjectAltNames,
  generateCertificates,
  type GeneratedCertificates,
  type PemPair,
} from '../tls/certs.js';

export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';
export const TLS_CERT_FILE = 'tls.crt';
export const TLS_KEY_FILE = 'tls.key';

const DEFAULT_DAYS = 365;
/** Long enough that serving certs are renewed many times under one caBundle. */
const DEFAULT_CA_DAYS = 3650;
const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export interface CertsOptions {
  service: string;
  namespace: string;
  out: string;
  days: number;
  caDays: number;
  dns: string[];
  ip: string[];
}

export interface CertsRun {
  exitCode: 0 | 2;
  /** What goes to stdout: the base64 caBundle and a newline, or nothing. */
  output: string;
  /** Lines for people (stderr). */
  messages: string[];
}

export function certsCommand(setExitCode: (code: number) => void): Command {
  return (
    new Command('certs')
      .description("Make (or renew) the webhook's serving cert, signed by a CA kept in the same directory")
      .requiredOption('--service <name>', 'name of the Service in front of the webhook')
      .requiredOption('--namespace <ns>', "the Service's namespace")
      .requiredOption('--out <dir>', 'directory for ca.crt, ca.key, tls.crt, tls.key (created if missing)')
      .option('--days <n>', 'validity of the serving cert in days', wholeDays, DEFAULT_DAYS)
      .option(
        '--ca-days <n>',
        'validity of a new CA in days (an existing one is kept)',
        wholeDays,
        DEFAULT_CA_DAYS,
      )
      .option('--dns <name>', 'another DNS name for the serving cert (repeatable)', collect)
      .option('--ip <addr>', 'an IP address for the serving cert, e.g. 127.0.0.1 (repeatable)', collect)
      // Subcommands added with addCommand do not inherit these; without them a usage error would
      // call process.exit(1) instead of returning 2 through main.
      .exitOverride()
      .showHelpAfterError()
      .addHelpText(
        'after',
        '\nPrints the base64 caBundle for the webhook configurations on stdout; the rest goes to stderr.\n' +
          'A ca.crt and ca.key already in the directory sign the new cert, so the caBundle stays the same;\n' +
          'remove both to start a new CA.\n' +
          'Exit status: 0 written, 2 bad options, an unusable CA in the directory, or a write failure.',
      )
      .action(async (options: Omit<CertsOptions, 'dns' | 'ip'> & { dns?: string[]; ip?: string[] }) => {
        const run = await runCerts({ ...options, dns: options.dns ?? [], ip: options.ip ?? [] });
        process.stdout.write(run.output);
        process.stderr.write(run.messages.map((m) => `portcullis: ${m}\n`).join(''));
        setExitCode(run.exitCode);
      })
  );
}

export function serviceDnsNames(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}

export async function runCerts(options: CertsOptions): Promise<CertsRun> {
  const fail = (...messages: string[]): CertsRun => ({ exitCode: 2, output: '', messages });

  const problems: string[] = [];
  if (!DNS_1123_LABEL.test(options.service))
    problems.push(`--service "${options.service}" is not a Service name`);
  if (!DNS_1123_LABEL.test(options.namespace))
    problems.push(`--namespace "${options.namespace}" is not a namespace name`);
  for (const days of [options.days, options.caDays]) {
    const problem = checkDays(days);
    if (problem !== undefined) problems.push(problem);
  }
  const dnsNames = [...serviceDnsNames(options.service, options.namespace), ...options.dns];
  problems.push(...checkSubjectAltNames(dnsNames, options.ip));
  if (problems.length > 0) return fail(...problems);

  const dir = options.out;
  const caCertPath = join(dir, CA_CERT_FILE);
  const caKeyPath = join(dir, CA_KEY_FILE);
  const existing = await readExistingCa(caCertPath, caKeyPath);
  if (!existing.ok) return fail(existing.error);
  if (existing.ca !== undefined) {
    const check = checkCertificateAuthority(existing.ca);
    if (!check.ok) {
      return fail(
        `${caCertPath} and ${caKeyPath} cannot sign: ${check.message}`,
        'remove both to make a new CA (the caBundle then changes in every webhook configuration)',
      );
    }
  }

  let made: GeneratedCertificates;
  try {
    made = await generateCertificates({
      dnsNames,
      ipAddresses: options.ip,
      days: options.days,
      caDays: options.caDays,
      ...(existing.ca === undefined ? {} : { ca: existing.ca }),
    });
  } catch (err) {
    // What the checks above cannot see, e.g. a CA forge cannot parse although Node can.
    if (err instanceof CertificateError) return fail(`${caCertPath}: ${err.message}`);
    throw err;
  }

  const written: string[] = [];
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (existing.ca === undefined) {
      // The key before the cert: a run cut short between the two leaves a key without a cert, which
      // the next run refuses, rather than a cert whose key is lost.
      await writeFileAtomic(caKeyPath, made.ca.key, 0o600);
      written.push(caKeyPath);
      await writeFileAtomic(caCertPath, made.ca.cert, 0o644);
      written.push(caCertPath);
    }
    // Each file is swapped in whole by rename, so a server watching them never reads half a file.
    await writeFileAtomic(join(dir, TLS_KEY_FILE), made.key, 0o600);
    written.push(join(dir, TLS_KEY_FILE));
    await writeFileAtomic(join(dir, TLS_CERT_FILE), made.cert, 0o644);
    written.push(join(dir, TLS_CERT_FILE));
  } catch (err) {
    return fail(
      `cannot write to ${dir} (${errorCode(err)})`,
      ...(written.length > 0 ? [`already written: ${written.join(', ')}`] : []),
    );
  }

  const ca = new X509Certificate(made.ca.cert);
  const serving = new X509Certificate(made.cert);
  const servingEnd = new Date(serving.validTo);
  const requestedEnd = Date.now() + options.days * 86_400_000;
  const messages = [
    existing.ca === undefined
      ? `new CA ${caCertPath}, valid until ${isoDate(ca.validTo)}`
      : `kept the CA in ${caCertPath} (valid until ${isoDate(ca.validTo)}): the caBundle is unchanged`,
    `serving cert ${join(dir, TLS_CERT_FILE)}, valid until ${isoDate(serving.validTo)}, for ${serving.subjectAltName ?? ''}`,
  ];
  // The serving cert cannot outlive its CA (generateCertificates cuts it short); say so while there
  // is time to roll a new caBundle out.
  if (servingEnd.getTime() < requestedEnd - 86_400_000) {
    messages.push(
      `warning: the CA ends before the ${options.days} days asked for; the serving cert ends with it. ` +
        'Make a new CA (remove ca.crt and ca.key) and roll out its caBundle before then',
    );
  }
  messages.push('caBundle (base64 of ca.crt) printed on stdout');
  return { exitCode: 0, output: `${Buffer.from(made.ca.cert).toString('base64')}\n`, messages };
}

type ExistingCa = { ok: true; ca: PemPair | undefined } | { ok: false; error: string };

/** The CA in the directory: both files, neither (a new CA is made), or a reason to stop. */
async function readExistingCa(certPath: string, keyPath: string): Promise<ExistingCa> {
  const [cert, key] = await Promise.all([readOptional(certPath), readOptional(keyPath)]);
  if (!cert.ok) return { ok: false, error: `cannot read ${certPath} (${cert.code})` };
  if (!key.ok) return { ok: false, error: `cannot read ${keyPath} (${key.code})` };
  if (cert.text === undefined && key.text === undefined) return { ok: true, ca: undefined };
  if (cert.text === undefined || key.text === undefined) {
    const [present, missing] = cert.text === undefined ? [keyPath, certPath] : [certPath, keyPath];
    return {
      ok: false,
      error: `${present} is there but ${missing} is not: restore it, or remove ${present} to make a new CA`,
    };
  }
  return { ok: true, ca: { cert: cert.text, key: key.text } };
}

async function readOptional(
  path: string,
): Promise<{ ok: true; text: string | undefined } | { ok: false; code: string }> {
  try {
    return { ok: true, text: await readFile(path, 'utf8') };
  } catch (err) {
    const code = errorCode(err);
    return code === 'ENOENT' ? { ok: true, text: undefined } : { ok: false, code };
  }
}

/**
 * Writes through a new temporary file renamed over the target: the mode holds from the first byte
 * (writeFile's `mode` is ignored for a file that already exists), and readers see old or new, whole.
 */
async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temporary, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(temporary, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await rename(temporary, path);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}

function wholeDays(value: string): number {
  const days = Number(value);
  const problem = /^\d+$/.test(value) ? checkDays(days) : `days must be a whole number, not "${value}"`;
  if (problem !== undefined) throw new InvalidArgumentError(problem);
  return days;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function isoDate(opensslDate: string): string {
  const date = new Date(opensslDate);
  return Number.isNaN(date.getTime()) ? opensslDate : date.toISOString();
}

function errorCode(err: unknown): string {
  return err instanceof Error && 'code' in err ? String(err.code) : String(err);
}
