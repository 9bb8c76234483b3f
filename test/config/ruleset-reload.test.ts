// RuleSetGate, the one path from a rules source to the server, offered texts in sequence as a poll
// or a watch would: what each offer returns, what the listener hears, and how many times the real
// parseRuleSet ran (counted by wrapping it). A text already judged, good or refused, is not parsed
// again: a refused file stays on disk until someone fixes it, and the 5 s poll re-read it.

import t from 'tap';
import { RuleSetGate } from '../../src/config/ruleset-reload.js';
import { parseRuleSet } from '../../src/config/ruleset-source.js';
import { captureLog } from '../helpers/log.js';
import { BROKEN_RULES_ERROR, brokenRulesText, Recorder, rulesText } from '../helpers/ruleset-recorder.js';

const ORIGIN = 'rules.yaml';
const good = rulesText('a');
const broken = brokenRulesText();
const BROKEN = [`${ORIGIN}:9: ${BROKEN_RULES_ERROR}`];
const UNREADABLE = [`${ORIGIN}: cannot read RuleSet (ENOENT)`];

type Step =
  | { offer: string; expect: 'loaded' | 'invalid' | 'unchanged'; parsed: boolean; why: string }
  | { refuse: readonly string[]; expect: 'invalid' | 'unchanged'; why: string };

const cases: { name: string; steps: Step[] }[] = [
  {
    name: 'a good text polled again',
    steps: [
      { offer: good, expect: 'loaded', parsed: true, why: 'first read' },
      { offer: good, expect: 'unchanged', parsed: false, why: 'the same text' },
      {
        offer: rulesText('a', 'reworded'),
        expect: 'unchanged',
        parsed: true,
        why: 'a comment edit: same hash',
      },
    ],
  },
  {
    name: 'a refused text polled again',
    steps: [
      { offer: good, expect: 'loaded', parsed: true, why: 'in force' },
      { offer: broken, expect: 'invalid', parsed: true, why: 'the broken edit' },
      { offer: broken, expect: 'unchanged', parsed: false, why: 'next poll: not parsed again' },
      { offer: broken, expect: 'unchanged', parsed: false, why: 'and the next' },
      { offer: `${broken}\n`, expect: 'unchanged', parsed: true, why: 'another text: parsed, same refusal' },
      { offer: good, expect: 'loaded', parsed: true, why: 'the fix, though its hash is in force' },
      { offer: broken, expect: 'invalid', parsed: true, why: 'broken again after the fix: news' },
    ],
  },
  {
    name: 'a refusal without a text, then a text',
    steps: [
      { offer: broken, expect: 'invalid', parsed: true, why: 'broken' },
      { refuse: UNREADABLE, expect: 'invalid', why: 'the file went away' },
      { refuse: UNREADABLE, expect: 'unchanged', why: 'still away' },
      { offer: broken, expect: 'invalid', parsed: true, why: 'back, still broken: parsed and news' },
      { offer: broken, expect: 'unchanged', parsed: false, why: 'then not parsed again' },
    ],
  },
];

for (const { name, steps } of cases) {
  t.test(name, async (t) => {
    const recorder = new Recorder();
    let parses = 0;
    const gate = new RuleSetGate(recorder, captureLog().log, (text, origin) => {
      parses += 1;
      return parseRuleSet(text, origin);
    });
    for (const step of steps) {
      const before = parses;
      const result = 'offer' in step ? gate.offer(step.offer, ORIGIN) : gate.refuse(step.refuse);
      t.equal(result.kind, step.expect, `${step.why}: ${step.expect}`);
      if ('offer' in step)
        t.equal(parses - before, step.parsed ? 1 : 0, `${step.why}: parsed ${step.parsed}`);
      const heard = await recorder.during(0);
      if (step.expect === 'unchanged') {
        t.same(heard, [], `${step.why}: nothing delivered`);
      } else if (step.expect === 'invalid') {
        const errors = 'offer' in step ? BROKEN : step.refuse;
        t.match(heard, [{ kind: 'invalid', errors }], `${step.why}: the refusal delivered once`);
      } else {
        t.match(
          heard,
          [{ kind: 'ruleset', loaded: { origin: ORIGIN } }],
          `${step.why}: the RuleSet delivered`,
        );
      }
    }
  });
}
