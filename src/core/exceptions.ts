// Exceptions: a named, reasoned, expiring lift of some rules for some objects. They live in the
// RuleSet, so only who may edit the rules may grant one; an exception a workload could grant itself
// (a label, an annotation on the object) is how peers' exception mechanisms became CVEs.
//
// An exception lifts a violation when the rule is one it names, the request's namespace and object
// name match its patterns, every container image matches `images` (when given), and the decision's
// time lies in [granted, expires). Outside that window it is not applied and the decision says so,
// so an expired exception is visible where it stops working. One that matches every object (every
// namespace, name and image) is refused: it would be a rule switched off under another name. Pure:
// the time is an input.

import { compileGlobs, type Matcher } from './glob.js';
import { isObject } from './read.js';
import type { FieldPath } from './types.js';

/** What the RuleSet says, after the schema. */
export interface ExceptionDocument {
  name: string;
  rules: string[];
  namespaces: string[];
  names?: string[];
  images?: string[];
  reason: string;
  granted: string;
  expires: string;
}

export interface CompiledException {
  name: string;
  rules: ReadonlySet<string>;
  reason: string;
  granted: Date;
  expires: Date;
  namespace: Matcher;
  objectName: Matcher;
  /** Undefined: any images. */
  image: Matcher | undefined;
}

export const DEFAULT_MAX_LIFETIME_DAYS = 90;
const DAY_MS = 24 * 60 * 60 * 1000;
const patterns = { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } } as const;

export const EXCEPTION_POLICY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: { maxLifetimeDays: { type: 'integer', minimum: 1, maximum: 366 } },
} as const;

export const EXCEPTIONS_SCHEMA = {
  type: 'array',
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'rules', 'namespaces', 'reason', 'granted', 'expires'],
    properties: {
      name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 },
      rules: patterns,
      namespaces: patterns,
      names: patterns,
      images: patterns,
      reason: { type: 'string', minLength: 10, maxLength: 1024 },
      granted: { type: 'string', minLength: 1 },
      expires: { type: 'string', minLength: 1 },
    },
  },
} as const;

/** `2027-01-31` (midnight UTC) or an RFC 3339 date-time with a zone. */
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function parseInstant(text: string): Date | undefined {
  if (!DATE_RE.test(text) && !DATE_TIME_RE.test(text)) return undefined;
  const day = text.slice(0, 10);
  // Parses literals written in the RuleSet; the core never reads the clock (the time of a
  // decision is EvaluationContext.now).
  // eslint-disable-next-line no-restricted-globals
  const midnight = new Date(`${day}T00:00:00Z`);
  // `2026-02-30` parses to March: refuse what the calendar does not have.
  if (Number.isNaN(midnight.getTime()) || midnight.toISOString().slice(0, 10) !== day) return undefined;
  if (DATE_RE.test(text)) return midnight;
  // eslint-disable-next-line no-restricted-globals
  const instant = new Date(text);
  return Number.isNaN(instant.getTime()) ? undefined : instant;
}

