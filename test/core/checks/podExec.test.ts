import t, { type Test } from 'tap';
import {
  connectSession,
  evaluate,
  podSessions,
  formatCommandLine,
  wantsConnectPod,
  type AdmissionRequest,
  type EvaluationContext,
} from '../../../src/core/index.js';
import { expectDecision } from '../../helpers/decisions.js';
import { connectRequest, debugContainer, debugRequest, execOptions } from '../../helpers/requests.js';
import { oneRule, ruleSet } from '../../helpers/rules.js';

// What kubectl 1.32 sends through kube-apiserver 1.34 (captured): `kubectl exec web -c app -- sh -c
// 'cat /var/run/secrets/x'` is command ["sh", "-c", "cat /var/run/secrets/x"]; `-it` adds stdin and
// tty (and drops stderr); attach has no command; port-forward has nothing but its kind.
const exec = (command: string[], extra: Record<string, unknown> = {}, who = {}): AdmissionRequest =>
  connectRequest('exec', execOptions(command, extra), who);
const interactive = { stdin: true, tty: true, stderr: false };

t.test('the command line: argv joined by spaces, shell-quoted where needed', async (t) => {
  const rows: [argv: string[], line: string][] = [
    [[], ''],
    [['ls', '-l', '/tmp'], 'ls -l /tmp'],
    [['sh', '-c', 'cat /var/run/secrets/x'], "sh -c 'cat /var/run/secrets/x'"],
    [['echo', "it's"], "echo 'it'\\''s'"],
    [['echo', ''], "echo ''"],
    [['echo', '$HOME', 'a*b', 'a;b'], "echo '$HOME' 'a*b' 'a;b'"],
    [['printf', 'a\nb'], "printf 'a\nb'"],
    [['env', 'A=1', '--opt=x,y', 'user@host:/p%2F', '_+.'], 'env A=1 --opt=x,y user@host:/p%2F _+.'],
    [['rm', '-rf /'], "rm '-rf /'"],
  ];
  for (const [argv, line] of rows) t.equal(formatCommandLine(argv), line, JSON.stringify(argv));
});

interface Row {
  name: string;
  request: AdmissionRequest;
  messages: string[];
  fields?: string[];
  context?: EvaluationContext;
}

function table(t: Test, params: Record<string, unknown>, rows: readonly Row[], rule = {}): void {
  const ruleset = oneRule('podExec', params, rule);
  for (const row of rows) {
    t.test(row.name, async (t) => {
      expectDecision(t, evaluate(row.request, ruleset, row.context), {
        messages: row.messages,
        fields: row.fields,
      });
    });
  }
}

const into = 'into pod shop/web container app';

t.test('denyCommands: globs on the whole command line', async (t) => {
  table(
    t,
    { denyCommands: ['*/var/run/secrets/*', 'nsenter*', '*chroot /host*', 'rm -rf /', 'cat /tmp/a.b'] },
    [
      {
        name: 'reading the service-account token',
        request: exec(['cat', '/var/run/secrets/kubernetes.io/serviceaccount/token']),
        messages: [
          `exec "cat /var/run/secrets/kubernetes.io/serviceaccount/token" ${into}: command matches "*/var/run/secrets/*" [r]`,
        ],
        fields: ['command'],
      },
      {
        name: 'the same through sh -c: * spans the quotes',
        request: exec(['sh', '-c', 'cat /var/run/secrets/x']),
        messages: [
          `exec "sh -c 'cat /var/run/secrets/x'" ${into}: command matches "*/var/run/secrets/*" [r]`,
        ],
      },
      {
        name: 'kubectl cp out of the secrets directory is an exec of tar',
        request: exec(['tar', 'cf', '-', '/var/run/secrets/kubernetes.io/serviceaccount']),
        messages: [
          `exec "tar cf - /var/run/secrets/kubernetes.io/serviceaccount" ${into}: command matches "*/var/run/secrets/*" [r]`,
        ],
      },
      {
        name: 'a look-alike directory (distractor)',
        request: exec(['cat', '/var/run/secrets-old/x']),
        messages: [],
      },
      { name: 'the parent directory (distractor)', request: exec(['ls', '/var/run/secrets']), messages: [] },
      {
        name: 'nsenter* matches nsenter with arguments',
        request: exec(['nsenter', '-t', '1', '-m', '-u', '-i', '-n', 'sh']),
        messages: [`exec "nsenter -t 1 -m -u -i -n sh" ${into}: command matches "nsenter*" [r]`],
      },
      {
        name: 'a pattern is anchored at the start: /usr/bin/nsenter escapes nsenter* (distractor)',
        request: exec(['/usr/bin/nsenter', '-t', '1']),
        messages: [],
      },
      { name: 'case-sensitive (distractor)', request: exec(['NSENTER', '-t', '1']), messages: [] },
      {
        name: 'chroot /host inside a script',
        request: exec(['bash', '-c', 'chroot /host bash']),
        messages: [`exec "bash -c 'chroot /host bash'" ${into}: command matches "*chroot /host*" [r]`],
      },
      {
        name: 'argument boundaries count: rm -rf / as three arguments',
        request: exec(['rm', '-rf', '/']),
        messages: [`exec "rm -rf /" ${into}: command matches "rm -rf /" [r]`],
      },
      {
        name: 'one argument "-rf /" is quoted, and is not the pattern (distractor)',
        request: exec(['rm', '-rf /']),
        messages: [],
      },
      {
        name: 'a pattern without * is the whole line: more arguments do not match (distractor)',
        request: exec(['rm', '-rf', '/', '--no-preserve-root']),
        messages: [],
      },
      {
        name: '. in a pattern is a literal dot (distractor)',
        request: exec(['cat', '/tmp/aXb']),
        messages: [],
      },
      {
        name: '. in a pattern matches a dot',
        request: exec(['cat', '/tmp/a.b']),
        messages: [`exec "cat /tmp/a.b" ${into}: command matches "cat /tmp/a.b" [r]`],
      },
      {
        name: 'attach has no command: command patterns do not apply',
        request: connectRequest('attach', { stdin: true, stdout: true, stderr: true, container: 'app' }),
        messages: [],
      },
    ],
  );
});

