/*
 * Check: cel
 *
 * A team's own rule, written as a ValidatingAdmissionPolicy: its spec pasted as `params`, judged
 * with the API server's semantics so a VAP moves over unchanged.
 *
 * Objects: any kind, operation and subresource that `matchConstraints` names.
 * Fields read: whatever the expressions read. CEL variables: object, oldObject, request, params
 * (`paramsObject`, or null), namespaceObject (from EvaluationContext.namespaces, or null), variables
 * (each evaluated at most once, when first read). `authorizer` is not available: refused at load.
 * Denied: when matchConstraints match, every matchCondition is true, and a validation evaluates to
 * false: the first such validation gives the message (messageExpression, else message, else
 * "failed expression: <expression>") and the status reason (default Invalid). A runtime error or
 * an expression over the cost limit (1,000,000, the API server's per-call limit) follows
 * failurePolicy: Fail (default) denies with the error, Ignore skips the validation.
 * auditAnnotations are recorded for every judged request (null values omitted).
 * Versions: v1.0.
 * Params: failurePolicy (Fail | Ignore), matchConstraints {resourceRules, excludeResourceRules,
 * namespaceSelector, objectSelector, matchPolicy}, matchConditions [{name, expression}] (at most
 * 64), variables [{name, expression}], validations [{expression, message?, messageExpression?,
 * reason?}], auditAnnotations [{key, valueExpression}], paramKind (accepted, ignored), paramsObject.
 */

import { defineCheck, type CheckInput, type Finding, type ParamIssue } from '../check.js';
import { constraintsMatch, labelsOf, type Labels, type MatchConstraints } from '../cel/match.js';
import { RuleEnvironment, isOptional, type Program, type RunResult } from '../cel/program.js';
import { CEL_TARGET, CelView } from '../cel/target.js';
import { toCel } from '../cel/values.js';
import type { DenyReason } from '../types.js';

type FailurePolicy = 'Fail' | 'Ignore';

interface NamedExpression {
  name: string;
  expression: string;
}

interface Validation {
  expression: string;
  message?: string;
  messageExpression?: string;
  reason?: DenyReason;
}

interface AuditAnnotation {
  key: string;
  valueExpression: string;
}

interface Params {
  failurePolicy: FailurePolicy;
  matchConstraints: MatchConstraints;
  matchConditions: NamedExpression[];
  variables: NamedExpression[];
  validations: Validation[];
  auditAnnotations: AuditAnnotation[];
  paramKind?: Record<string, unknown>;
  paramsObject?: unknown;
}

/** VAP's limits (k8s.io/kubernetes pkg/apis/admissionregistration/validation). */
const MAX_MATCH_CONDITIONS = 64;
const MAX_MESSAGE_EXPRESSION_LENGTH = 5 * 1024;
const MAX_AUDIT_ANNOTATION_VALUE_LENGTH = 10 * 1024;
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const CEL_IDENTIFIER = /^[_a-zA-Z][_a-zA-Z0-9]*$/;

const strings = { type: 'array', items: { type: 'string' } } as const;
const labelSelector = {
  type: 'object',
  additionalProperties: false,
  properties: {
    matchLabels: { type: 'object', additionalProperties: { type: 'string' } },
    matchExpressions: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['key', 'operator'],
        properties: {
          key: { type: 'string', minLength: 1 },
          operator: { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] },
          values: strings,
        },
      },
    },
  },
} as const;
const resourceRule = {
  type: 'object',
  additionalProperties: false,
  properties: {
    apiGroups: strings,
    apiVersions: strings,
    operations: { type: 'array', items: { enum: ['CREATE', 'UPDATE', 'DELETE', 'CONNECT', '*'] } },
    resources: strings,
    resourceNames: strings,
    scope: { enum: ['Cluster', 'Namespaced', '*'] },
  },
} as const;
const namedExpression = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'expression'],
  properties: { name: { type: 'string', minLength: 1 }, expression: { type: 'string', minLength: 1 } },
} as const;

/** A compiled validation and what its message needs. */
interface CompiledValidation {
  source: Validation;
  program: Program;
  messageProgram: Program | undefined;
}

interface CompiledPolicy {
  env: RuleEnvironment;
  variables: { name: string; program: Program }[];
  matchConditions: { name: string; program: Program }[];
  validations: CompiledValidation[];
  auditAnnotations: { key: string; program: Program }[];
}

