// Peer conformance: every case of ../shared/conformance is judged. A pod-security-admission fixture
// is judged by one `podSecurity` rule at the fixture's level and version, and must agree: no reason
// excuses a disagreement with the implementation the Pod Security Standards are defined by. A
// gatekeeper or kyverno case is judged for its concern alone (a one-rule RuleSet made from the
// peer's settings) and compared with the peer's own verdict; a mismatch passes only when it rests
// on a semantic of the peer that Portcullis deliberately does not share, and then it is counted
// apart with that reason. Any other mismatch fails. The corpus is read in place, never copied.

import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import t from 'tap';
import { createRequestFor, requestFromSavedReview } from '../src/admission/review.js';
import { parseDocuments } from '../src/config/documents.js';
import { compileRuleSet, evaluate, isObject, type AdmissionRequest } from '../src/core/index.js';

const CORPUS = resolve(import.meta.dirname, '../../shared/conformance');
const INDEX = resolve(CORPUS, 'index.json');

interface Case {
  id: string;
  source: string;
  file: string;
  docIndex: number;
  kind: string;
  concern: string;
  expect: 'allow' | 'deny';
  params: Record<string, unknown>;
}

type Setup = { rule: { check: string; params: Record<string, unknown> } } | { notExpressible: string };

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
const parametersOf = (c: Case): Record<string, unknown> =>
  isObject(c.params['parameters']) ? { ...c.params['parameters'] } : {};

/** A peer registry pattern as a Portcullis `registries` entry (an allow-list of repository prefixes). */
function registryEntry(pattern: string): string {
  // `openpolicyagent/` and `bar.io/*` name everything below them; `ubuntu` names one repository.
  const namesPrefix = /\/\*?$/.test(pattern);
  let entry = pattern.replace(/\/?\*$/, '').replace(/\/$/, '');
  entry = entry.replace(/:[\w][\w.-]*$/, ''); // a pinned tag cannot be expressed: trust the repository
  const first = entry.split('/')[0] ?? '';
  const hasHost = /[.:]/.test(first) || first === 'localhost';
  if (hasHost) return entry;
  return namesPrefix || entry.includes('/') ? `docker.io/${entry}` : `docker.io/library/${entry}`;
}

/** A peer's host port allowance (`80`, `"5000-6000"`, gatekeeper's min/max) as `hostPorts` ranges; 0 is "none". */
function portRanges(c: Case): { min: number; max: number }[] {
  const p = parametersOf(c);
  if (typeof p['min'] === 'number' && typeof p['max'] === 'number') return [{ min: p['min'], max: p['max'] }];
  const listed = Array.isArray(c.params['allowedHostPorts']) ? c.params['allowedHostPorts'] : [];
  return listed.flatMap((entry): { min: number; max: number }[] => {
    if (typeof entry === 'number') return entry === 0 ? [] : [{ min: entry, max: entry }];
    const range = typeof entry === 'string' ? /^(\d+)-(\d+)$/.exec(entry) : null;
    if (range === null) throw new Error(`${c.id}: host port entry ${JSON.stringify(entry)}`);
    return [{ min: Number(range[1]), max: Number(range[2]) }];
  });
}

/** Every Linux capability (capabilities(7)): what a rule that does not judge adds lets through. */
const LINUX_CAPABILITIES = [
  'AUDIT_CONTROL',
  'AUDIT_READ',
  'AUDIT_WRITE',
  'BLOCK_SUSPEND',
  'BPF',
  'CHECKPOINT_RESTORE',
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'IPC_LOCK',
  'IPC_OWNER',
  'KILL',
  'LEASE',
  'LINUX_IMMUTABLE',
  'MAC_ADMIN',
  'MAC_OVERRIDE',
  'MKNOD',
  'NET_ADMIN',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_RAW',
  'PERFMON',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYSLOG',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_CHROOT',
  'SYS_MODULE',
  'SYS_NICE',
  'SYS_PACCT',
  'SYS_PTRACE',
  'SYS_RAWIO',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'WAKE_ALARM',
];

function setupFor(c: Case): Setup {
  if (c.source === 'pod-security-admission') {
    return {
      rule: { check: 'podSecurity', params: { level: c.params['level'], version: c.params['version'] } },
    };
  }
  switch (c.concern) {
    case 'privileged':
      return { rule: { check: 'privileged', params: {} } };
    case 'hostPath': {
      const allowed = parametersOf(c)['allowedHostPaths'];
      return { rule: { check: 'hostPath', params: { allowedPaths: Array.isArray(allowed) ? allowed : [] } } };
    }
    case 'seccomp':
      return {
        rule: { check: 'seccomp', params: { requireProfile: c.params['profileRequired'] !== false } },
      };
    case 'registry':
      if (c.params['registryMode'] === 'denylist') {
        return { notExpressible: 'peer lists denied registries; Portcullis trusts an allow-list only' };
      }
      return {
        rule: {
          check: 'trustedRegistries',
          params: { registries: strings(c.params['patterns']).map(registryEntry) },
        },
      };
    case 'capabilities': {
      const p = parametersOf(c);
      // A kyverno case is the verdict of the rules it names only: `require-drop-all` judges drops
      // and lets any capability be added; `adding-capabilities(-strict)` judges adds only.
      const rules = strings(c.params['rules']);
      const judgesAdd = rules.length === 0 || rules.some((r) => r.startsWith('adding-capabilities'));
      const judgesDrop = rules.length === 0 || rules.includes('require-drop-all');
      const allowedAdd = judgesAdd
        ? strings(c.params['allowedAdd'] ?? p['allowedCapabilities'])
        : LINUX_CAPABILITIES;
      const requiredDrop = judgesDrop
        ? strings(c.params['requiredDrop'] ?? p['requiredDropCapabilities'])
        : [];
      return { rule: { check: 'capabilities', params: { allowedAdd, requiredDrop } } };
    }
    case 'hostNamespaces':
      return { rule: { check: 'hostNamespaces', params: {} } };
    case 'hostPorts':
      return { rule: { check: 'hostPorts', params: { allowed: portRanges(c) } } };
    case 'allowPrivilegeEscalation':
      return { rule: { check: 'allowPrivilegeEscalation', params: {} } };
    case 'clusterAdminBinding': {
      const role =
        typeof c.params['deniedRoleRefName'] === 'string' ? c.params['deniedRoleRefName'] : 'cluster-admin';
      return { rule: { check: 'clusterAdminBinding', params: { roles: [role] } } };
    }
    default:
      throw new Error(`not a Portcullis concern: ${c.concern}`);
  }
}