export function compileExceptions(
  documents: readonly ExceptionDocument[],
  maxLifetimeDays: number,
  ruleNames: ReadonlySet<string>,
):
  | { ok: true; exceptions: CompiledException[] }
  | { ok: false; errors: { path: FieldPath; message: string }[] } {
  const errors: { path: FieldPath; message: string }[] = [];
  const exceptions: CompiledException[] = [];
  const seen = new Map<string, number>();
  documents.forEach((doc, i) => {
    const at = (...rest: (string | number)[]): FieldPath => ['exceptions', i, ...rest];
    const earlier = seen.get(doc.name);
    if (earlier !== undefined) {
      errors.push({
        path: at('name'),
        message: `duplicate exception name "${doc.name}" (also exceptions[${earlier}])`,
      });
    } else seen.set(doc.name, i);
    doc.rules.forEach((rule, j) => {
      if (ruleNames.has(rule)) return;
      // Rule names are DNS labels: `*` is never one, and an exception lists what it lifts by name.
      const hint = rule.includes('*') ? ' (rules are exact names, not globs: list each rule it lifts)' : '';
      errors.push({ path: at('rules', j), message: `names no rule of this RuleSet: "${rule}"${hint}` });
    });
    const everything = liftsEverything(doc);
    if (everything !== undefined) errors.push({ path: at('namespaces'), message: everything });
    const granted = parseInstant(doc.granted);
    const expires = parseInstant(doc.expires);
    if (granted === undefined)
      errors.push({
        path: at('granted'),
        message: `must be a date (2026-11-15) or an RFC 3339 date-time, not "${doc.granted}"`,
      });
    if (expires === undefined)
      errors.push({
        path: at('expires'),
        message: `must be a date (2027-01-31) or an RFC 3339 date-time, not "${doc.expires}"`,
      });
    if (granted === undefined || expires === undefined) return;
    if (expires.getTime() <= granted.getTime()) {
      errors.push({ path: at('expires'), message: `must be after granted (${doc.granted})` });
      return;
    }
    const days = (expires.getTime() - granted.getTime()) / DAY_MS;
    if (days > maxLifetimeDays) {
      errors.push({
        path: at('expires'),
        message: `is ${Math.ceil(days)} days after granted; exceptionPolicy.maxLifetimeDays allows ${maxLifetimeDays}`,
      });
      return;
    }
    exceptions.push({
      name: doc.name,
      rules: new Set(doc.rules),
      reason: doc.reason,
      granted,
      expires,
      namespace: compileGlobs(doc.namespaces),
      objectName: compileGlobs(doc.names ?? ['*']),
      image: doc.images === undefined ? undefined : compileGlobs(doc.images),
    });
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, exceptions };
}

/** A pattern of only `*`: it matches every value. */
const matchesAll = (patterns: readonly string[]): string | undefined => patterns.find((p) => /^\*+$/.test(p));

/**
 * Why an exception whose scope matches every object is refused, or undefined when it is scoped:
 * `namespaces` and `names` (absent: all) and `images` (absent: all) each match everything. Such an
 * exception is the rules it names switched off with a reason attached, which the rule's own action
 * and scope say openly, where a reader of the rules looks.
 */
function liftsEverything(doc: ExceptionDocument): string | undefined {
  const namespace = matchesAll(doc.namespaces);
  const name = doc.names === undefined ? '*' : matchesAll(doc.names);
  const image = doc.images === undefined ? '*' : matchesAll(doc.images);
  if (namespace === undefined || name === undefined || image === undefined) return undefined;
  const scope = [
    JSON.stringify(namespace),
    doc.names === undefined ? 'with no names' : `with names ${JSON.stringify(doc.names)}`,
    ...(doc.images === undefined ? [] : [`and images ${JSON.stringify(doc.images)}`]),
  ].join(' ');
  const rules = `${doc.rules.length === 1 ? 'rule' : 'rules'} ${doc.rules.map((r) => JSON.stringify(r)).join(', ')}`;
  return (
    `${scope} matches every object: that is ${rules} switched off with a reason attached, not an exception. ` +
    "Set the rule's action (warn or audit) or its namespaces/excludeNamespaces instead, or scope the exception " +
    'to the namespaces, names or images it is for'
  );
}

/** What the request is, for matching: the namespace, the object's name, and its container images. */
export interface ExceptionSubject {
  namespace: string;
  name: string;
  /** Undefined when the object has no containers (a binding): an exception with `images` then never matches. */
  images: readonly string[] | undefined;
}

export function matchesSubject(exception: CompiledException, subject: ExceptionSubject): boolean {
  if (!exception.namespace(subject.namespace) || !exception.objectName(subject.name)) return false;
  const image = exception.image;
  if (image === undefined) return true;
  return subject.images !== undefined && subject.images.length > 0 && subject.images.every((i) => image(i));
}

export type ExceptionState = 'in-force' | 'expired' | 'not-yet';

export function stateAt(exception: CompiledException, now: Date): ExceptionState {
  if (now.getTime() < exception.granted.getTime()) return 'not-yet';
  return now.getTime() < exception.expires.getTime() ? 'in-force' : 'expired';
}

/** The object's name as the API server would record it: the request's, else its metadata's, else generateName. */
export function objectNameOf(requestName: string | undefined, object: unknown): string {
  if (requestName !== undefined && requestName !== '') return requestName;
  const metadata = isObject(object) && isObject(object['metadata']) ? object['metadata'] : {};
  const name = metadata['name'];
  if (typeof name === 'string') return name;
  const generate = metadata['generateName'];
  return typeof generate === 'string' ? generate : '';
}
