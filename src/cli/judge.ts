// One request judged as the cluster would judge it: the API server calls /mutate before /validate,
// so the rules see the object with Portcullis' own patch applied. `check`, `replay` and `scan` all
// judge through here, so none of them can drift from the others or from the webhook.

import {
  applyMutation,
  evaluate,
  mutate,
  type AdmissionRequest,
  type CompiledRuleSet,
  type Decision,
  type EvaluationContext,
  type Mutation,
} from '../core/index.js';

export interface Judgement {
  decision: Decision;
  /** What /mutate would patch before validation (the decision judges the patched object). */
  mutation: Mutation;
}

/** `context` carries the facts of the moment judged (replay judges an event at its own time). */
export function judgeAsAdmitted(
  request: AdmissionRequest,
  ruleset: CompiledRuleSet,
  context: EvaluationContext = {},
): Judgement {
  const mutation = mutate(request, ruleset);
  const judged =
    mutation.patch.length === 0
      ? request
      : { ...request, object: applyMutation(request.object, mutation.patch) };
  return { decision: evaluate(judged, ruleset, context), mutation };
}
