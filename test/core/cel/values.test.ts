// JSON as CEL reads it when values are converted on access (values.ts): each row is an expression
// over a lazily converted object and the value the API server gives it. The rows aim at the edges
// laziness could get wrong: missing fields, has() and `?.`, int against double, null, lists of
// lists of maps, comprehensions over lazily converted lists and maps, equality between a lazy map
// and a literal one (in both orders, and in the hand-written library), and fields named like the
// properties of a JS object (`__proto__`, `constructor`, `toString`), which are plain keys in CEL.

import t from 'tap';
import { RuleEnvironment } from '../../../src/core/cel/program.js';
import { JsonMap, toCel } from '../../../src/core/cel/values.js';

const env = new RuleEnvironment(new Map());

// As the webhook gets it: JSON.parse keeps "__proto__" as an ordinary own field.
const OBJECT_JSON = JSON.stringify({
  metadata: { name: 'web', labels: { owner: 'a', tier: 'web' } },
  spec: {
    replicas: 3,
    ratio: 0.5,
    whole: 2.0,
    nothing: null,
    containers: [
      { name: 'app', image: 'ghcr.io/acme/app@sha256:0123', ports: [{ containerPort: 8080 }] },
      { name: 'side', image: 'nginx:1.27' },
    ],
    matrix: [[{ name: 'a' }], [{ name: 'b' }, { name: 'c' }]],
  },
}).replace(
  '"spec":',
  '"data":{"__proto__":"p","constructor":"c","toString":"t"},"nested":{"constructor":{"prototype":1}},"spec":',
);
const OLD_JSON = OBJECT_JSON.replace('"replicas":3', '"replicas":2');

function activationOf(objectJson: string, oldJson: string = OLD_JSON) {
  return {
    object: toCel(JSON.parse(objectJson)),
    oldObject: toCel(JSON.parse(oldJson)),
    request: toCel({ operation: 'UPDATE' }),
    params: null,
    namespaceObject: null,
    variables: env.makeVariables(),
  };
}

function run(
  expression: string,
  activation = activationOf(OBJECT_JSON),
): { value: unknown } | { error: string } {
  const compiled = env.compile(expression);
  if (!compiled.ok) return { error: `compile: ${compiled.error.message}` };
  const result = compiled.program.run(activation);
  return result.ok ? { value: result.value } : { error: result.error };
}

const TRUE: string[] = [
  // missing fields, has(), optional access
  'has(object.metadata.labels) && !has(object.metadata.annotations)',
  '!has(object.spec.selector) && has(object.spec.containers) && has(object.metadata.labels.owner)',
  'object.metadata.?annotations.orValue({}).size() == 0',
  "object.metadata.labels[?'owner'].orValue('') == 'a' && !object.metadata.labels[?'team'].hasValue()",
  "object.spec.?containers[?0].?name.orValue('') == 'app' && !object.spec.containers[?5].hasValue()",
  "object.?status.?phase.orValue('none') == 'none'",
  // int against double: a whole JSON number is an int, whether written 2 or 2.0
  'type(object.spec.replicas) == int && object.spec.replicas == 3',
  'type(object.spec.ratio) == double && object.spec.ratio == 0.5',
  'type(object.spec.whole) == int && object.spec.whole + 1 == 3',
  'type(object.spec.containers[0].ports[0].containerPort) == int',
  'object.spec.containers[0].ports[0].containerPort > 8000',
  // null
  'object.spec.nothing == null && type(object.spec.nothing) == null_type',
  // types of the lazily converted values
  'type(object.metadata.labels) == map && type(object.spec.containers) == list && type(object.spec.matrix[1]) == list',
  // nested lists of maps
  "object.spec.matrix[1][0].name == 'b' && object.spec.matrix[1][1].name == 'c'",
  'object.spec.matrix.all(row, row.all(cell, cell.name.size() == 1))',
  'object.spec.matrix.map(row, row.size()) == [1, 2]',
  "object.spec.matrix.exists(row, row.exists(cell, cell.name == 'c'))",
  // comprehensions over lazily converted lists and maps
  "object.spec.containers.map(c, c.name) == ['app', 'side']",
  'object.spec.containers.filter(c, has(c.ports)).size() == 1',
  "object.spec.containers.exists_one(c, c.name == 'side')",
  "object.spec.containers.transformList(i, c, c.name) == ['app', 'side']",
  'object.spec.containers.all(i, c, i < 2 && c.image.size() > 0)',
  '8080 in object.spec.containers[0].ports.map(p, p.containerPort)',
  "object.metadata.labels.all(k, k in ['owner', 'tier'])",
  "object.metadata.labels.exists(k, object.metadata.labels[k] == 'web')",
  'object.metadata.labels.all(k, v, v.size() > 0)',
  'size(object.metadata.labels) == 2 && object.spec.containers.size() == 2',
  // equality between lazy maps and lists and literals, in both orders
  "object.metadata.labels == {'owner': 'a', 'tier': 'web'}",
  "{'tier': 'web', 'owner': 'a'} == object.metadata.labels",
  "object.spec.containers[0].ports == [{'containerPort': 8080}]",
  "[{'containerPort': 8080}] == object.spec.containers[0].ports",
  "object.spec.matrix == [[{'name': 'a'}], [{'name': 'b'}, {'name': 'c'}]]",
  'object.metadata == oldObject.metadata && object.spec != oldObject.spec',
  // the hand-written library sees a lazy map as a map
  "[object.metadata.labels].indexOf({'owner': 'a', 'tier': 'web'}) == 0",
  "sets.contains([object.metadata.labels, {'x': 'y'}], [{'tier': 'web', 'owner': 'a'}])",
  "'%s'.format([object.metadata.name]) == 'web'",
  // fields named like JS object properties are plain keys
  "object.data.__proto__ == 'p' && object.data['__proto__'] == 'p'",
  "object.data.constructor == 'c' && object.data['constructor'] == 'c'",
  "object.data.toString == 't'",
  "'__proto__' in object.data && 'constructor' in object.data && 'toString' in object.data",
  'has(object.data.constructor) && has(object.data.__proto__) && size(object.data) == 3',
  "object.data.all(k, k in ['__proto__', 'constructor', 'toString'])",
  "object.data.all(k, v, v.size() == 1) && object.data.exists(k, v, k == '__proto__' && v == 'p')",
  'object.nested.constructor.prototype == 1 && type(object.nested.constructor) == map',
  "'%s'.format([object.data.toString]) == 't'",
];