t.test('denyCommands: ? and [ are literal, the first matching pattern is cited', async (t) => {
  table(t, { denyCommands: ['ls ?', 'cat [ab]', '*token*', '*/var/run/secrets/*'] }, [
    { name: '? is not a wildcard (distractor)', request: exec(['ls', 'a']), messages: [] },
    { name: '[ab] is not a class (distractor)', request: exec(['cat', 'a']), messages: [] },
    {
      name: 'the first pattern that matches',
      request: exec(['cat', '/var/run/secrets/token']),
      messages: [`exec "cat /var/run/secrets/token" ${into}: command matches "*token*" [r]`],
    },
  ]);
});

t.test('allowCommands: only these, and denyCommands first', async (t) => {
  table(t, { allowCommands: ['ls *', 'date', 'cat /tmp/*'], denyCommands: ['*secret*'] }, [
    { name: 'an allowed command', request: exec(['ls', '-l', '/data']), messages: [] },
    { name: 'an allowed command without arguments', request: exec(['date']), messages: [] },
    {
      name: 'date with arguments is another line',
      request: exec(['date', '-s', '2020-01-01']),
      messages: [`exec "date -s 2020-01-01" ${into}: command matches none of allowCommands [r]`],
    },
    {
      name: 'ls alone is not "ls *" (the space is literal)',
      request: exec(['ls']),
      messages: [`exec "ls" ${into}: command matches none of allowCommands [r]`],
    },
    {
      name: 'a shell is not allowed',
      request: exec(['sh'], interactive),
      messages: [`exec "sh" ${into}: command matches none of allowCommands [r]`],
    },
    {
      name: 'allowed, but denyCommands wins and is cited',
      request: exec(['cat', '/tmp/secret.txt']),
      messages: [`exec "cat /tmp/secret.txt" ${into}: command matches "*secret*" [r]`],
    },
  ]);
});

t.test('allowInteractive: false refuses stdin with tty, for exec and attach', async (t) => {
  table(t, { allowInteractive: false }, [
    {
      name: 'kubectl exec -it sh',
      request: exec(['sh'], interactive),
      messages: [`exec "sh" ${into}: interactive sessions (stdin and tty) are not allowed [r]`],
      fields: ['tty'],
    },
    {
      name: 'kubectl exec -i (a pipe, no terminal) (distractor)',
      request: exec(['sh'], { stdin: true }),
      messages: [],
    },
    { name: 'a tty without stdin (distractor)', request: exec(['top'], { tty: true }), messages: [] },
    { name: 'a plain command (distractor)', request: exec(['ls']), messages: [] },
    {
      name: 'kubectl attach -it',
      request: connectRequest('attach', { stdin: true, stdout: true, tty: true, container: 'app' }),
      messages: [
        `attach to pod shop/web container app: interactive sessions (stdin and tty) are not allowed [r]`,
      ],
    },
    {
      name: 'kubectl attach without -t (distractor)',
      request: connectRequest('attach', { stdout: true, stderr: true, container: 'app' }),
      messages: [],
    },
    { name: 'port-forward has no terminal', request: connectRequest('portforward'), messages: [] },
  ]);
  table(t, {}, [
    { name: 'by default an interactive shell is allowed', request: exec(['sh'], interactive), messages: [] },
  ]);
});

t.test('users and groups: globs, either suffices', async (t) => {
  const as = (username: string, groups: string[] = ['system:authenticated']) => ({ username, groups });
  table(t, { users: ['alice', 'ops-*'], groups: ['sre'] }, [
    { name: 'an allowed user', request: exec(['ls'], {}, as('alice')), messages: [] },
    { name: 'a user matching ops-*', request: exec(['ls'], {}, as('ops-carol')), messages: [] },
    { name: 'a member of an allowed group', request: exec(['ls'], {}, as('bob', ['sre'])), messages: [] },
    {
      name: 'anyone else',
      request: exec(['ls'], {}, as('bob')),
      messages: [`exec "ls" ${into}: user "bob" is not among the allowed users and groups [r]`],
      fields: [''],
    },
    {
      name: 'a name that only starts with an allowed one (distractor: globs are anchored)',
      request: exec(['ls'], {}, as('alice2')),
      messages: [`exec "ls" ${into}: user "alice2" is not among the allowed users and groups [r]`],
    },
    {
      name: 'a group that only starts with an allowed one (distractor)',
      request: exec(['ls'], {}, as('bob', ['sre-interns'])),
      messages: [`exec "ls" ${into}: user "bob" is not among the allowed users and groups [r]`],
    },
    {
      name: 'port-forward by anyone else',
      request: connectRequest('portforward', {}, as('bob')),
      messages: [`port-forward to pod shop/web: user "bob" is not among the allowed users and groups [r]`],
    },
  ]);
  table(t, { users: [] }, [
    {
      name: 'users: [] allows nobody',
      request: exec(['ls'], {}, as('alice', ['sre'])),
      messages: [`exec "ls" ${into}: user "alice" is not among the allowed users and groups [r]`],
    },
  ]);
  table(t, { users: ['alice'], denyCommands: ['*shadow*'], allowInteractive: false }, [
    {
      name: 'every reason is its own violation',
      request: exec(['sh', '-c', 'cat /etc/shadow'], interactive, as('bob')),
      messages: [
        `exec "sh -c 'cat /etc/shadow'" ${into}: user "bob" is not among the allowed users and groups [r]`,
        `exec "sh -c 'cat /etc/shadow'" ${into}: interactive sessions (stdin and tty) are not allowed [r]`,
        `exec "sh -c 'cat /etc/shadow'" ${into}: command matches "*shadow*" [r]`,
      ],
      fields: ['', 'tty', 'command'],
    },
  ]);
});

