// Kubernetes' CEL environment as Portcullis builds it on cel-js: each row is an expression and the
// value the API server gives it (k8s.io/apiserver/pkg/cel/library tests and cel-go's ext docs),
// with distractor rows that must come out false, and the errors that must stay errors.

import t from 'tap';
import { remainingCost } from '../../../src/core/cel/cost.js';
import { RuleEnvironment } from '../../../src/core/cel/program.js';
import { toCel } from '../../../src/core/cel/values.js';

const env = new RuleEnvironment(new Map());
const object = toCel({
  metadata: { name: 'web', labels: { owner: 'a', tier: 'web' } },
  spec: {
    replicas: 3,
    ratio: 0.5,
    containers: [
      { name: 'app', image: 'ghcr.io/acme/app@sha256:0123', ports: [{ containerPort: 8080 }] },
      { name: 'side', image: 'nginx:1.27' },
    ],
  },
});
const activation = {
  object,
  oldObject: null,
  request: {},
  params: null,
  namespaceObject: null,
  variables: env.makeVariables(),
};

function run(expression: string): { value: unknown } | { error: string } {
  const compiled = env.compile(expression);
  if (!compiled.ok) return { error: `compile: ${compiled.error.message}` };
  const result = compiled.program.run(activation);
  return result.ok ? { value: result.value } : { error: result.error };
}

const TRUE: string[] = [
  // integers are ints, doubles doubles
  'object.spec.replicas == 3 && type(object.spec.replicas) == int',
  'type(object.spec.ratio) == double',
  // optional types
  'object.metadata.?annotations.orValue({}).size() == 0',
  "object.metadata.labels[?'owner'].orValue('') == 'a'",
  '!object.metadata.?annotations.hasValue()',
  // strings extension
  "'hello'.charAt(1) == 'e'",
  "'hello'.replace('l', 'L') == 'heLLo' && 'hello'.replace('l', 'L', 1) == 'heLlo'",
  "'hello'.reverse() == 'olleh'",
  'strings.quote(\'a"b\') == \'"a\\\\"b"\'',
  "'%s has %d containers (%.1f%%)'.format([object.metadata.name, size(object.spec.containers), 50.0]) == 'web has 2 containers (50.0%)'",
  "'a,b,c'.split(',') == ['a', 'b', 'c'] && ['a', 'b'].join('-') == 'a-b'",
  "' x '.trim() == 'x' && 'AbC'.lowerAscii() == 'abc' && 'hello'.lastIndexOf('l') == 3",
  // lists
  '[1, 2, 3].isSorted() && ![3, 1].isSorted()',
  '[1, 2, 3].sum() == 6 && [1.5, 2.5].sum() == 4.0',
  '[3, 1, 2].min() == 1 && [3, 1, 2].max() == 3',
  "[1, 2, 3, 2].indexOf(2) == 1 && [1, 2, 3, 2].lastIndexOf(2) == 3 && ['a'].indexOf('z') == -1",
  // sets
  'sets.contains([1, 2, 3], [3, 1]) && !sets.contains([1], [2])',
  'sets.equivalent([1, 2], [2, 1, 1]) && sets.intersects([1, 5], [5])',
  // regex (RE2)
  "object.spec.containers[0].image.matches('@sha256:[0-9a-f]+$')",
  "!object.spec.containers[1].image.matches('@sha256:')",
  "matches('abc', '^a')",
  "'abc123def45'.find('[0-9]+') == '123' && 'abc'.find('[0-9]') == ''",
  "'abc123def45'.findAll('[0-9]+') == ['123', '45'] && 'a1b2c3'.findAll('[0-9]', 2) == ['1', '2']",
  "'ABC'.matches('(?i)abc')",
  // url
  "url('https://example.com:8443/a/b?x=1&x=2&y=').getScheme() == 'https'",
  "url('https://example.com:8443/a').getHost() == 'example.com:8443' && url('https://example.com:8443/a').getHostname() == 'example.com'",
  "url('https://[::1]:80/').getHostname() == '::1' && url('https://[::1]:80/').getPort() == '80'",
  "url('https://e.com/a%20b').getEscapedPath() == '/a%20b'",
  "url('https://e.com/?x=1&x=2&y=').getQuery() == {'x': ['1', '2'], 'y': ['']}",
  "isURL('/absolute/path') && !isURL('relative/path') && !isURL('not a url')",
  // quantity
  "quantity('1Gi').isGreaterThan(quantity('1G')) && quantity('1k').isLessThan(quantity('1Ki'))",
  "quantity('500m').asApproximateFloat() == 0.5 && !quantity('500m').isInteger()",
  "quantity('2k').asInteger() == 2000 && quantity('1.5Gi').asInteger() == 1610612736",
  "quantity('1Mi').add(quantity('1Ki')).compareTo(quantity('1049600')) == 0",
  "quantity('1').sub(2).sign() == -1 && quantity('0').sign() == 0",
  "quantity('1e3').compareTo(quantity('1k')) == 0",
  "isQuantity('250m') && !isQuantity('1.5.5') && !isQuantity('Gi')",
  // ip and cidr
  "ip('10.0.0.1').family() == 4 && ip('fd00::1').family() == 6",
  "ip('127.0.0.1').isLoopback() && ip('::1').isLoopback() && !ip('10.0.0.1').isLoopback()",
  "ip('0.0.0.0').isUnspecified() && ip('169.254.1.1').isLinkLocalUnicast() && ip('224.0.0.1').isLinkLocalMulticast()",
  "ip('8.8.8.8').isGlobalUnicast() && !ip('127.0.0.1').isGlobalUnicast()",
  "ip.isCanonical('2001:db8::1') && !ip.isCanonical('2001:0db8::1')",
  "string(ip('2001:0db8:0:0::1')) == '2001:db8::1'",
  "isIP('10.0.0.1') && !isIP('010.0.0.1') && !isIP('::ffff:1.2.3.4') && !isIP('fe80::1%eth0')",
  "cidr('10.0.0.0/8').containsIP('10.1.2.3') && !cidr('10.0.0.0/8').containsIP('11.0.0.1')",
  "cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16') && !cidr('10.1.0.0/16').containsCIDR('10.0.0.0/8')",
  "string(cidr('10.1.2.3/8').masked()) == '10.0.0.0/8' && cidr('10.1.2.3/8').prefixLength() == 8",
  "string(cidr('10.1.2.3/8').ip()) == '10.1.2.3'",
  "isCIDR('fd00::/64') && !isCIDR('10.0.0.0/33') && !isCIDR('10.0.0.1')",
  // named formats
  "!format.dns1123Label().validate('good-name').hasValue()",
  "format.dns1123Label().validate('Bad_Name').hasValue()",
  "!format.named('dns1123Subdomain').value().validate('a.b.c').hasValue()",
  "!format.named('nope').hasValue()",
  "!format.qualifiedName().validate('example.com/MyName').hasValue() && format.labelValue().validate('-x').hasValue()",
  "!format.uuid().validate('123e4567-e89b-12d3-a456-426614174000').hasValue()",
  // comprehensions, including two-variable ones
  "object.spec.containers.all(c, c.name != '')",
  "object.spec.containers.exists_one(c, c.name == 'side')",
  "object.spec.containers.all(i, c, i < 2 && c.name != '')",
  "object.spec.containers.exists(i, c, i == 1 && c.name == 'side')",
  "object.spec.containers.existsOne(i, c, c.name.startsWith('s'))",
  "object.metadata.labels.all(k, v, k != '' && v != '')",
  "object.spec.containers.transformList(i, c, c.name + string(i)) == ['app0', 'side1']",
  "object.spec.containers.transformList(i, c, i > 0, c.name) == ['side']",
  "object.metadata.labels.transformMap(k, v, v + '!') == {'owner': 'a!', 'tier': 'web!'}",
  "object.spec.containers.map(c, c.name).filter(n, n.startsWith('a')) == ['app']",
  'cel.bind(n, object.spec.replicas, n * 2 == 6)',
];

