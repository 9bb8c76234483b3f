// Kubernetes' CEL environment on cel-js, and expressions compiled in it. Every expression is parsed
// and type-checked when the RuleSet loads (its errors carry line and column, in cel-go's words
// where they differ); a compiled program runs under the per-call cost limit and returns its value
// or its error, never throws.

import { Environment, EvaluationError, Optional } from '@marcbachmann/cel-js';
import { CostLimitExceeded, PER_CALL_COST_LIMIT, resetCost, spendCost } from './cost.js';
import {
  CelRuntimeError,
  compileRe2,
  re2SyntaxError,
  registerKubernetesLibraries,
  RE2_MATCHES,
} from './library.js';

/** The variables of a ValidatingAdmissionPolicy's expressions, besides `variables`. */
const ROOT_VARIABLES = ['object', 'oldObject', 'request', 'params', 'namespaceObject'] as const;

function baseEnvironment(): Environment {
  const env = new Environment({
    enableOptionalTypes: true,
    // cel-go types a mixed literal as list(dyn) / map(dyn, dyn) rather than refusing it.
    homogeneousAggregateLiterals: false,
    limits: { maxAstNodes: 10_000, maxDepth: 100 },
  });
  for (const name of ROOT_VARIABLES) env.registerVariable(name, 'dyn');
  registerKubernetesLibraries(env);
  return env;
}

// Built once; each rule clones it to add its own `variables` (cloning freezes the parent).
const BASE = baseEnvironment();

/** A position in an expression: line and column from 1, as cel-go reports them. */
export interface SourcePosition {
  line: number;
  column: number;
}

export interface CompileError {
  message: string;
  position?: SourcePosition;
}

export type RunResult = { ok: true; value: unknown } | { ok: false; error: string; costExceeded: boolean };

export interface Program {
  readonly source: string;
  /** The checked result type, as cel-js names it (`bool`, `string`, `dyn`, `map<string, dyn>`, …). */
  readonly type: string;
  run(activation: object, costLimit?: number): RunResult;
  /**
   * Runs inside another expression's evaluation (a variable read by it): on that expression's
   * cost account, and its error is that expression's error.
   */
  runNested(activation: object): unknown;
}

/** The environment for one rule: the root variables plus `variables` typed by its declared fields. */
export class RuleEnvironment {
  readonly #env: Environment;

  constructor(variableTypes: ReadonlyMap<string, string>) {
    const env = BASE.clone();
    // A class per rule: cel-js keys a type by its constructor.
    class Variables {
      readonly ruleEnvironment = true;
    }
    const fields: Record<string, string> = {};
    for (const [name, type] of variableTypes) fields[name] = type;
    env.registerType('Variables', { ctor: Variables, fields });
    env.registerVariable('variables', 'Variables');
    this.#env = env;
    this.makeVariables = () => new Variables();
  }

  /** An empty `variables` value of this environment's type; the caller defines its lazy fields. */
  readonly makeVariables: () => object;

  compile(source: string): { ok: true; program: Program } | { ok: false; error: CompileError } {
    resetCost();
    let parsed;
    try {
      parsed = this.#env.parse(source);
    } catch (err) {
      return { ok: false, error: compileError(source, err) };
    }
    const literalPatternError = useRe2(parsed.ast, source);
    if (literalPatternError !== undefined) return { ok: false, error: literalPatternError };
    const checked = parsed.check();
    if (!checked.valid) return { ok: false, error: compileError(source, checked.error) };
    meterComprehensions(parsed.ast);
    const baseCost = countNodes(parsed.ast);
    const type = checked.type ?? 'dyn';
    return {
      ok: true,
      program: {
        source,
        type,
        run(activation, costLimit = PER_CALL_COST_LIMIT) {
          resetCost(costLimit);
          try {
            spendCost(baseCost);
            const value: unknown = parsed(activation);
            return { ok: true, value };
          } catch (err) {
            return { ok: false, error: runtimeMessage(err), costExceeded: err instanceof CostLimitExceeded };
          }
        },
        runNested(activation) {
          spendCost(baseCost);
          const value: unknown = parsed(activation);
          return value;
        },
      },
    };
  }
}

// ---------------------------------------------------------------- errors

function positionOf(source: string, offset: number): SourcePosition {
  const before = source.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - (before.lastIndexOf('\n') + 1) + 1;
  return { line, column };
}

function summaryOf(err: unknown): string {
  if (err instanceof Error) {
    const summary = 'summary' in err && typeof err.summary === 'string' ? err.summary : err.message;
    return (summary.split('\n')[0] ?? summary).replaceAll(RE2_MATCHES, 'matches');
  }
  return String(err);
}

