import t from 'tap';
import { compileRuleSet, evaluate, formatFieldPath, formatRuleSetError } from '../../../src/core/index.js';
import { pod, podSpec, requestFor } from '../../helpers/requests.js';
import { expectDecision } from '../../helpers/decisions.js';
import { oneRule } from '../../helpers/rules.js';

const SHA = 'sha256:' + 'cd'.repeat(32);
const REGISTRIES = ['ghcr.io/acme', 'docker.io/library', 'localhost:5000', 'registry.k8s.io/'];
const ruleset = oneRule('trustedRegistries', { registries: REGISTRIES });

const untrusted = (image: string, normalised?: string, who = 'container "app"') =>
  `${who}: image "${image}"${normalised === undefined ? '' : ` (${normalised})`} is not from a trusted registry [r]`;
const invalid = (image: string, reason: string) =>
  `container "app": image "${image}" is not a valid image reference: ${reason} [r]`;

// [image, messages]: no messages means trusted.
const trust: [image: string, messages: string[]][] = [
  ['ghcr.io/acme/app', []],
  ['ghcr.io/acme', []],
  ['ghcr.io/acme/team/app:v2', []],
  [`ghcr.io/acme/app:1@${SHA}`, []],
  ['GHCR.IO/acme/app', []],
  ['ghcr.io/acmecorp/app', [untrusted('ghcr.io/acmecorp/app')]],
  ['ghcr.io/acme-corp/app', [untrusted('ghcr.io/acme-corp/app')]],
  ['ghcr.io.evil.com/acme/app', [untrusted('ghcr.io.evil.com/acme/app')]],
  ['evil.io/ghcr.io/acme/app', [untrusted('evil.io/ghcr.io/acme/app')]],
  ['ghcr.io:443/acme/app', [untrusted('ghcr.io:443/acme/app')]],
  ['EVIL.IO/acme/app', [untrusted('EVIL.IO/acme/app', 'evil.io/acme/app')]],
  ['ghcr.io/other/app', [untrusted('ghcr.io/other/app')]],
  // docker.io/library is the official images, written any way the runtime accepts.
  ['nginx', []],
  ['nginx:1.25', []],
  [`nginx@${SHA}`, []],
  ['library/nginx', []],
  ['docker.io/nginx', []],
  ['index.docker.io/library/nginx', []],
  ['bitnami/redis', [untrusted('bitnami/redis', 'docker.io/bitnami/redis')]],
  ['docker.io/librarything/x', [untrusted('docker.io/librarything/x')]],
  // A host with its port; an entry written with a trailing "/".
  ['localhost:5000/team/app', []],
  ['localhost:5001/team/app', [untrusted('localhost:5001/team/app')]],
  ['localhost/team/app', [untrusted('localhost/team/app')]],
  ['registry.k8s.io/pause:3.10', []],
  ['registry.k8s.io.evil.com/pause', [untrusted('registry.k8s.io.evil.com/pause')]],
  // Not a reference at all.
  ['ghcr.io/Acme/app', [invalid('ghcr.io/Acme/app', 'repository name must be lowercase')]],
  [
    'ghcr.io/acme/../evil',
    [invalid('ghcr.io/acme/../evil', 'has an invalid repository path "acme/../evil"')],
  ],
  ['', [invalid('', 'is empty')]],
  ['f'.repeat(64), [invalid('f'.repeat(64), 'is a bare image ID, not a repository reference')]],
];

for (const [image, messages] of trust) {
  t.test(`image ${JSON.stringify(image)}`, async (t) => {
    const decision = evaluate(
      requestFor('Pod', pod(podSpec({ containers: [{ name: 'app', image }] }))),
      ruleset,
    );
    expectDecision(t, decision, {
      messages,
      fields: messages.length > 0 ? ['spec.containers[0].image'] : undefined,
    });
  });
}

t.test('every container list is judged, and each offender is named', async (t) => {
  const spec = podSpec({
    initContainers: [{ name: 'setup', image: 'bitnami/kubectl' }],
    containers: [
      { name: 'app', image: 'ghcr.io/acme/app' },
      { name: 'sidecar', image: 'quay.io/x/y' },
    ],
    ephemeralContainers: [{ name: 'debugger', image: 'ghcr.io/acmecorp/debug' }],
  });
  const decision = evaluate(requestFor('Pod', pod(spec)), ruleset);
  t.equal(decision.allowed, false);
  t.same(
    decision.violations.map((v) => `${v.message} [${v.rule}]`),
    [
      untrusted('bitnami/kubectl', 'docker.io/bitnami/kubectl', 'initContainer "setup"'),
      untrusted('quay.io/x/y', undefined, 'container "sidecar"'),
      untrusted('ghcr.io/acmecorp/debug', undefined, 'ephemeralContainer "debugger"'),
    ],
  );
  t.same(
    decision.violations.map((v) => formatFieldPath(v.path)),
    ['spec.initContainers[0].image', 'spec.containers[1].image', 'spec.ephemeralContainers[0].image'],
  );
});