t.test('subresources: which of exec, attach and port-forward the rule covers', async (t) => {
  const bob = { username: 'bob' };
  table(t, { subresources: ['exec'], users: ['alice'] }, [
    {
      name: 'exec is covered',
      request: exec(['ls'], {}, bob),
      messages: [`exec "ls" ${into}: user "bob" is not among the allowed users and groups [r]`],
    },
    { name: 'attach is not', request: connectRequest('attach', { container: 'app' }, bob), messages: [] },
    { name: 'port-forward is not', request: connectRequest('portforward', {}, bob), messages: [] },
  ]);
  table(t, { subresources: ['portforward', 'attach'], users: ['alice'] }, [
    { name: 'exec is not covered', request: exec(['ls'], {}, bob), messages: [] },
    {
      name: 'attach without a container names none',
      request: connectRequest('attach', { stdin: true }, bob),
      messages: [`attach to pod shop/web: user "bob" is not among the allowed users and groups [r]`],
    },
  ]);
});

t.test('podSelector: the pod must carry the labels, which only the caller can know', async (t) => {
  const labels = (l: Record<string, string>): EvaluationContext => ({ connectPod: { ok: true, labels: l } });
  const unknown = (why: string) =>
    `exec "ls" ${into}: the pod's labels are unknown (${why}), so it is not known to carry debuggable=true [r]`;
  table(t, { podSelector: { matchLabels: { debuggable: 'true' } } }, [
    {
      name: 'a labelled pod',
      request: exec(['ls']),
      context: labels({ debuggable: 'true', app: 'web' }),
      messages: [],
    },
    {
      name: 'another value',
      request: exec(['ls']),
      context: labels({ debuggable: 'false' }),
      messages: [`exec "ls" ${into}: the pod is not labelled debuggable=true [r]`],
    },
    {
      name: 'no such label',
      request: exec(['ls']),
      context: labels({}),
      messages: [`exec "ls" ${into}: the pod is not labelled debuggable=true [r]`],
    },
    {
      name: 'a label inherited from Object.prototype is not a label (distractor)',
      request: exec(['ls']),
      context: labels(Object.create({ debuggable: 'true' }) as Record<string, string>),
      messages: [`exec "ls" ${into}: the pod is not labelled debuggable=true [r]`],
    },
    {
      name: 'nobody looked the pod up (portcullis check): fails closed under deny',
      request: exec(['ls']),
      messages: [unknown('not looked up')],
    },
    {
      name: 'the lookup failed: fails closed under deny',
      request: exec(['ls']),
      context: { connectPod: { ok: false, error: 'the lookup timed out after 2000 ms' } },
      messages: [unknown('the lookup timed out after 2000 ms')],
    },
  ]);
  t.test('under warn, unknown labels warn and admit (the rule action is followed)', async (t) => {
    const decision = evaluate(
      exec(['ls']),
      oneRule('podExec', { podSelector: { matchLabels: { debuggable: 'true' } } }, { action: 'warn' }),
    );
    t.equal(decision.allowed, true);
    t.same(
      decision.violations.map((v) => [v.action, v.error]),
      [['warn', undefined]],
    );
  });
  t.test('every label of matchLabels is required; the missing ones are named', async (t) => {
    const ruleset = oneRule('podExec', {
      podSelector: { matchLabels: { debuggable: 'true', team: 'shop' } },
    });
    expectDecision(t, evaluate(exec(['ls']), ruleset, labels({ team: 'shop' })), {
      messages: [`exec "ls" ${into}: the pod is not labelled debuggable=true [r]`],
    });
    expectDecision(t, evaluate(exec(['ls']), ruleset, labels({})), {
      messages: [`exec "ls" ${into}: the pod is not labelled debuggable=true, team=shop [r]`],
    });
  });
});

t.test(
  'wantsConnectPod: only a rule with podSelector that judges the request asks for the pod',
  async (t) => {
    const selector = { podSelector: { matchLabels: { debuggable: 'true' } } };
    const withSelector = ruleSet([
      { name: 'plain', check: 'podExec', params: { denyCommands: ['x'] } },
      { name: 'labels', check: 'podExec', params: selector, namespaces: ['shop'] },
    ]);
    t.equal(wantsConnectPod(exec(['ls']), withSelector), true, 'an exec in shop');
    t.equal(
      wantsConnectPod(exec(['ls'], {}, { namespace: 'dev' }), withSelector),
      false,
      'out of that rule’s scope',
    );
    t.equal(
      wantsConnectPod(exec(['ls']), oneRule('podExec', { denyCommands: ['x'] })),
      false,
      'no podSelector',
    );
    const proxy = { ...exec(['ls']), subResource: 'proxy' };
    t.equal(wantsConnectPod(proxy, withSelector), false, 'pods/proxy is not judged');
  },
);

t.test('exemptions come first; scope is by namespace', async (t) => {
  const ruleset = oneRule(
    'podExec',
    { denyCommands: ['*'] },
    { namespaces: ['shop', 'team-*'] },
    { namespaces: ['kube-system'], usernames: ['breakglass-*'], groups: ['system:masters'] },
  );
  const denied = (ns: string) => [`exec "ls" into pod ${ns}/web container app: command matches "*" [r]`];
  expectDecision(t, evaluate(exec(['ls']), ruleset), { messages: denied('shop') });
  expectDecision(t, evaluate(exec(['ls'], {}, { namespace: 'team-a' }), ruleset), {
    messages: denied('team-a'),
  });
  const notInScope = evaluate(exec(['ls'], {}, { namespace: 'dev' }), ruleset);
  t.same([notInScope.allowed, notInScope.rulesApplied], [true, []], 'a namespace outside the rule');
  for (const [what, who, detail] of [
    ['namespace', { namespace: 'kube-system' }, 'namespace "kube-system" matches exemptions.namespaces'],
    ['user', { username: 'breakglass-ann' }, 'user "breakglass-ann" matches exemptions.usernames'],
    ['group', { groups: ['system:masters'] }, 'group "system:masters" matches exemptions.groups'],
  ] as const) {
    const decision = evaluate(exec(['ls'], {}, who), ruleset);
    t.same(decision.skipped, { kind: 'exempt', detail }, `an exempt ${what}`);
    t.equal(decision.allowed, true);
  }
});

