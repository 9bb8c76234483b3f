import t from 'tap';
import { selectorMatches, type LabelSelector } from '../../src/core/selector.js';

const labels = { team: 'shop', tier: 'web' };

const rows: [name: string, selector: LabelSelector | undefined, matches: boolean][] = [
  ['no selector selects everything', undefined, true],
  ['an empty selector selects everything', {}, true],
  ['matchLabels all present', { matchLabels: { team: 'shop', tier: 'web' } }, true],
  ['matchLabels one differs (distractor)', { matchLabels: { team: 'shop', tier: 'db' } }, false],
  ['In listed', { matchExpressions: [{ key: 'team', operator: 'In', values: ['lab', 'shop'] }] }, true],
  ['In not listed', { matchExpressions: [{ key: 'team', operator: 'In', values: ['lab'] }] }, false],
  ['In on a missing key', { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] }, false],
  ['NotIn not listed', { matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['lab'] }] }, true],
  ['NotIn listed', { matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['shop'] }] }, false],
  [
    'NotIn on a missing key',
    { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] },
    true,
  ],
  ['Exists', { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, true],
  ['Exists on a missing key', { matchExpressions: [{ key: 'env', operator: 'Exists' }] }, false],
  [
    'Exists on an Object.prototype name is not inherited',
    { matchExpressions: [{ key: 'constructor', operator: 'Exists' }] },
    false,
  ],
  ['DoesNotExist on a missing key', { matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] }, true],
  ['DoesNotExist on a present key', { matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] }, false],
  ['an unknown operator selects nothing', { matchExpressions: [{ key: 'team', operator: 'Equals' }] }, false],
  [
    'labels and expressions together: all must hold',
    { matchLabels: { team: 'shop' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['db'] }] },
    false,
  ],
];

for (const [name, selector, matches] of rows) {
  t.equal(selectorMatches(selector, labels), matches, name);
}
