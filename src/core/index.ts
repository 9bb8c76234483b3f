// The pure core of Portcullis: everything here is a function of its arguments. The server, the CLI
// and the rules reloader import from this file and nothing imports the other way.

export { CHECKS } from './checks/index.js';
export {
  defineCheck,
  schemaIssues,
  type CheckDefinition,
  type CompiledCheck,
  type Finding,
} from './check.js';
export { evaluate, rulesFor } from './evaluate.js';
export { formatFieldPath, toJsonPointer } from './fieldpath.js';
export { parseImageReference, repositoryOf } from './image.js';
export { denyMessage, exceptionsApplied, outcome, violationText, warnings } from './messages.js';
export { stateAt, type CompiledException } from './exceptions.js';
export { applyMutation, mutate, type Mutation, type PatchOperation } from './mutate.js';
export { POD_TARGET, POD_TEMPLATE_KINDS } from './pod.js';
export { mutationCondition } from './webhook-conditions.js';
export { celWebhookRules, type WebhookRule } from './cel/webhook.js';
export { CEL_TARGET } from './cel/target.js';
export { BINDING_TARGET, readRole, ROLE_TARGET, type RoleView } from './rbac.js';
export { RoleIndex, type RoleLookup } from './grants.js';
export {
  connectSession,
  formatCommandLine,
  podSessions,
  recordedCommandLine,
  SESSION_KINDS,
  SESSION_TARGET,
  wantsConnectPod,
  type ConnectView,
  type DebugView,
  type SessionView,
} from './connect.js';
export type { Target } from './target.js';
export { LATEST, parseKubeVersion, type KubeVersion } from './version.js';
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