t.test('every other CONNECT stays unjudged', async (t) => {
  const ruleset = oneRule('podExec', { denyCommands: ['*'] });
  const other = (resource: string, subResource: string): AdmissionRequest => ({
    ...exec(['ls']),
    resource: { group: '', version: 'v1', resource },
    subResource,
  });
  for (const [resource, sub] of [
    ['nodes', 'proxy'],
    ['services', 'proxy'],
    ['pods', 'proxy'],
  ] as const) {
    t.same(
      evaluate(other(resource, sub), ruleset).skipped,
      { kind: 'subresource', detail: `subresource "${sub}" is not judged` },
      `${resource}/${sub}`,
    );
  }
  const appsPods: AdmissionRequest = {
    ...exec(['ls']),
    resource: { group: 'apps', version: 'v1', resource: 'pods' },
  };
  t.same(evaluate(appsPods, ruleset).rulesApplied, [], 'pods of another API group');
  const noRule = evaluate(exec(['ls']), oneRule('privileged'));
  t.same(noRule.skipped, { kind: 'operation', detail: 'CONNECT is not judged' }, 'no podExec rule: skipped');
});

t.test('options that cannot be read fail closed', async (t) => {
  const ruleset = oneRule('podExec');
  const rows: [name: string, request: AdmissionRequest, path: (string | number)[], message: string][] = [
    [
      'command not a list',
      connectRequest('exec', { command: 'ls -l' }),
      ['command'],
      'must be a list, not a string',
    ],
    [
      'an argument not a string',
      connectRequest('exec', { command: ['ls', 1] }),
      ['command', 1],
      'must be a string, not a number',
    ],
    [
      'stdin not a boolean',
      connectRequest('attach', { stdin: 'yes' }),
      ['stdin'],
      'must be a boolean, not a string',
    ],
    [
      'no object at all',
      { ...connectRequest('exec'), object: undefined },
      [],
      'is missing (must be an object)',
    ],
  ];
  for (const [name, request, path, message] of rows) {
    const decision = evaluate(request, ruleset);
    t.same(decision.malformed, { path, message }, name);
    t.equal(decision.allowed, false, `${name}: denied`);
  }
});

t.test('connectSession reads what the audit record shows', async (t) => {
  t.same(connectSession(exec(['sh', '-c', 'id; whoami'], interactive)), {
    subresource: 'exec',
    namespace: 'shop',
    pod: 'web',
    container: 'app',
    command: ['sh', '-c', 'id; whoami'],
    commandLine: "sh -c 'id; whoami'",
    stdin: true,
    tty: true,
  });
  t.equal(connectSession(connectRequest('exec', { command: 'ls' })), undefined, 'unreadable options');
  t.equal(connectSession({ ...exec(['ls']), subResource: 'proxy' }), undefined, 'not a CONNECT into a pod');
});

t.test('params are validated', async (t) => {
  const { compileRuleSet } = await import('../../../src/core/index.js');
  const errors = (params: unknown) => {
    const r = compileRuleSet({
      apiVersion: 'portcullis.io/v1',
      kind: 'RuleSet',
      rules: [{ name: 'r', check: 'podExec', params }],
    });
    return r.ok ? [] : r.errors.map((e) => `${e.path.join('.')}: ${e.message}`);
  };
  t.same(errors({ subresources: ['proxy'] }), [
    'rules.0.params.subresources.0: must be one of: "exec", "attach", "portforward", "debug"',
  ]);
  t.same(errors({ allowSecrets: 'no' }), ['rules.0.params.allowSecrets: must be boolean']);
  const renamed =
    'rules.0.params.allowSecretMounts: renamed: write allowSecrets, which also refuses env and envFrom taken from a secret';
  t.same(errors({ allowSecretMounts: false }), [renamed], 'the former name, named the new one');
  t.same(errors({ allowSecretMounts: true, allowSecrets: true }), [renamed], 'even beside the new one');
  t.same(errors({ subresources: [] }), ['rules.0.params.subresources: must NOT have fewer than 1 items']);
  t.same(errors({ podSelector: { matchLabels: {} } }), [
    'rules.0.params.podSelector.matchLabels: must NOT have fewer than 1 properties',
  ]);
  t.same(errors({ denyCommands: [''] }), [
    'rules.0.params.denyCommands.0: must NOT have fewer than 1 characters',
  ]);
  t.same(errors({ allowInteractve: false }), ['rules.0.params.allowInteractve: unknown field']);
  t.same(errors({}), [], 'no params: every default');
});

t.test('the command glob: * is any run, the rest literal, the whole line', async (t) => {
  const { compileFirstMatch } = await import('../../../src/core/glob.js');
  const rows: [pattern: string, value: string, matches: boolean][] = [
    ['*', '', true],
    ['**', 'anything at all', true],
    ['', '', true],
    ['', 'x', false],
    ['a*a', 'a', false], // the prefix and suffix may not share the one character
    ['ab*ba', 'aba', false],
    ['ab*ba', 'abba', true],
    ['a**b', 'ab', true],
    ['*x*y*', 'yx', false], // in order
    ['*x*y*', 'xy', true],
    ['cat *', 'cat ', true],
    ['cat *', 'cat', false],
    ['*\n*', "printf 'a\nb'", true], // newlines are characters like any other
    ['*a*a*a*a*a*b', 'a'.repeat(100_000), false], // no backtracking blow-up: answered at once
  ];
  for (const [pattern, value, matches] of rows) {
    t.equal(
      compileFirstMatch([pattern])(value) !== undefined,
      matches,
      `${JSON.stringify(pattern)} on ${JSON.stringify(value.slice(0, 20))}`,
    );
  }
  t.equal(compileFirstMatch(['x*', '*y', '*'])('xy'), 'x*', 'the first pattern that matches');
  t.equal(compileFirstMatch([])('x'), undefined, 'no patterns match nothing');
});