// validate() compiles every expression to report its errors; compile() then reuses the result.
const compiledPolicies = new WeakMap<Params, CompiledPolicy>();

function compilePolicy(params: Params): { policy: CompiledPolicy; issues: ParamIssue[] } {
  const issues: ParamIssue[] = [];
  const compileIn = (
    env: RuleEnvironment,
    source: string,
    path: (string | number)[],
    want?: string,
  ): Program | undefined => {
    const result = env.compile(source);
    if (!result.ok) {
      issues.push({
        path,
        message: result.error.message,
        ...(result.error.position === undefined ? {} : { position: result.error.position }),
      });
      return undefined;
    }
    const type = result.program.type;
    if (want !== undefined && type !== want && type !== 'dyn' && !(want === 'string' && type === 'null')) {
      issues.push({ path, message: `must evaluate to ${want}, not ${type}` });
      return undefined;
    }
    return result.program;
  };

  // Each variable sees those declared before it, typed as their expressions are: VAP's order.
  const variableTypes = new Map<string, string>();
  const variables: CompiledPolicy['variables'] = [];
  params.variables.forEach((variable, i) => {
    if (!CEL_IDENTIFIER.test(variable.name)) {
      issues.push({ path: ['variables', i, 'name'], message: 'must be a valid CEL identifier' });
      return;
    }
    if (variableTypes.has(variable.name)) {
      issues.push({ path: ['variables', i, 'name'], message: `duplicate variable name "${variable.name}"` });
      return;
    }
    const program = compileIn(new RuleEnvironment(variableTypes), variable.expression, [
      'variables',
      i,
      'expression',
    ]);
    if (program === undefined) return;
    variableTypes.set(variable.name, program.type === 'null' ? 'dyn' : program.type);
    variables.push({ name: variable.name, program });
  });

  const env = new RuleEnvironment(variableTypes);
  // Variables are compiled again in the full environment: they run with the full `variables` value.
  const finalVariables = variables.map((v) => {
    const result = env.compile(v.program.source);
    return result.ok ? { name: v.name, program: result.program } : v;
  });

  if (params.matchConditions.length > MAX_MATCH_CONDITIONS) {
    issues.push({ path: ['matchConditions'], message: `must have at most ${MAX_MATCH_CONDITIONS} items` });
  }
  const conditionNames = new Set<string>();
  const matchConditions: CompiledPolicy['matchConditions'] = [];
  params.matchConditions.forEach((condition, i) => {
    if (conditionNames.has(condition.name)) {
      issues.push({
        path: ['matchConditions', i, 'name'],
        message: `duplicate matchCondition name "${condition.name}"`,
      });
    }
    conditionNames.add(condition.name);
    const program = compileIn(env, condition.expression, ['matchConditions', i, 'expression'], 'bool');
    if (program !== undefined) matchConditions.push({ name: condition.name, program });
  });

  const validations: CompiledValidation[] = [];
  params.validations.forEach((validation, i) => {
    const program = compileIn(env, validation.expression, ['validations', i, 'expression'], 'bool');
    if (validation.message !== undefined && /[\r\n]/.test(validation.message)) {
      issues.push({ path: ['validations', i, 'message'], message: 'must not contain line breaks' });
    }
    let messageProgram: Program | undefined;
    if (validation.messageExpression !== undefined) {
      if (validation.messageExpression.length > MAX_MESSAGE_EXPRESSION_LENGTH) {
        issues.push({
          path: ['validations', i, 'messageExpression'],
          message: `must be at most ${MAX_MESSAGE_EXPRESSION_LENGTH} characters`,
        });
      } else {
        messageProgram = compileIn(
          env,
          validation.messageExpression,
          ['validations', i, 'messageExpression'],
          'string',
        );
      }
    }
    if (program !== undefined) validations.push({ source: validation, program, messageProgram });
  });

  const keys = new Set<string>();
  const auditAnnotations: CompiledPolicy['auditAnnotations'] = [];
  params.auditAnnotations.forEach((annotation, i) => {
    if (!QUALIFIED_NAME_PART.test(annotation.key) || annotation.key.length > 63) {
      issues.push({
        path: ['auditAnnotations', i, 'key'],
        message: 'must be a valid annotation key part (at most 63 alphanumeric characters, -, _ or .)',
      });
    } else if (keys.has(annotation.key)) {
      issues.push({ path: ['auditAnnotations', i, 'key'], message: `duplicate key "${annotation.key}"` });
    }
    keys.add(annotation.key);
    const program = compileIn(
      env,
      annotation.valueExpression,
      ['auditAnnotations', i, 'valueExpression'],
      'string',
    );
    if (program !== undefined) auditAnnotations.push({ key: annotation.key, program });
  });

  if (params.validations.length === 0 && params.auditAnnotations.length === 0) {
    issues.push({
      path: ['validations'],
      message: 'at least one of validations or auditAnnotations is required',
    });
  }
  if ((params.matchConstraints.resourceRules ?? []).length === 0) {
    issues.push({
      path: ['matchConstraints', 'resourceRules'],
      message: 'must name at least one resource rule',
    });
  }
  return {
    policy: { env, variables: finalVariables, matchConditions, validations, auditAnnotations },
    issues,
  };
}

