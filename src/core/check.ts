// What a check is. Each check lives in its own module under checks/, opens with a header that names
// the fields it reads and the values it allows, and exports one `defineCheck(...)` value. The list
// of checks is explicit (checks/index.ts): nothing registers itself by being imported.

import { Ajv, type ErrorObject } from 'ajv';
import type { BindingView } from './rbac.js';
import type { PodView } from './pod.js';
import type { FieldPath } from './types.js';

/** One offending field, before the engine adds the rule name and action. */
export interface Finding {
  path: FieldPath;
  message: string;
}

/** A problem in a rule's params, with its path relative to `params`. */
export interface ParamIssue {
  path: FieldPath;
  message: string;
}

export type Target = 'pod' | 'binding';
type Evaluator<V> = (view: V) => Finding[];

interface CheckSpec<P, V> {
  id: string;
  /** One line, shown in docs and as the SARIF rule description. */
  summary: string;
  /** JSON Schema of `params`; `default`s are filled in before `compile`. */
  paramsSchema: Readonly<Record<string, unknown>>;
  /** Checks that a schema cannot express (valid paths, valid registry names, …). */
  validate?: (params: P) => ParamIssue[];
  /** Precomputes what does not depend on the request; returns the per-request evaluator. */
  compile: (params: P) => Evaluator<V>;
}

export type CompiledCheck =
  | { target: 'pod'; evaluate: Evaluator<PodView>; params: unknown }
  | { target: 'binding'; evaluate: Evaluator<BindingView>; params: unknown };

/** A check with its params type erased, so the registry can hold checks of different params. */
export interface CheckDefinition {
  id: string;
  summary: string;
  target: Target;
  paramsSchema: Readonly<Record<string, unknown>>;
  compileParams(raw: unknown): { ok: true; compiled: CompiledCheck } | { ok: false; issues: ParamIssue[] };
}

// One Ajv for all param schemas: they are compiled once, when the check module loads.
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true });

export function definePodCheck<P>(spec: CheckSpec<P, PodView>): CheckDefinition {
  return define(spec, 'pod', (evaluate, params) => ({ target: 'pod', evaluate, params }));
}

export function defineBindingCheck<P>(spec: CheckSpec<P, BindingView>): CheckDefinition {
  return define(spec, 'binding', (evaluate, params) => ({ target: 'binding', evaluate, params }));
}

function define<P, V>(
  spec: CheckSpec<P, V>,
  target: Target,
  wrap: (evaluate: Evaluator<V>, params: P) => CompiledCheck,
): CheckDefinition {
  const validateSchema = ajv.compile<P>(spec.paramsSchema);
  return {
    id: spec.id,
    summary: spec.summary,
    target,
    paramsSchema: spec.paramsSchema,
    compileParams(raw) {
      // useDefaults writes into its input: never into the caller's RuleSet.
      const params: unknown = structuredClone(raw ?? {});
      if (!validateSchema(params)) return { ok: false, issues: schemaIssues(validateSchema.errors ?? []) };
      const issues = spec.validate?.(params) ?? [];
      if (issues.length > 0) return { ok: false, issues };
      return { ok: true, compiled: wrap(spec.compile(params), params) };
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