// --- kubectl debug: the door beside exec ------------------------------------------------------
// `kubectl debug -it web --image=busybox --target=app -- cat /proc/1/root/var/run/secrets/…` is an
// UPDATE of pods/ephemeralcontainers (shape checked against kube-apiserver in test/e2e/exec.test.ts).
const dbg = (command: string[] | undefined, extra: Record<string, unknown> = {}) =>
  debugContainer('dbg', command, extra);
const debugInto = 'debug container "dbg" (image busybox) into pod shop/web';
const TOKEN_VIA_PROC = '/proc/1/root/var/run/secrets/kubernetes.io/serviceaccount/token';

t.test('debug: each ephemeral container the request adds is a session', async (t) => {
  table(t, { denyCommands: ['*/var/run/secrets/*', 'nsenter*'] }, [
    {
      name: 'reading the token through the target container’s root',
      request: debugRequest([dbg(['cat', TOKEN_VIA_PROC])]),
      messages: [`${debugInto}: command matches "*/var/run/secrets/*" [r]`],
      fields: ['spec.ephemeralContainers[0].command'],
    },
    {
      name: 'command and args are one line: sh -c with the script in args',
      request: debugRequest([dbg(['sh', '-c'], { args: ['cat /var/run/secrets/x'] })]),
      messages: [`${debugInto}: command matches "*/var/run/secrets/*" [r]`],
    },
    {
      name: 'args only (--arguments-only): busybox has no ENTRYPOINT, the args are the command',
      request: debugRequest([dbg(undefined, { args: ['nsenter', '-t', '1', '-m', 'sh'] })]),
      messages: [`${debugInto}: args match "nsenter*" [r]`],
      fields: ['spec.ephemeralContainers[0].args'],
    },
    {
      name: 'no command at all: the entrypoint runs, which no deny pattern can see (allowed)',
      request: debugRequest([dbg(undefined)]),
      messages: [],
    },
    {
      name: 'command: [] is no command (allowed, as above)',
      request: debugRequest([dbg([])]),
      messages: [],
    },
    {
      name: 'an ephemeral container already in the pod is not judged again',
      request: debugRequest([dbg(['ls'])], { before: [debugContainer('old', ['cat', TOKEN_VIA_PROC])] }),
      messages: [],
    },
    {
      name: 'the added one after one already there: its own index in the path',
      request: debugRequest([dbg(['cat', TOKEN_VIA_PROC])], { before: [debugContainer('old', ['ls'])] }),
      messages: [`${debugInto}: command matches "*/var/run/secrets/*" [r]`],
      fields: ['spec.ephemeralContainers[1].command'],
    },
    {
      name: 'nothing added (the same list again): nothing to judge',
      request: debugRequest([], { before: [debugContainer('old', ['cat', TOKEN_VIA_PROC])] }),
      messages: [],
    },
    {
      name: 'two added at once (a hand-written request): each judged',
      request: debugRequest([
        dbg(['cat', TOKEN_VIA_PROC]),
        debugContainer('dbg2', ['nsenter', '-t', '1'], { image: 'registry.k8s.io/busybox' }),
      ]),
      messages: [
        `${debugInto}: command matches "*/var/run/secrets/*" [r]`,
        `debug container "dbg2" (image registry.k8s.io/busybox) into pod shop/web: command matches "nsenter*" [r]`,
      ],
      fields: ['spec.ephemeralContainers[0].command', 'spec.ephemeralContainers[1].command'],
    },
    {
      name: 'a look-alike directory (distractor)',
      request: debugRequest([dbg(['cat', '/proc/1/root/var/run/secrets-old/x'])]),
      messages: [],
    },
    {
      name: 'nsenter* is anchored: /usr/bin/nsenter escapes it (distractor, as for exec)',
      request: debugRequest([dbg(['/usr/bin/nsenter', '-t', '1'])]),
      messages: [],
    },
    {
      name: 'the pattern in the image name or container name is not the command (distractor)',
      request: debugRequest([
        debugContainer('nsenter', ['ls'], { image: 'registry.example/var/run/secrets/img' }),
      ]),
      messages: [],
    },
  ]);
});

t.test('debug: allowCommands fails closed on the entrypoint it cannot see', async (t) => {
  const entrypoint =
    "no command: its image's entrypoint runs, which admission cannot see, so it matches none of allowCommands";
  table(t, { allowCommands: ['ls *', 'ps'] }, [
    {
      name: 'an allowed command',
      request: debugRequest([dbg(['ls', '-l', '/proc/1/root/etc'])]),
      messages: [],
    },
    {
      name: 'a shell is not allowed',
      request: debugRequest([dbg(['sh'], { stdin: true, tty: true })]),
      messages: [`${debugInto}: command matches none of allowCommands [r]`],
      fields: ['spec.ephemeralContainers[0].command'],
    },
    {
      name: 'no command: the image entrypoint, unknown, is not an allowed command',
      request: debugRequest([dbg(undefined, { stdin: true, tty: true })]),
      messages: [`${debugInto}: ${entrypoint} [r]`],
      fields: ['spec.ephemeralContainers[0].command'],
    },
    {
      name: 'args alone that look allowed: still the unknown entrypoint first (fail closed)',
      request: debugRequest([dbg(undefined, { args: ['ls', '-l'] })]),
      messages: [`${debugInto}: ${entrypoint} [r]`],
    },
  ]);
  table(t, { denyCommands: ['*'] }, [
    {
      name: 'denyCommands: ["*"] refuses every debug container, the entrypoint one too',
      request: debugRequest([dbg(undefined)]),
      messages: [`${debugInto}: no command, and the empty command line matches "*" [r]`],
    },
  ]);
});