// The matchConstraints of each compiled rule, by its params: what the webhook must send (webhook.ts).
const constraintsOfParams = new WeakMap<object, MatchConstraints>();

/** The matchConstraints of a compiled `cel` rule's params; undefined for any other value. */
export function celMatchConstraints(params: unknown): MatchConstraints | undefined {
  return typeof params === 'object' && params !== null ? constraintsOfParams.get(params) : undefined;
}

// Namespace objects come from a watch and live long; their CEL form is made once per object.
const celNamespaces = new WeakMap<object, unknown>();

function namespaceObjectOf(input: CheckInput): { object: unknown; labels: Labels } {
  const name = input.request.namespace ?? '';
  const raw = name === '' ? undefined : input.context.namespaces?.get(name);
  if (typeof raw !== 'object' || raw === null) {
    // The API server labels every namespace with its name; nothing else is known about this one.
    return { object: null, labels: name === '' ? {} : { 'kubernetes.io/metadata.name': name } };
  }
  let object = celNamespaces.get(raw);
  if (object === undefined) {
    object = toCel(raw);
    celNamespaces.set(raw, object);
  }
  return { object, labels: { 'kubernetes.io/metadata.name': name, ...labelsOf(raw) } };
}

/**
 * The variables of one rule's expressions on one request. `request` is built only when an
 * expression reads it; `variables` are evaluated on first read.
 */
class Activation {
  readonly #view: CelView;
  readonly params: unknown;
  readonly namespaceObject: unknown;
  readonly variables: object;

  constructor(view: CelView, params: unknown, namespaceObject: unknown, policy: CompiledPolicy) {
    this.#view = view;
    this.params = params;
    this.namespaceObject = namespaceObject;
    this.variables = lazyVariables(policy, this);
  }

  get object(): unknown {
    return this.#view.object;
  }

  get oldObject(): unknown {
    return this.#view.oldObject;
  }

  get request(): unknown {
    return this.#view.request;
  }
}

/** The `variables` value of one evaluation: each evaluated on first read, then remembered. */
function lazyVariables(policy: CompiledPolicy, activation: Activation): object {
  const variables = policy.env.makeVariables();
  for (const { name, program } of policy.variables) {
    let result: { value: unknown } | { error: unknown } | undefined;
    Object.defineProperty(variables, name, {
      enumerable: true,
      get() {
        result ??= (() => {
          try {
            return { value: program.runNested(activation) };
          } catch (error) {
            return { error };
          }
        })();
        if ('error' in result) throw result.error;
        return result.value;
      },
    });
  }
  return variables;
}

function errorText(kind: string, source: string, result: Extract<RunResult, { ok: false }>): string {
  if (result.costExceeded)
    return `${kind} '${source}': validation failed due to running out of cost budget, no further validation rules will be run`;
  return `${kind} '${source}' resulted in error: ${result.error}`;
}

/** VAP's message for a failed validation: messageExpression, else message, else the expression. */
function messageOf(validation: CompiledValidation, activation: Activation): string {
  if (validation.messageProgram !== undefined) {
    const result = validation.messageProgram.run(activation);
    // An error, an empty or blank string, or one with line breaks falls back, as in VAP.
    if (
      result.ok &&
      typeof result.value === 'string' &&
      result.value.trim() !== '' &&
      !/[\r\n]/.test(result.value)
    ) {
      return result.value;
    }
  }
  if (validation.source.message !== undefined && validation.source.message !== '')
    return validation.source.message;
  return `failed expression: ${validation.source.expression.trim()}`;
}