function compileError(source: string, err: unknown): CompileError {
  let message = summaryOf(err);
  const code = err instanceof Error && 'code' in err ? err.code : undefined;
  const unknown = /^Unknown variable: (.*)$/.exec(message);
  if (code === 'unknown_variable' && unknown !== null) {
    message =
      unknown[1] === 'authorizer'
        ? "undeclared reference to 'authorizer': Portcullis has no authorizer (it cannot ask the API server's authorization); rules using it are refused"
        : `undeclared reference to '${unknown[1] ?? ''}'`;
  }
  const range =
    err instanceof Error &&
    'range' in err &&
    typeof err.range === 'object' &&
    err.range !== null &&
    'start' in err.range
      ? err.range.start
      : undefined;
  return typeof range === 'number' ? { message, position: positionOf(source, range) } : { message };
}

function runtimeMessage(err: unknown): string {
  if (err instanceof CostLimitExceeded || err instanceof CelRuntimeError) return err.message;
  const summary = summaryOf(err);
  // cel-go's words start lower case ("no such key: x"); cel-js capitalises some.
  return err instanceof EvaluationError ? summary.charAt(0).toLowerCase() + summary.slice(1) : summary;
}

// ---------------------------------------------------------------- AST walking

// cel-js' AST nodes as Portcullis reads them: `op`, `args`, and the `meta` holding the evaluator,
// a macro's expansion (`alternate`) or a macro object (`macro`). Not in its published types.
interface Node {
  op: string;
  args: unknown;
  start: number;
  evaluate: NodeEvaluate;
  meta: NodeMeta;
}
type NodeEvaluate = (this: unknown, evaluator: unknown, node: unknown, ctx: unknown) => unknown;
interface NodeMeta {
  alternate?: Node;
  macro?: Record<string, unknown> & { evaluate: NodeEvaluate };
  evaluate: NodeEvaluate;
}

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && 'op' in value && 'meta' in value && 'args' in value;
}

function children(node: Node): Node[] {
  const out: Node[] = [];
  const collect = (value: unknown, depth: number): void => {
    if (isNode(value)) out.push(value);
    else if (depth < 3 && Array.isArray(value)) for (const v of value) collect(v, depth + 1);
    else if (depth < 1 && typeof value === 'object' && value !== null)
      for (const v of Object.values(value)) collect(v, depth + 1);
  };
  const meta = node.meta;
  if (meta.alternate !== undefined) out.push(meta.alternate);
  if (meta.macro !== undefined) for (const v of Object.values(meta.macro)) collect(v, 1);
  collect(node.args, 0);
  return out;
}

function walk(root: Node, visit: (node: Node) => void): void {
  const seen = new Set<Node>();
  const pending = [root];
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    if (seen.has(node)) continue;
    seen.add(node);
    visit(node);
    pending.push(...children(node));
  }
}

function countNodes(root: unknown): number {
  if (!isNode(root)) return 1;
  let count = 0;
  walk(root, () => count++);
  return count;
}

/** Each step of every comprehension charges the meter the size of its body. */
function meterComprehensions(root: unknown): void {
  if (!isNode(root)) return;
  walk(root, (node) => {
    if (node.op !== 'comprehension' || typeof node.args !== 'object' || node.args === null) return;
    const step = 'step' in node.args ? node.args.step : undefined;
    if (!isNode(step)) return;
    const weight = countNodes(step);
    const meta = step.meta;
    const alternate = meta.alternate;
    const macro = meta.macro;
    const inner: NodeEvaluate =
      alternate !== undefined
        ? (ev, _node, ctx) => alternate.evaluate(ev, alternate, ctx)
        : macro !== undefined
          ? (ev, _node, ctx) => macro.evaluate(ev, macro, ctx)
          : meta.evaluate;
    step.evaluate = function (ev, node, ctx) {
      spendCost(weight);
      return inner.call(this, ev, node, ctx);
    };
  });
}

/**
 * `matches` calls go to RE2 (the API server's engine; linear time, so no pattern can hang the
 * webhook). A literal pattern that is not RE2 syntax is refused now, as the API server does.
 */
function useRe2(root: unknown, source: string): CompileError | undefined {
  if (!isNode(root)) return undefined;
  let error: CompileError | undefined;
  walk(root, (node) => {
    if (
      (node.op !== 'rcall' && node.op !== 'call') ||
      !Array.isArray(node.args) ||
      node.args[0] !== 'matches'
    )
      return;
    node.args[0] = RE2_MATCHES;
    const argList: unknown = node.op === 'rcall' ? node.args[2] : node.args[1];
    const pattern: unknown = Array.isArray(argList) ? argList[argList.length - 1] : undefined;
    if (isNode(pattern) && pattern.op === 'value' && typeof pattern.args === 'string') {
      const syntax = re2SyntaxError(pattern.args);
      if (syntax !== undefined && error === undefined) {
        error = {
          message: `compilation failed: invalid regular expression ${JSON.stringify(pattern.args)}: ${syntax}`,
          position: positionOf(source, pattern.start),
        };
      } else compileRe2(pattern.args);
    }
  });
  return error;
}

/** Whether a CEL value is an Optional (cel-js' own class). */
export function isOptional(value: unknown): value is Optional {
  return value instanceof Optional;
}
