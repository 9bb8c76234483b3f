// The pure core of Portcullis: everything here is a function of its arguments. The server, the CLI
// and the rules reloader import from this file and nothing imports the other way.

export { CHECKS } from './checks/index.js';
export type { CheckDefinition } from './check.js';
export { evaluate } from './evaluate.js';
export { formatFieldPath, toJsonPointer } from './fieldpath.js';
export { parseImageReference, repositoryOf } from './image.js';
export { denyMessage, outcome, violationText, warnings } from './messages.js';
export { applyMutation, mutate, type Mutation, type PatchOperation } from './mutate.js';
export { POD_TEMPLATE_KINDS } from './pod.js';
export { isObject } from './read.js';
export {
  compileRuleSet,
  formatRuleSetError,
  RULESET_SCHEMA,
  type CompiledRuleSet,
  type RuleSetDocument,
  type RuleSetError,
} from './ruleset.js';
export type * from './types.js';
