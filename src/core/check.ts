// What a check is. Each check lives in its own module under checks/, opens with a header that names
// the fields it reads and the values it allows, and exports one `defineCheck(...)` value: its target
// (what it reads), params schema, versioned behaviour and, where it has one, the patch it asks /mutate
// for. The list of checks is explicit (checks/index.ts): nothing registers itself by being imported.

import { Ajv, type ErrorObject } from 'ajv';
import type { PatchOperation } from './mutate.js';
import { readObject } from './read.js';
import type { ReadResult, Target } from './target.js';
import type { AdmissionRequest, DenyReason, EvaluationContext, FieldPath } from './types.js';
import { compareKubeVersions, LATEST, type KubeVersion } from './version.js';

/** One offending field, before the engine adds the rule name and action. */
export interface Finding {
  path: FieldPath;
  message: string;
  /** The status reason of a deny (default Forbidden). */
  reason?: DenyReason;
  /**
   * Something the user should know rather than a violation (a fact the check could not have, say):
   * a `deny` rule reports it as a warning, so it never refuses a request on its own.
   */
  notice?: true;
}

/** A problem in a rule's params, with its path relative to `params`. */
export interface ParamIssue {
  path: FieldPath;
  message: string;
  /** Where in the field's text (a CEL expression), from 1. */
  position?: { line: number; column: number };
}

/** What a check may know about the request besides its view: the request itself and the caller's facts. */
export interface CheckInput {
  request: AdmissionRequest;
  context: EvaluationContext;
  /** Records an audit annotation for this request under the rule's name (`cel` auditAnnotations). */
  annotate?: (key: string, value: string) => void;
}

export type Evaluator<V> = (view: V, input: CheckInput) => Finding[];

/**
 * One behaviour of a check, in force from a Kubernetes minor version on (pod-security-admission's
 * `VersionedCheck`): behaviour changes by adding a version, never by editing a shipped one.
 */
export interface CheckVersion<P, V> {
  minimumVersion: KubeVersion;
  /** Precomputes what does not depend on the request; returns the per-request evaluator. */
  compile: (params: P) => Evaluator<V>;
}

/** A patch the check asks /mutate for, declared beside the validation it serves. */
export interface MutationSpec<P, V> {
  /** Whether these params want the patch at all (seccomp's `mutate: false` does not). */
  enabled: (params: P) => boolean;
  /** The operations to apply to the object whose view this is; none when there is nothing to do. */
  patch: (view: V) => PatchOperation[];
  /**
   * A CEL condition on the object at `root` (the view's root, e.g. `object.spec.template.spec`) that
   * is true whenever `patch` could return operations, whatever the params: the API server evaluates
   * it as the mutating webhook's matchCondition and does not call /mutate when it is false. It may be
   * true where no patch results (a wasted call), never false where one would (a lost patch). Absent:
   * always called.
   */
  callWhen?: (root: string) => string;
}

export interface CheckSpec<P, V> {
  id: string;
  /** One line, shown in docs and as the SARIF rule description. */
  summary: string;
  target: Target<V>;
  /** JSON Schema of `params`; `default`s are filled in before `compile`. */
  paramsSchema: Readonly<Record<string, unknown>>;
  /** Checks that a schema cannot express (valid paths, valid registry names, …). */
  validate?: (params: P) => ParamIssue[];
  /** Oldest first; the first must have `minimumVersion` v1.0. */
  versions: readonly CheckVersion<P, V>[];
  mutation?: MutationSpec<P, V>;
}

/** A check with its params bound and its view type erased, so rules of any target sit in one list. */
export interface CompiledCheck {
  target: Target<unknown>;
  params: unknown;
  /** The version whose behaviour is in force. */
  version: KubeVersion;
  /** The findings for this request, or why its object could not be read (the request fails closed). */
  run(input: CheckInput): ReadResult<Finding[]>;
  /** The patch this check asks for on `object` (the request's object as patched so far). */
  mutate?: (object: unknown, request: AdmissionRequest) => ReadResult<PatchOperation[]>;
}