t.test('debug: interactive, users and groups, subresources', async (t) => {
  table(t, { allowInteractive: false }, [
    {
      name: 'kubectl debug -it',
      request: debugRequest([dbg(undefined, { stdin: true, tty: true })]),
      messages: [`${debugInto}: interactive sessions (stdin and tty) are not allowed [r]`],
      fields: ['spec.ephemeralContainers[0].tty'],
    },
    {
      name: 'kubectl debug -i (no terminal) (distractor)',
      request: debugRequest([dbg(['sh'], { stdin: true })]),
      messages: [],
    },
  ]);
  table(t, { users: ['alice'], groups: ['sre'] }, [
    { name: 'an allowed user', request: debugRequest([dbg(['sh'])]), messages: [] },
    {
      name: 'a member of an allowed group',
      request: debugRequest([dbg(['sh'])], { username: 'bob', groups: ['sre'] }),
      messages: [],
    },
    {
      name: 'anyone else',
      request: debugRequest([dbg(['sh'])], { username: 'bob' }),
      messages: [`${debugInto}: user "bob" is not among the allowed users and groups [r]`],
      fields: ['spec.ephemeralContainers[0]'],
    },
  ]);
  table(t, { subresources: ['exec'], users: [] }, [
    { name: 'a rule for exec only does not judge debug', request: debugRequest([dbg(['sh'])]), messages: [] },
  ]);
  table(t, { subresources: ['debug'], users: [] }, [
    {
      name: 'a rule for debug only judges debug',
      request: debugRequest([dbg(['sh'])]),
      messages: [`${debugInto}: user "alice" is not among the allowed users and groups [r]`],
    },
    { name: 'and not exec', request: exec(['sh']), messages: [] },
  ]);
});

t.test('debug: podSelector reads the labels of the pod the request carries', async (t) => {
  const selector = { podSelector: { matchLabels: { debuggable: 'true' } } };
  table(t, selector, [
    {
      name: 'a labelled pod, no lookup needed',
      request: debugRequest([dbg(['sh'])], { labels: { debuggable: 'true' } }),
      messages: [],
    },
    {
      name: 'an unlabelled pod: a lookup that says otherwise is not what is judged (distractor)',
      request: debugRequest([dbg(['sh'])]),
      context: { connectPod: { ok: true, labels: { debuggable: 'true' } } },
      messages: [`${debugInto}: the pod is not labelled debuggable=true [r]`],
    },
  ]);
  t.equal(
    wantsConnectPod(debugRequest([dbg(['sh'])]), oneRule('podExec', selector)),
    false,
    'nothing to look up',
  );
});

/** The request with `volumes` added to the pod (the same before and after: volumes cannot change here). */
function withVolumes(request: AdmissionRequest, volumes: unknown[]): AdmissionRequest {
  const add = (pod: unknown): unknown => {
    const copy = structuredClone(pod) as { spec: { volumes: unknown[] } };
    copy.spec.volumes.push(...volumes);
    return copy;
  };
  return { ...request, object: add(request.object), oldObject: add(request.oldObject) };
}

t.test(
  'debug: allowSecrets: false refuses mounting a volume that holds a secret, token or key',
  async (t) => {
    const mount = (name: string, mountPath: string) => ({ volumeMounts: [{ name, mountPath }] });
    const extraVolumes = [
      {
        name: 'vault',
        csi: { driver: 'secrets-store.csi.k8s.io', volumeAttributes: { secretProviderClass: 'db' } },
      },
      {
        name: 'identity',
        projected: {
          sources: [
            {
              podCertificate: {
                signerName: 'example.com/mesh',
                keyType: 'ED25519',
                credentialBundlePath: 'bundle.pem',
              },
            },
          ],
        },
      },
      {
        name: 'trust',
        projected: { sources: [{ clusterTrustBundle: { signerName: 'example.com/mesh', path: 'ca.pem' } }] },
      },
      {
        name: 'podinfo',
        downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] },
      },
    ];
    table(t, { allowSecrets: false }, [
      {
        name: 'the projected service-account token volume, at another path',
        request: debugRequest([dbg(['cat', '/mnt/token'], mount('kube-api-access-7xq2p', '/mnt'))]),
        messages: [
          `${debugInto}: mounts volume "kube-api-access-7xq2p" (a secret or service-account token) at "/mnt" [r]`,
        ],
        fields: ['spec.ephemeralContainers[0].volumeMounts[0]'],
      },
      {
        name: 'a secret volume',
        request: debugRequest([dbg(['sh'], mount('tls', '/x'))]),
        messages: [`${debugInto}: mounts volume "tls" (a secret or service-account token) at "/x" [r]`],
      },
      {
        name: 'an inline CSI volume (Secrets Store CSI driver): what a driver writes is unknown, so it counts',
        request: withVolumes(debugRequest([dbg(['sh'], mount('vault', '/v'))]), extraVolumes),
        messages: [
          `${debugInto}: mounts volume "vault" (a CSI volume of driver "secrets-store.csi.k8s.io", which may hold secrets) at "/v" [r]`,
        ],
        fields: ['spec.ephemeralContainers[0].volumeMounts[0]'],
      },
      {
        name: "a projected podCertificate: the pod's private key",
        request: withVolumes(debugRequest([dbg(['sh'], mount('identity', '/id'))]), extraVolumes),
        messages: [`${debugInto}: mounts volume "identity" (a pod certificate's private key) at "/id" [r]`],
      },
      {
        name: 'a projected clusterTrustBundle: public certificates (distractor)',
        request: withVolumes(debugRequest([dbg(['sh'], mount('trust', '/t'))]), extraVolumes),
        messages: [],
      },
      {
        name: 'a downwardAPI volume (distractor)',
        request: withVolumes(debugRequest([dbg(['sh'], mount('podinfo', '/p'))]), extraVolumes),
        messages: [],
      },
      {
        name: 'a configMap volume (distractor)',
        request: debugRequest([dbg(['sh'], mount('settings', '/etc/settings'))]),
        messages: [],
      },
      {
        name: 'an emptyDir (distractor)',
        request: debugRequest([dbg(['sh'], mount('scratch', '/s'))]),
        messages: [],
      },
    ]);
    table(t, {}, [
      {
        name: 'by default mounts are not judged',
        request: debugRequest([dbg(['sh'], mount('kube-api-access-7xq2p', '/mnt'))]),
        messages: [],
      },
    ]);
  },
);