const FALSE: string[] = [
  "object.spec.containers.all(c, c.image.matches('@sha256:'))",
  "ip('10.0.0.1').isLoopback()",
  "quantity('1G').isGreaterThan(quantity('1Gi'))",
  "'owner' in object.metadata.?annotations.orValue({})",
  'object.spec.containers.exists(i, c, i > 5)',
];

t.test('expressions that are true', async (t) => {
  for (const expression of TRUE) t.same(run(expression), { value: true }, expression);
});

t.test('distractors that are false', async (t) => {
  for (const expression of FALSE) t.same(run(expression), { value: false }, expression);
});

t.test('runtime errors are values, in cel-go words', async (t) => {
  const rows: [string, string][] = [
    ['object.metadata.annotations.x', 'no such key: annotations'],
    ['object.spec.containers[5].name', 'no such key: index out of bounds, index 5 >= size 2'],
    ["quantity('1.5').asInteger() == 1", 'cannot convert value to integer'],
    [
      "ip('nope').family() == 4",
      'IP Address "nope" parse error during conversion from string: ParseAddr("nope"): unable to parse IP',
    ],
    [
      "'x'.matches(object.metadata.name + '(')",
      'invalid regular expression "web(": error parsing regexp: missing closing ): `web(`',
    ],
    ['[].min() == 0', 'min() of an empty list'],
  ];
  for (const [expression, error] of rows) t.same(run(expression), { error }, expression);
});

t.test('the cost limit stops a runaway expression, and a cheap one is cheap', async (t) => {
  const ten = '[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]';
  const runaway = `${ten}.all(a, ${ten}.all(b, ${ten}.all(c, ${ten}.all(d, ${ten}.all(e, ${ten}.all(f, true))))))`;
  t.same(run(runaway), { error: 'operation cancelled: actual cost limit exceeded' });
  t.same(run(`${ten}.all(a, ${ten}.all(b, a + b >= 0))`), { value: true });
  t.ok(remainingCost() > 990_000, `100 iterations cost ${1_000_000 - remainingCost()} units`);
  // Two-variable comprehensions are metered too.
  const runaway2 = `${ten}.all(i, a, ${ten}.all(j, b, ${ten}.all(k, c, ${ten}.all(l, d, ${ten}.all(m, e, ${ten}.all(n, f, ${ten}.all(o, g, true)))))))`;
  t.same(run(runaway2), { error: 'operation cancelled: actual cost limit exceeded' });
});

t.test('a backtracking pattern is linear under RE2', async (t) => {
  // (a+)+$ on "aaaa…b" takes exponential time in a backtracking engine such as JS RegExp.
  const started = performance.now();
  t.same(run(`'${'a'.repeat(64)}b'.matches('(a+)+$')`), { value: false });
  t.ok(performance.now() - started < 1000, 'answered at once');
});
