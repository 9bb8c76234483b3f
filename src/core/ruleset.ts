// The RuleSet: what the security team edits. `compileRuleSet` validates a parsed document (schema,
// then meaning) and turns it into what `evaluate` runs. A RuleSet with any error is refused whole,
// and every error names its field: `rules[2].check: unknown check "privilegd"`.

import { Ajv } from 'ajv';
import { schemaIssues, type CheckDefinition, type CompiledCheck } from './check.js';
import { CHECKS } from './checks/index.js';
import {
  compileExceptions,
  DEFAULT_MAX_LIFETIME_DAYS,
  EXCEPTION_POLICY_SCHEMA,
  EXCEPTIONS_SCHEMA,
  type CompiledException,
  type ExceptionDocument,
} from './exceptions.js';
import { formatFieldPath } from './fieldpath.js';
import { isObject } from './read.js';
import { compileGlobs, type Matcher } from './glob.js';
import type { Action, FieldPath } from './types.js';

export const RULESET_API_VERSION = 'portcullis.io/v1';
export const RULESET_KIND = 'RuleSet';

const patterns = { type: 'array', items: { type: 'string', minLength: 1 } } as const;

/** JSON Schema of the RuleSet envelope; each check's `params` schema lives with the check. */
export const RULESET_SCHEMA = {
  $id: 'https://portcullis.io/schemas/ruleset-v1.json',
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'rules'],
  properties: {
    apiVersion: { const: RULESET_API_VERSION },
    kind: { const: RULESET_KIND },
    metadata: { type: 'object' },
    exemptions: {
      type: 'object',
      additionalProperties: false,
      properties: { namespaces: patterns, usernames: patterns, groups: patterns },
    },
    exceptionPolicy: EXCEPTION_POLICY_SCHEMA,
    exceptions: EXCEPTIONS_SCHEMA,
    rules: {
      type: 'array',
      // An empty RuleSet admits everything; that is never what an edit meant. Use action: audit.
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'check'],
        properties: {
          name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 },
          description: { type: 'string' },
          check: { type: 'string' },
          action: { enum: ['deny', 'warn', 'audit'] },
          namespaces: patterns,
          excludeNamespaces: patterns,
          params: { type: 'object' },
        },
      },
    },
  },
} as const;

export interface RuleDocument {
  name: string;
  description?: string;
  check: string;
  action?: Action;
  namespaces?: string[];
  excludeNamespaces?: string[];
  params?: Record<string, unknown>;
}

export interface RuleSetDocument {
  apiVersion: typeof RULESET_API_VERSION;
  kind: typeof RULESET_KIND;
  metadata?: Record<string, unknown>;
  exemptions?: { namespaces?: string[]; usernames?: string[]; groups?: string[] };
  exceptionPolicy?: { maxLifetimeDays?: number };
  exceptions?: ExceptionDocument[];
  rules: RuleDocument[];
}

export interface CompiledRule {
  name: string;
  check: string;
  action: Action;
  /** True when a request in this namespace ('' for cluster-scoped objects) is in the rule's scope. */
  inScope: Matcher;
  compiled: CompiledCheck;
}

export interface CompiledRuleSet {
  rules: readonly CompiledRule[];
  exemptions: { namespace: Matcher; username: Matcher; group: Matcher };
  exceptions: readonly CompiledException[];
  document: RuleSetDocument;
}

export interface RuleSetError {
  path: FieldPath;
  message: string;
  /** Line and column inside the field's text, for a CEL expression. */
  position?: { line: number; column: number };
}

/**
 * `rules[2].check: unknown check "privilegd"`; with a position inside the field's text, cel-go's
 * form: `rules[3].params.validations[0].expression:1:17: undeclared reference to 'objet'`.
 */
export function formatRuleSetError(error: RuleSetError): string {
  const field = formatFieldPath(error.path);
  const at = error.position === undefined ? '' : `:${error.position.line}:${error.position.column}`;
  return field === '' ? error.message : `${field}${at}: ${error.message}`;
}

const validateEnvelope = new Ajv({ allErrors: true, strict: true }).compile<RuleSetDocument>(RULESET_SCHEMA);

/** `checks` is the registry to resolve `check:` names in (tests pass their own). */
export function compileRuleSet(
  input: unknown,
  checks: ReadonlyMap<string, CheckDefinition> = CHECKS,
): { ok: true; ruleset: CompiledRuleSet } | { ok: false; errors: RuleSetError[] } {
  if (!validateEnvelope(input)) {
    // Every error in one pass: the params of rules whose check is known are judged too, so a
    // fix-and-retry loop never meets a second round of errors the first could have named.
    const errors = schemaIssues(validateEnvelope.errors ?? []);
    const list = isObject(input) ? input['rules'] : undefined;
    if (Array.isArray(list)) {
      list.forEach((rule: unknown, i) => {
        if (!isObject(rule) || typeof rule['check'] !== 'string') return;
        const params = rule['params'];
        if (params !== undefined && !isObject(params)) return;
        const result = checks.get(rule['check'])?.compileParams(params);
        if (result !== undefined && !result.ok)
          for (const issue of result.errors)
            errors.push({ path: ['rules', i, 'params', ...issue.path], message: issue.message });
      });
    }
    return { ok: false, errors };
  }

  const errors: RuleSetError[] = [];
  const rules: CompiledRule[] = [];
  const firstIndexOfName = new Map<string, number>();
  input.rules.forEach((rule, i) => {
    const earlier = firstIndexOfName.get(rule.name);
    if (earlier !== undefined) {
      errors.push({
        path: ['rules', i, 'name'],
        message: `duplicate rule name "${rule.name}" (also rules[${earlier}])`,
      });
    } else {
      firstIndexOfName.set(rule.name, i);
    }
    const check = checks.get(rule.check);
    if (check === undefined) {
      errors.push({
        path: ['rules', i, 'check'],
        message: `unknown check "${rule.check}"; known checks: ${[...checks.keys()].join(', ')}`,
      });
      return;
    }
    const result = check.compileParams(rule.params);
    if (!result.ok) {
      for (const issue of result.errors)
        errors.push({
          path: ['rules', i, 'params', ...issue.path],
          message: issue.message,
          ...(issue.position === undefined ? {} : { position: issue.position }),
        });
      return;
    }
    const include = compileGlobs(rule.namespaces ?? ['*']);
    const exclude = compileGlobs(rule.excludeNamespaces ?? []);
    rules.push({
      name: rule.name,
      check: rule.check,
      action: rule.action ?? 'deny',
      inScope: (namespace) => include(namespace) && !exclude(namespace),
      compiled: result.compiled,
    });
  });
  const exceptions = compileExceptions(
    input.exceptions ?? [],
    input.exceptionPolicy?.maxLifetimeDays ?? DEFAULT_MAX_LIFETIME_DAYS,
    new Set(input.rules.map((r) => r.name)),
  );
  if (!exceptions.ok) errors.push(...exceptions.errors);
  if (errors.length > 0 || !exceptions.ok) return { ok: false, errors };

  const exemptions = input.exemptions ?? {};
  return {
    ok: true,
    ruleset: {
      rules,
      exemptions: {
        namespace: compileGlobs(exemptions.namespaces ?? []),
        username: compileGlobs(exemptions.usernames ?? []),
        group: compileGlobs(exemptions.groups ?? []),
      },
      exceptions: exceptions.exceptions,
      document: input,
    },
  };
}