t.test('a container without an image is denied', async (t) => {
  const decision = evaluate(requestFor('Pod', pod(podSpec({ containers: [{ name: 'app' }] }))), ruleset);
  t.equal(decision.allowed, false);
  t.same(
    decision.violations.map((v) => [v.message, formatFieldPath(v.path)]),
    [['container "app": image is required', 'spec.containers[0].image']],
  );
});

t.test('an image that is not a string fails closed', async (t) => {
  const decision = evaluate(
    requestFor('Pod', pod(podSpec({ containers: [{ name: 'app', image: ['nginx'] }] }))),
    ruleset,
  );
  t.equal(decision.allowed, false);
  t.same(decision.malformed, {
    path: ['spec', 'containers', 0, 'image'],
    message: 'must be a string, not a list',
  });
});

t.test('registries entries are validated when the RuleSet compiles', async (t) => {
  const compile = (registries: unknown) =>
    compileRuleSet({
      apiVersion: 'portcullis.io/v1',
      kind: 'RuleSet',
      rules: [{ name: 'trusted', check: 'trustedRegistries', params: { registries } }],
    });
  const errorsOf = (registries: unknown): string[] => {
    const result = compile(registries);
    return result.ok ? [] : result.errors.map(formatRuleSetError);
  };
  const host = 'must start with a registry host (with a "." or a port, or "localhost")';

  const rows: [entries: unknown, errors: string[]][] = [
    [
      [
        'ghcr.io',
        'ghcr.io/acme/',
        'GHCR.IO/acme',
        'localhost',
        'localhost:5000/x',
        '[::1]:5000',
        'docker.io/library',
      ],
      [],
    ],
    [
      ['ghcr.io', '*'],
      [
        'rules[0].params.registries[1]: "*" must not contain "*": an entry already trusts every repository below it',
      ],
    ],
    [
      ['ghcr.io/acme/*'],
      [
        'rules[0].params.registries[0]: "ghcr.io/acme/*" must not contain "*": an entry already trusts every repository below it',
      ],
    ],
    [
      ['ghcr.io', 'nginx'],
      [`rules[0].params.registries[1]: "nginx" ${host}, e.g. "docker.io/library/nginx"`],
    ],
    [
      ['bitnami/redis'],
      [`rules[0].params.registries[0]: "bitnami/redis" ${host}, e.g. "docker.io/bitnami/redis"`],
    ],
    [
      ['ghcr.io/Acme'],
      ['rules[0].params.registries[0]: "ghcr.io/Acme" has an invalid repository path "Acme"'],
    ],
    [
      ['ghcr.io//acme'],
      ['rules[0].params.registries[0]: "ghcr.io//acme" has an invalid repository path "/acme"'],
    ],
    [[], ['rules[0].params.registries: must NOT have fewer than 1 items']],
    [[''], ['rules[0].params.registries[0]: must NOT have fewer than 1 characters']],
    ['ghcr.io', ['rules[0].params.registries: must be array']],
  ];
  for (const [entries, errors] of rows) t.same(errorsOf(entries), errors, JSON.stringify(entries));

  const missing = compileRuleSet({
    apiVersion: 'portcullis.io/v1',
    kind: 'RuleSet',
    rules: [{ name: 'trusted', check: 'trustedRegistries' }],
  });
  t.same(missing.ok ? [] : missing.errors.map(formatRuleSetError), [
    'rules[0].params.registries: is required',
  ]);

  // What the hint suggests must actually trust what the author meant.
  const hinted = oneRule('trustedRegistries', { registries: ['docker.io/library/nginx'] });
  t.equal(
    evaluate(requestFor('Pod', pod(podSpec({ containers: [{ name: 'app', image: 'nginx:1.25' }] }))), hinted)
      .allowed,
    true,
    'the hinted entry trusts nginx',
  );
});

t.test('a trailing "/" and upper-case host in an entry trust like the plain entry', async (t) => {
  for (const entry of ['ghcr.io/acme/', 'GHCR.IO/acme']) {
    const rs = oneRule('trustedRegistries', { registries: [entry] });
    const judge = (image: string) =>
      evaluate(requestFor('Pod', pod(podSpec({ containers: [{ name: 'app', image }] }))), rs).allowed;
    t.equal(judge('ghcr.io/acme/app'), true, `${entry} trusts ghcr.io/acme/app`);
    t.equal(judge('ghcr.io/acmecorp/app'), false, `${entry} does not trust ghcr.io/acmecorp/app`);
  }
});