export const cel = defineCheck<Params, CelView>({
  id: 'cel',
  target: CEL_TARGET,
  summary:
    'A ValidatingAdmissionPolicy, pasted as it is: CEL validations on any kind its matchConstraints name.',
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['matchConstraints'],
    properties: {
      failurePolicy: { enum: ['Fail', 'Ignore'], default: 'Fail' },
      matchConstraints: {
        type: 'object',
        additionalProperties: false,
        properties: {
          resourceRules: { type: 'array', items: resourceRule },
          excludeResourceRules: { type: 'array', items: resourceRule },
          namespaceSelector: labelSelector,
          objectSelector: labelSelector,
          matchPolicy: { enum: ['Exact', 'Equivalent'] },
        },
      },
      matchConditions: { type: 'array', default: [], items: namedExpression },
      variables: { type: 'array', default: [], items: namedExpression },
      validations: {
        type: 'array',
        default: [],
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['expression'],
          properties: {
            expression: { type: 'string', minLength: 1 },
            message: { type: 'string' },
            messageExpression: { type: 'string', minLength: 1 },
            reason: { enum: ['Unauthorized', 'Forbidden', 'Invalid', 'RequestEntityTooLarge'] },
          },
        },
      },
      auditAnnotations: {
        type: 'array',
        default: [],
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['key', 'valueExpression'],
          properties: {
            key: { type: 'string', minLength: 1 },
            valueExpression: { type: 'string', minLength: 1 },
          },
        },
      },
      paramKind: { type: 'object' },
      paramsObject: {},
    },
  },
  validate(params) {
    const { policy, issues } = compilePolicy(params);
    compiledPolicies.set(params, policy);
    return issues;
  },
  versions: [
    {
      minimumVersion: 'v1.0',
      compile: (params) => {
        const policy = compiledPolicies.get(params) ?? compilePolicy(params).policy;
        constraintsOfParams.set(params, params.matchConstraints);
        const paramsValue = params.paramsObject === undefined ? null : toCel(params.paramsObject);
        const ignore = params.failurePolicy === 'Ignore';
        return (view, input): Finding[] => {
          const namespace = namespaceObjectOf(input);
          if (!constraintsMatch(params.matchConstraints, input.request, namespace.labels)) return [];
          const activation = new Activation(view, paramsValue, namespace.object, policy);

          // A false matchCondition skips the rule even when another one failed, as in VAP.
          let conditionError: string | undefined;
          for (const condition of policy.matchConditions) {
            const result = condition.program.run(activation);
            if (result.ok && result.value === false) return [];
            if (!result.ok) conditionError ??= errorText('matchCondition', condition.name, result);
            else if (result.value !== true)
              conditionError ??= `matchCondition '${condition.name}' resulted in a non-boolean`;
          }
          if (conditionError !== undefined) return ignore ? [] : [{ path: [], message: conditionError }];

          const findings: Finding[] = [];
          for (const validation of policy.validations) {
            const result = validation.program.run(activation);
            if (!result.ok) {
              if (ignore) continue;
              findings.push({
                path: [],
                message: errorText('expression', validation.source.expression.trim(), result),
              });
              break;
            }
            if (result.value === true) continue;
            if (result.value !== false) {
              if (ignore) continue;
              findings.push({
                path: [],
                message: `expression '${validation.source.expression.trim()}' resulted in a non-boolean`,
              });
              break;
            }
            findings.push({
              path: [],
              message: messageOf(validation, activation),
              reason: validation.source.reason ?? 'Invalid',
            });
            break;
          }

          for (const annotation of policy.auditAnnotations) {
            const result = annotation.program.run(activation);
            if (!result.ok) {
              if (!ignore && findings.length === 0) {
                findings.push({
                  path: [],
                  message: errorText('valueExpression', annotation.program.source.trim(), result),
                });
              }
              continue;
            }
            const value = isOptional(result.value)
              ? result.value.hasValue()
                ? result.value.value()
                : null
              : result.value;
            if (typeof value === 'string') {
              input.annotate?.(annotation.key, value.slice(0, MAX_AUDIT_ANNOTATION_VALUE_LENGTH));
            }
          }
          return findings;
        };
      },
    },
  ],
});