const FALSE: string[] = [
  // distractors: near misses of the rows above
  "object.metadata.labels == {'owner': 'a'}",
  "object.metadata.labels == {'owner': 'a', 'tier': 'db'}",
  "{'owner': 'a', 'tier': 'web', 'x': 'y'} == object.metadata.labels",
  "object.spec.containers[0].ports == [{'containerPort': 8081}]",
  'object.spec == oldObject.spec',
  "object.spec.containers.exists(c, c.name == 'db')",
  'has(object.metadata.labels.toString) || has(object.data.valueOf)',
  "'hasOwnProperty' in object.metadata.labels || 'valueOf' in object.data",
  "[object.metadata.labels].indexOf({'owner': 'a', 'tier': 'db'}) == 0",
  'type(object.spec.ratio) == int',
];

t.test('expressions that are true over lazily converted JSON', async (t) => {
  for (const expression of TRUE) t.same(run(expression), { value: true }, expression);
});

t.test('distractors that are false', async (t) => {
  for (const expression of FALSE) t.same(run(expression), { value: false }, expression);
});

t.test('missing fields are errors, as in cel-go, whatever their name', async (t) => {
  const rows: [string, string][] = [
    ['object.metadata.annotations.x', 'no such key: annotations'],
    ['object.metadata.labels.toString', 'no such key: toString'],
    ['object.metadata.labels.constructor', 'no such key: constructor'],
    ['object.metadata.labels.__proto__', 'no such key: __proto__'],
    ['object.data.valueOf', 'no such key: valueOf'],
    ['object.spec.matrix[2]', 'no such key: index out of bounds, index 2 >= size 2'],
    [
      'object.spec.containers.all(c, c.ports[0].containerPort > 0) || object.spec.containers[1].ports == []',
      'no such key: ports',
    ],
  ];
  for (const [expression, error] of rows) t.same(run(expression), { error }, expression);
});

t.test('only the fields an expression reaches are read', async (t) => {
  const raw: unknown = JSON.parse(OBJECT_JSON);
  if (typeof raw !== 'object' || raw === null) throw new Error('the fixture is an object');
  const read: string[] = [];
  for (const key of ['spec', 'data'])
    Object.defineProperty(raw, key, {
      enumerable: true,
      get() {
        read.push(key);
        return {};
      },
    });
  const activation = { ...activationOf(OBJECT_JSON), object: toCel(raw) };
  t.same(run("object.metadata.name == 'web'", activation), { value: true });
  t.same(read, [], 'spec and data never read');
  t.same(run('has(object.spec.x) || has(object.spec.y)', activation), { value: false });
  t.same(read, ['spec'], 'spec read once, however often it is reached');
});

t.test('conversion leaves the parsed object as it was', async (t) => {
  const raw: unknown = JSON.parse(OBJECT_JSON);
  const activation = { ...activationOf(OBJECT_JSON), object: toCel(raw) };
  t.same(run('object.data.all(k, v, true) && object.spec.matrix.size() == 2', activation), { value: true });
  t.equal(JSON.stringify(raw), OBJECT_JSON);
  const map = toCel(raw);
  t.ok(map instanceof JsonMap);
  if (map instanceof JsonMap) {
    t.throws(() => map.set('x'), { message: 'a CEL value is read-only: cannot set x' });
    t.throws(() => map.delete('metadata'), { message: 'a CEL value is read-only: cannot delete metadata' });
    t.throws(
      () => {
        map.clear();
      },
      { message: 'a CEL value is read-only: cannot clear it' },
    );
    t.same([...map.keys()], ['metadata', 'data', 'nested', 'spec'], "the object's order");
  }
});

t.test('what an object holds cannot make conversion or evaluation unbounded', async (t) => {
  // A big list is converted when it is read, and the cost limit still stops a walk over it.
  const big = JSON.stringify({ spec: { big: Array.from({ length: 2_000 }, (_, i) => i) } });
  const activation = activationOf(big, big);
  t.same(run('object.spec.big.size() == 2000 && object.spec.big[1999] == 1999', activation), { value: true });
  t.same(run('object.spec.big.all(x, object.spec.big.all(y, x + y >= 0))', activation), {
    error: 'operation cancelled: actual cost limit exceeded',
  });
  // Lists nested deeper than the stack allows (the webhook refuses JSON deeper than 256 levels;
  // the core fails closed on any depth): an error, never a crash.
  let deep: unknown = [];
  for (let i = 0; i < 200_000; i++) deep = [deep];
  const deepActivation = { ...activationOf(big, big), object: toCel({ spec: { deep } }) };
  t.same(run('size(object.spec.deep) == 1', deepActivation), { error: 'Maximum call stack size exceeded' });
});