/** A semantic the peer has and Portcullis deliberately does not, that this case's verdict rests on. */
function knownDifference(c: Case, object: unknown): string | undefined {
  if (c.params['operation'] === 'UPDATE')
    return 'peer skips UPDATE; Portcullis judges updates that change the pod';
  if (c.id.includes('exempt') && strings(parametersOf(c)['exemptImages']).length > 0) {
    return 'peer exempts images by name; Portcullis exempts namespaces and users, never images';
  }
  if (c.params['constraintKind'] === 'K8sPSPSeccomp') {
    return 'peer reads the legacy seccomp annotations, which Kubernetes no longer acts on';
  }
  if (
    c.concern === 'registry' &&
    strings(c.params['patterns']).some((p) => /:[\w][\w.-]*$/.test(p) && !p.endsWith('*'))
  ) {
    return 'peer pins an exact image tag; Portcullis trusts repositories';
  }
  if (
    c.concern === 'clusterAdminBinding' &&
    isObject(object) &&
    isObject(object['roleRef']) &&
    object['roleRef']['kind'] === 'Role'
  ) {
    return 'peer matches roleRef.name only; a namespaced Role named cluster-admin is not the ClusterRole';
  }
  return undefined;
}

function requestOf(object: unknown): AdmissionRequest | string {
  if (!isObject(object) || typeof object['apiVersion'] !== 'string' || typeof object['kind'] !== 'string') {
    return 'not a Kubernetes object';
  }
  if (object['kind'] === 'AdmissionReview') {
    const parsed = requestFromSavedReview(object, 'default');
    return parsed.ok ? parsed.request : parsed.error;
  }
  return createRequestFor({ ...object, apiVersion: object['apiVersion'], kind: object['kind'] }, 'default');
}

t.test(
  'peer conformance corpus',
  { skip: existsSync(INDEX) ? false : `no corpus at ${INDEX}` },
  async (t) => {
    const cases = JSON.parse(readFileSync(INDEX, 'utf8')) as Case[];
    const documents = new Map<string, unknown[]>();
    const tally = new Map<string, { total: number; agree: number; apart: Map<string, number> }>();
    const unexplained: string[] = [];

    for (const c of cases) {
      let docs = documents.get(c.file);
      if (docs === undefined) {
        const parsed = parseDocuments(readFileSync(resolve(CORPUS, c.file), 'utf8'));
        if (!parsed.ok) throw new Error(`${c.file}:${parsed.line}: ${parsed.message}`);
        docs = parsed.documents.map((d) => d.value);
        documents.set(c.file, docs);
      }
      const object = docs[c.docIndex];
      const key = `${c.source} ${c.concern}`;
      const row = tally.get(key) ?? { total: 0, agree: 0, apart: new Map<string, number>() };
      tally.set(key, row);
      row.total++;

      const setup = setupFor(c);
      if ('notExpressible' in setup) {
        row.apart.set(setup.notExpressible, (row.apart.get(setup.notExpressible) ?? 0) + 1);
        continue;
      }
      const compiled = compileRuleSet({
        apiVersion: 'portcullis.io/v1',
        kind: 'RuleSet',
        rules: [{ name: 'r', ...setup.rule }],
      });
      if (!compiled.ok)
        throw new Error(
          `${c.id}: RuleSet from peer settings does not compile: ${JSON.stringify(compiled.errors)}`,
        );
      const request = requestOf(object);
      if (typeof request === 'string') throw new Error(`${c.id}: ${request}`);
      const verdict = evaluate(request, compiled.ruleset).allowed ? 'allow' : 'deny';
      if (verdict === c.expect) {
        row.agree++;
        continue;
      }
      // The Pod Security Standards are what pod-security-admission does: no reason excuses a miss.
      const reason =
        c.source === 'pod-security-admission'
          ? undefined
          : knownDifference(
              c,
              isObject(object) && object['kind'] === 'AdmissionReview' ? request.object : object,
            );
      if (reason === undefined) unexplained.push(`${c.id}: peer ${c.expect}, Portcullis ${verdict}`);
      else row.apart.set(reason, (row.apart.get(reason) ?? 0) + 1);
    }

    let total = 0;
    let agree = 0;
    for (const [key, row] of [...tally].sort()) {
      total += row.total;
      agree += row.agree;
      t.comment(`${key}: ${row.agree}/${row.total} agree`);
      for (const [reason, n] of row.apart) t.comment(`    ${n} apart: ${reason}`);
    }
    t.comment(
      `conformance: ${agree}/${total} agree, ${total - agree - unexplained.length} apart with a reason, ${unexplained.length} unexplained`,
    );
    t.equal(total, cases.length, 'every case of the corpus is judged');
    t.ok(cases.length > 0, 'the corpus has cases');
    t.same(unexplained, [], 'every disagreement with a peer rests on a stated semantic difference');
  },
);