t.test('debug: allowSecrets: false refuses taking a Secret into the environment', async (t) => {
  // Whoever may only patch pods/ephemeralcontainers, not read secrets, would otherwise add `env` and
  // print it: the kubelet resolves the reference, not the caller.
  const secretKey = (variable: string, secret: string, key: string) => ({
    name: variable,
    valueFrom: { secretKeyRef: { name: secret, key } },
  });
  const dbPassword = secretKey('DB_PASSWORD', 'db', 'password');
  const envFromSecret = (secret: string, prefix?: string) => ({
    ...(prefix === undefined ? {} : { prefix }),
    secretRef: { name: secret },
  });
  const second = 'debug container "dbg2" (image busybox) into pod shop/web';
  table(t, { allowSecrets: false }, [
    {
      name: 'env[].valueFrom.secretKeyRef',
      request: debugRequest([dbg(['env'], { env: [{ name: 'MODE', value: 'debug' }, dbPassword] })]),
      messages: [`${debugInto}: env "DB_PASSWORD" takes key "password" of secret "db" [r]`],
      fields: ['spec.ephemeralContainers[0].env[1].valueFrom.secretKeyRef'],
    },
    {
      name: 'an optional secretKeyRef is still one',
      request: debugRequest([
        dbg(['env'], {
          env: [{ name: 'T', valueFrom: { secretKeyRef: { name: 'api', key: 'token', optional: true } } }],
        }),
      ]),
      messages: [`${debugInto}: env "T" takes key "token" of secret "api" [r]`],
    },
    {
      name: 'envFrom[].secretRef: every key of the Secret',
      request: debugRequest([dbg(['env'], { envFrom: [envFromSecret('db')] })]),
      messages: [`${debugInto}: envFrom takes every key of secret "db" [r]`],
      fields: ['spec.ephemeralContainers[0].envFrom[0].secretRef'],
    },
    {
      name: 'envFrom[].secretRef with a prefix',
      request: debugRequest([
        dbg(['env'], { envFrom: [{ configMapRef: { name: 'web-settings' } }, envFromSecret('db', 'DB_')] }),
      ]),
      messages: [`${debugInto}: envFrom takes every key of secret "db" (prefixed "DB_") [r]`],
      fields: ['spec.ephemeralContainers[0].envFrom[1].secretRef'],
    },
    {
      name: 'both in one container, and a secret mount: each its own finding',
      request: debugRequest([
        dbg(['env'], {
          env: [dbPassword],
          envFrom: [envFromSecret('api')],
          volumeMounts: [{ name: 'tls', mountPath: '/x' }],
        }),
      ]),
      messages: [
        `${debugInto}: mounts volume "tls" (a secret or service-account token) at "/x" [r]`,
        `${debugInto}: env "DB_PASSWORD" takes key "password" of secret "db" [r]`,
        `${debugInto}: envFrom takes every key of secret "api" [r]`,
      ],
      fields: [
        'spec.ephemeralContainers[0].volumeMounts[0]',
        'spec.ephemeralContainers[0].env[0].valueFrom.secretKeyRef',
        'spec.ephemeralContainers[0].envFrom[0].secretRef',
      ],
    },
    {
      name: 'in the second of two added containers: its own index in the path',
      request: debugRequest([dbg(['env']), debugContainer('dbg2', ['env'], { env: [dbPassword] })]),
      messages: [`${second}: env "DB_PASSWORD" takes key "password" of secret "db" [r]`],
      fields: ['spec.ephemeralContainers[1].env[0].valueFrom.secretKeyRef'],
    },
    {
      name: 'added after one already there that takes a secret: only the added one is judged',
      request: debugRequest([debugContainer('dbg2', ['env'], { envFrom: [envFromSecret('api')] })], {
        before: [debugContainer('old', ['env'], { env: [dbPassword], envFrom: [envFromSecret('db')] })],
      }),
      messages: [`${second}: envFrom takes every key of secret "api" [r]`],
      fields: ['spec.ephemeralContainers[1].envFrom[0].secretRef'],
    },
    {
      name: 'an already-present debug container with secret env does not fail a clean later one (distractor)',
      request: debugRequest([dbg(['ls'])], {
        before: [debugContainer('old', ['env'], { env: [dbPassword], envFrom: [envFromSecret('db')] })],
      }),
      messages: [],
    },
    {
      name: 'configMapKeyRef, configMapRef, fieldRef, resourceFieldRef, a plain value (distractors)',
      request: debugRequest([
        dbg(['env'], {
          env: [
            { name: 'LEVEL', valueFrom: { configMapKeyRef: { name: 'web-settings', key: 'level' } } },
            { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
            { name: 'SA', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
            { name: 'MEM', valueFrom: { resourceFieldRef: { resource: 'limits.memory' } } },
            { name: 'PASSWORD', value: 'secretKeyRef' },
          ],
          envFrom: [
            { configMapRef: { name: 'web-settings' } },
            { prefix: 'S_', configMapRef: { name: 'secret' } },
          ],
        }),
      ]),
      messages: [],
    },
    {
      name: 'fileKeyRef (EnvFiles) into a secret volume: the same door',
      request: debugRequest([
        dbg(['env'], {
          env: [{ name: 'K', valueFrom: { fileKeyRef: { volumeName: 'tls', path: 'tls.key', key: 'k' } } }],
        }),
      ]),
      messages: [
        `${debugInto}: env "K" takes key "k" of file "tls.key" in volume "tls" (a secret or service-account token) [r]`,
      ],
      fields: ['spec.ephemeralContainers[0].env[0].valueFrom.fileKeyRef'],
    },
    {
      name: 'fileKeyRef into an emptyDir an init container wrote (distractor)',
      request: debugRequest([
        dbg(['env'], {
          env: [
            { name: 'K', valueFrom: { fileKeyRef: { volumeName: 'scratch', path: 'app.env', key: 'k' } } },
          ],
        }),
      ]),
      messages: [],
    },
    {
      name: 'a Secret named in the command is not a reference (distractor)',
      request: debugRequest([dbg(['echo', 'secretKeyRef', 'db'])]),
      messages: [],
    },
  ]);
  table(t, { allowSecrets: true }, [
    {
      name: 'allowSecrets: true: the environment is not judged (distractor)',
      request: debugRequest([dbg(['env'], { env: [dbPassword], envFrom: [envFromSecret('db')] })]),
      messages: [],
    },
  ]);
  table(t, { allowSecrets: false, subresources: ['exec'] }, [
    {
      name: 'a rule for exec only does not judge a debug container env (distractor)',
      request: debugRequest([dbg(['env'], { env: [dbPassword] })]),
      messages: [],
    },
  ]);
  const ruleset = oneRule('podExec', { allowSecrets: false });
  const malformed: [
    name: string,
    env: Record<string, unknown>,
    path: (string | number)[],
    message: string,
  ][] = [
    [
      'secretKeyRef not an object',
      { env: [{ name: 'X', valueFrom: { secretKeyRef: 'db' } }] },
      ['spec', 'ephemeralContainers', 0, 'env', 0, 'valueFrom', 'secretKeyRef'],
      'must be an object, not a string',
    ],
    [
      'envFrom not a list',
      { envFrom: { secretRef: { name: 'db' } } },
      ['spec', 'ephemeralContainers', 0, 'envFrom'],
      'must be a list, not an object',
    ],
  ];
  for (const [name, extra, path, message] of malformed) {
    const decision = evaluate(debugRequest([dbg(['env'], extra)]), ruleset);
    t.same([decision.allowed, decision.malformed], [false, { path, message }], `${name}: fails closed`);
  }
});

t.test('debug: exemptions first, and the pod rules still judge the ephemeral container', async (t) => {
  const ruleset = ruleSet(
    [
      { name: 'no-privileged', check: 'privileged' },
      { name: 'no-secret-reads', check: 'podExec', params: { denyCommands: ['*/var/run/secrets/*'] } },
    ],
    { namespaces: ['kube-system'], usernames: ['breakglass-*'] },
  );
  expectDecision(
    t,
    evaluate(debugRequest([dbg(['sh'], { securityContext: { privileged: true } })]), ruleset),
    { messages: ['ephemeralContainer "dbg": securityContext.privileged must not be true [no-privileged]'] },
  );
  expectDecision(
    t,
    evaluate(
      debugRequest([dbg(['cat', TOKEN_VIA_PROC], { securityContext: { privileged: true } })]),
      ruleset,
    ),
    {
      messages: [
        'ephemeralContainer "dbg": securityContext.privileged must not be true [no-privileged]',
        `${debugInto}: command matches "*/var/run/secrets/*" [no-secret-reads]`,
      ],
    },
  );
  const exempt = evaluate(
    debugRequest([dbg(['cat', TOKEN_VIA_PROC])], { username: 'breakglass-ann' }),
    ruleset,
  );
  t.same(exempt.skipped, { kind: 'exempt', detail: 'user "breakglass-ann" matches exemptions.usernames' });
  const system = evaluate(
    debugRequest([dbg(['cat', TOKEN_VIA_PROC])], { namespace: 'kube-system' }),
    ruleset,
  );
  t.same([system.allowed, system.skipped?.kind], [true, 'exempt'], 'an exempt namespace');
  const scoped = evaluate(
    debugRequest([dbg(['cat', TOKEN_VIA_PROC])]),
    oneRule('podExec', { denyCommands: ['*'] }, { namespaces: ['prod'] }),
  );
  t.same([scoped.allowed, scoped.rulesApplied], [true, []], 'a namespace outside the rule');
  const plainUpdate = evaluate(
    { ...debugRequest([dbg(['cat', TOKEN_VIA_PROC])]), subResource: undefined },
    oneRule('podExec', { denyCommands: ['*'] }),
  );
  t.same([plainUpdate.allowed, plainUpdate.rulesApplied], [true, []], 'a plain pod UPDATE is no session');
});

t.test('debug: a pod that cannot be read fails closed', async (t) => {
  const ruleset = oneRule('podExec');
  const broken = (change: (object: Record<string, unknown>) => void): AdmissionRequest => {
    const request = debugRequest([dbg(['ls'])]);
    const object = structuredClone(request.object) as Record<string, unknown>;
    change(object);
    return { ...request, object };
  };
  const spec = (o: Record<string, unknown>) => o['spec'] as Record<string, unknown>;
  const rows: [name: string, request: AdmissionRequest, path: (string | number)[], message: string][] = [
    [
      'ephemeralContainers not a list',
      broken((o) => (spec(o)['ephemeralContainers'] = { dbg: {} })),
      ['spec', 'ephemeralContainers'],
      'must be a list, not an object',
    ],
    [
      'args not a list of strings',
      broken((o) => (spec(o)['ephemeralContainers'] = [dbg(['ls'], { args: [1] })])),
      ['spec', 'ephemeralContainers', 0, 'args', 0],
      'must be a string, not a number',
    ],
    ['no spec', broken((o) => delete o['spec']), ['spec'], 'is missing (must be an object)'],
  ];
  for (const [name, request, path, message] of rows) {
    const decision = evaluate(request, ruleset);
    t.same(decision.malformed, { path, message }, name);
    t.equal(decision.allowed, false, `${name}: denied`);
  }
});

t.test('podSessions reads what the audit record shows of a debug container', async (t) => {
  t.same(
    podSessions(
      debugRequest([dbg(undefined, { args: ['cat', '/x'], stdin: true, tty: true })], {
        before: [debugContainer('old', ['ls'])],
      }),
    ),
    [
      {
        subresource: 'debug',
        namespace: 'shop',
        pod: 'web',
        container: 'dbg',
        image: 'busybox',
        targetContainer: 'app',
        entrypoint: true,
        command: ['cat', '/x'],
        commandLine: 'cat /x',
        stdin: true,
        tty: true,
        path: ['spec', 'ephemeralContainers', 1],
        secretMounts: [],
        secretEnv: [],
        podLabels: { app: 'web' },
      },
    ],
  );
  t.same(podSessions(exec(['ls'])).length, 1, 'a CONNECT: one session');
});
