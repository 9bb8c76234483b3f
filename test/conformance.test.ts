// Peer conformance: every case of ../shared/conformance whose concern is one of Portcullis' five
// checks is judged for that concern alone (a one-rule RuleSet made from the peer's settings) and
// compared with the peer's own verdict. A mismatch passes only when it rests on a semantic Portcullis
// deliberately does not share, and then it is counted apart with that reason; any other mismatch
// fails. The corpus is read in place, never copied into the project.

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

function setupFor(c: Case): Setup {
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
    return parsed.ok ? parsed.request : parsed.message;
  }
  return createRequestFor({ ...object, apiVersion: object['apiVersion'], kind: object['kind'] }, 'default');
}

const CONCERNS = new Set(['privileged', 'hostPath', 'registry', 'seccomp', 'clusterAdminBinding']);

t.test(
  'peer conformance corpus',
  { skip: existsSync(INDEX) ? false : `no corpus at ${INDEX}` },
  async (t) => {
    const cases = (JSON.parse(readFileSync(INDEX, 'utf8')) as Case[]).filter((c) => CONCERNS.has(c.concern));
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
      const reason = knownDifference(
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
    t.ok(cases.length > 0, 'the corpus has cases for the five checks');
    t.same(unexplained, [], 'every disagreement with a peer rests on a stated semantic difference');
  },
);