/** A check with its params type erased, so the registry can hold checks of different params. */
export interface CheckDefinition {
  id: string;
  summary: string;
  target: Target<unknown>;
  paramsSchema: Readonly<Record<string, unknown>>;
  /** The minimum versions of this check's behaviours, oldest first. */
  versions: readonly KubeVersion[];
  /** Whether the check can ask /mutate for a patch, and when (`MutationSpec.callWhen`). */
  mutation: { callWhen: ((root: string) => string) | undefined } | undefined;
  /** `version` picks the newest behaviour whose minimum is not above it (default: the newest). */
  compileParams(
    raw: unknown,
    version?: KubeVersion,
  ): { ok: true; compiled: CompiledCheck } | { ok: false; errors: ParamIssue[] };
}

// One Ajv for all param schemas: they are compiled once, when the check module loads.
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true });

export function defineCheck<P, V>(spec: CheckSpec<P, V>): CheckDefinition {
  const validateSchema = ajv.compile<P>(spec.paramsSchema);
  const versions = [...spec.versions].sort((a, b) => compareKubeVersions(a.minimumVersion, b.minimumVersion));
  if (versions[0]?.minimumVersion !== 'v1.0')
    throw new Error(`check ${spec.id}: its first version must be v1.0`);
  if (versions.some((v) => compareKubeVersions(v.minimumVersion, LATEST) > 0))
    throw new Error(`check ${spec.id}: a version is newer than ${LATEST}`);
  const target = spec.target;
  return {
    id: spec.id,
    summary: spec.summary,
    target,
    paramsSchema: spec.paramsSchema,
    versions: versions.map((v) => v.minimumVersion),
    mutation: spec.mutation === undefined ? undefined : { callWhen: spec.mutation.callWhen },
    compileParams(raw, version = LATEST) {
      // useDefaults writes into its input: never into the caller's RuleSet.
      const params: unknown = structuredClone(raw ?? {});
      if (!validateSchema(params)) return { ok: false, errors: schemaIssues(validateSchema.errors ?? []) };
      const issues = spec.validate?.(params) ?? [];
      if (issues.length > 0) return { ok: false, errors: issues };
      const chosen = versions.filter((v) => compareKubeVersions(v.minimumVersion, version) <= 0).at(-1);
      if (chosen === undefined) throw new Error(`check ${spec.id}: no version for ${version}`);
      const evaluate = chosen.compile(params);
      const mutation = spec.mutation?.enabled(params) === true ? spec.mutation : undefined;
      const compiled: CompiledCheck = {
        target,
        params,
        version: chosen.minimumVersion,
        run(input) {
          const view = target.view(input.request);
          // A check may read fields of the raw object itself: a wrong type there fails closed too.
          return view.ok ? readObject(() => evaluate(view.value, input)) : view;
        },
      };
      if (mutation !== undefined) {
        compiled.mutate = (object, request) => {
          const view = target.read(object, request);
          return view.ok ? readObject(() => mutation.patch(view.value)) : view;
        };
      }
      return { ok: true, compiled };
    },
  };
}

/** Ajv errors as field paths and sentences a person can act on. */
export function schemaIssues(errors: readonly ErrorObject[]): ParamIssue[] {
  const issues: ParamIssue[] = [];
  const seen = new Set<string>();
  for (const error of errors) {
    const path: (string | number)[] = error.instancePath
      .split('/')
      .slice(1)
      .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
      .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    let message: string;
    switch (error.keyword) {
      case 'additionalProperties':
        path.push(String(error.params['additionalProperty']));
        message = 'unknown field';
        break;
      case 'required':
        path.push(String(error.params['missingProperty']));
        message = 'is required';
        break;
      case 'enum':
        message = `must be one of: ${listOf(error.params['allowedValues'])}`;
        break;
      case 'const':
        message = `must be ${JSON.stringify(error.params['allowedValue'])}`;
        break;
      default:
        message = error.message ?? `fails ${error.keyword}`;
    }
    const key = `${path.join('/')}:${message}`;
    if (!seen.has(key)) {
      seen.add(key);
      issues.push({ path, message });
    }
  }
  return issues;
}

function listOf(values: unknown): string {
  return Array.isArray(values) ? values.map((v) => JSON.stringify(v)).join(', ') : String(values);
}
