// Portcullis' alerts (manifests/components/monitoring/prometheusrule.yaml; the chart renders the
// same, test/manifests/chart.test.ts) run by Prometheus' own rule engine: `promtool test rules`
// feeds each alert series where it must fire and series where it must not (distractors), and checks
// the exact labels and annotations at each evaluation time. promtool is built from Prometheus' Go
// module by test/e2e/build-tools.sh; without it these cases are skipped, saying so, unless
// PORTCULLIS_TOOLS_REQUIRED=1. Whatever promtool's state, every metric an alert reads is checked
// against a real server's /metrics.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse, stringify } from 'yaml';
import { findHelm, findPromtool, renderChart, skipWithout } from '../helpers/chart.js';
import { at, isRecord, records, REPO_ROOT } from '../helpers/manifests.js';
import { exportedNames, metricNames } from '../helpers/promql.js';
import { localhostCertificates, startServer } from '../helpers/server.js';

const promtool = findPromtool();
const promtoolSkip = skipWithout(promtool);
const helmSkip = skipWithout(findHelm());

const rule: unknown = parse(
  readFileSync(join(REPO_ROOT, 'manifests/components/monitoring/prometheusrule.yaml'), 'utf8'),
);
const groups = at(rule, 'spec', 'groups');
const alerts = records(at(groups, 0, 'rules'));

const scratch = mkdtempSync(join(tmpdir(), 'portcullis-alerts-'));
t.teardown(() => {
  rmSync(scratch, { recursive: true, force: true });
});

function runPromtool(args: readonly string[]): { status: number; output: string } {
  if (!('path' in promtool)) throw new Error(promtool.missing);
  try {
    const out = execFileSync(promtool.path, args, {
      cwd: scratch,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { status: 0, output: out };
  } catch (err) {
    const text = (key: string): string => (isRecord(err) && typeof err[key] === 'string' ? err[key] : '');
    return {
      status: isRecord(err) && typeof err['status'] === 'number' ? err['status'] : -1,
      output: `${text('stdout')}${text('stderr')}`,
    };
  }
}

t.test('six alerts: latency, deny rate, audit drops, RuleSet refused, certificate, readiness', async (t) => {
  t.same(
    alerts.map((a) => a['alert']),
    [
      'PortcullisWebhookSlow',
      'PortcullisDenyRateJump',
      'PortcullisAuditEventsDropped',
      'PortcullisRuleSetRefused',
      'PortcullisCertificateExpiresSoon',
      'PortcullisNoReadyReplica',
    ],
  );
  for (const a of alerts) {
    t.ok(
      ['warning', 'critical'].includes(String(at(a, 'labels', 'severity'))),
      `${String(a['alert'])}: severity`,
    );
    t.ok(
      at(a, 'annotations', 'summary') && at(a, 'annotations', 'description'),
      `${String(a['alert'])}: summary and description`,
    );
  }
});

t.test('every metric an alert reads is one Portcullis exports', async (t) => {
  const certificates = await localhostCertificates();
  const srv = await startServer({ certificates });
  t.teardown(() => srv.close());
  const exported = exportedNames((await srv.request('/metrics')).text);
  for (const a of alerts) {
    const names = metricNames(String(a['expr']));
    t.ok(names.length > 0, `${String(a['alert'])} reads a metric`);
    for (const name of names) t.ok(exported.has(name), `${String(a['alert'])}: ${name} is exported`);
  }
});

// --- promtool test rules -----------------------------------------------------------------------

const NS = 'namespace="portcullis"';
const bucket = (endpoint: string, le: string, values: string) => ({
  series: `portcullis_admission_duration_seconds_bucket{${NS},endpoint="${endpoint}",le="${le}"}`,
  values,
});
const decisions = (decision: string, values: string, namespace = 'portcullis') => ({
  series: `portcullis_admission_decisions_total{namespace="${namespace}",endpoint="validate",decision="${decision}"}`,
  values,
});
const DENY_DESCRIPTION =
  'Denials jumped. Which rule: the dashboard\'s "Rule results by rule" panel, or sum by (rule) (rate(portcullis_rule_results_total{action="deny"}[10m])). A RuleSet edit that went further than meant is undone by applying the one before.';
const denyAlert = (perMinute: string) => ({
  exp_labels: { severity: 'warning', namespace: 'portcullis' },
  exp_annotations: {
    summary: `Portcullis denies ${perMinute} requests a minute, over 3x the rate of the hour before.`,
    description: DENY_DESCRIPTION,
  },
});
const NO_READY = {
  exp_labels: { severity: 'critical' },
  exp_annotations: {
    summary: 'No Portcullis replica is ready.',
    description:
      'What the webhooks judge is refused cluster-wide. kubectl -n portcullis get pods; kubectl -n portcullis logs deployment/portcullis; if it cannot be brought back quickly, docs/operations.md#break-glass-portcullis-is-down-and-requests-are-refused.',
  },
};
const ready = (pod: string, values: string, namespace = 'portcullis') => ({
  series: `portcullis_ready{namespace="${namespace}",pod="${pod}"}`,
  values,
});
const expiry = (pod: string, values: string, namespace = 'portcullis') => ({
  series: `portcullis_certificate_expiration_timestamp_seconds{namespace="${namespace}",pod="${pod}"}`,
  values,
});
const DAY = 86_400;

interface Case {
  name: string;
  input_series: { series: string; values: string }[];
  alert_rule_test: { eval_time: string; alertname: string; exp_alerts: unknown[] }[];
}

const cases: Case[] = [
  {
    name: 'slow: /validate at p99 4.975 s fires after 10 minutes; a fast /mutate beside it does not',
    input_series: [
      bucket('validate', '2.5', '0x40'),
      bucket('validate', '5', '0+600x40'),
      bucket('validate', '+Inf', '0+600x40'),
      bucket('mutate', '0.005', '0+600x40'),
      bucket('mutate', '+Inf', '0+600x40'),
    ],
    alert_rule_test: [
      { eval_time: '8m', alertname: 'PortcullisWebhookSlow', exp_alerts: [] },
      {
        eval_time: '20m',
        alertname: 'PortcullisWebhookSlow',
        exp_alerts: [
          {
            exp_labels: { severity: 'warning', namespace: 'portcullis', endpoint: 'validate' },
            exp_annotations: {
              summary: 'Portcullis /validate answers slowly (p99 4.975s).',
              description:
                "The 99th percentile of /validate has been above 4 s for 10 minutes; the API server refuses what it judges after 5 s. Look at the replicas' CPU and memory (limits 1 CPU, 256 MiB) and at the request rate.",
            },
          },
        ],
      },
    ],
  },
  {
    // 0.99 × 600 = 594 falls in (2.5, 5] at 4 of its 10: 2.5 + 2.5 × 0.4 = 3.5 s.
    name: 'slow: a p99 of 3.5 s (under 4 s) never fires',
    input_series: [
      bucket('validate', '2.5', '0+590x40'),
      bucket('validate', '5', '0+600x40'),
      bucket('validate', '+Inf', '0+600x40'),
    ],
    alert_rule_test: [{ eval_time: '30m', alertname: 'PortcullisWebhookSlow', exp_alerts: [] }],
  },
  {
    name: 'deny jump: 1 a minute for an hour, then 10 a minute',
    input_series: [decisions('deny', '0+1x70 80+10x30'), decisions('allow', '0+100x100')],
    alert_rule_test: [
      { eval_time: '60m', alertname: 'PortcullisDenyRateJump', exp_alerts: [] },
      { eval_time: '90m', alertname: 'PortcullisDenyRateJump', exp_alerts: [denyAlert('10')] },
    ],
  },
  {
    name: 'deny jump: none for an hour (no series yet), then 10 a minute',
    input_series: [decisions('deny', '_x70 0+10x30'), decisions('allow', '0+100x100')],
    alert_rule_test: [
      { eval_time: '90m', alertname: 'PortcullisDenyRateJump', exp_alerts: [denyAlert('10')] },
    ],
  },
  {
    name: 'deny jump distractors: allowed traffic surges, 2 a minute from none, another namespace',
    input_series: [
      decisions('deny', '0+1x100'),
      decisions('allow', '0+100x70 7100+1000x30'),
      decisions('deny', '_x70 0+2x30', 'staging'),
      decisions('deny', '0+1x70 80+10x30', 'elsewhere'),
    ],
    alert_rule_test: [{ eval_time: '90m', alertname: 'PortcullisDenyRateJump', exp_alerts: [] }],
  },
  {
    name: 'audit drops: the webhook sink drops 5 a minute, the file sink none',
    input_series: [
      { series: `portcullis_audit_events_dropped_total{${NS},sink="webhook"}`, values: '0x10 5+5x10' },
      { series: `portcullis_audit_events_dropped_total{${NS},sink="file"}`, values: '0x20' },
    ],
    alert_rule_test: [
      { eval_time: '9m', alertname: 'PortcullisAuditEventsDropped', exp_alerts: [] },
      {
        eval_time: '16m',
        alertname: 'PortcullisAuditEventsDropped',
        exp_alerts: [
          {
            exp_labels: { severity: 'warning', namespace: 'portcullis', sink: 'webhook' },
            exp_annotations: {
              summary: 'Portcullis dropped 25 audit events in the webhook sink.',
              description:
                'The webhook sink could not keep up or its collector was down past the retries; the replicas log the count every 10 s.',
            },
          },
        ],
      },
    ],
  },
  {
    name: 'RuleSet refused: one replica refuses the RuleSet it read; another namespace’s does not count',
    input_series: [
      { series: `portcullis_ruleset_last_load_success{${NS},pod="portcullis-7d4b9c-aaaaa"}`, values: '1x30' },
      {
        series: `portcullis_ruleset_last_load_success{${NS},pod="portcullis-7d4b9c-bbbbb"}`,
        values: '1x10 0x20',
      },
      { series: 'portcullis_ruleset_last_load_success{namespace="staging",pod="p"}', values: '0x30' },
    ],
    alert_rule_test: [
      { eval_time: '5m', alertname: 'PortcullisRuleSetRefused', exp_alerts: [] },
      {
        eval_time: '15m',
        alertname: 'PortcullisRuleSetRefused',
        exp_alerts: [
          {
            exp_labels: { severity: 'warning', namespace: 'portcullis', pod: 'portcullis-7d4b9c-bbbbb' },
            exp_annotations: {
              summary: 'Portcullis portcullis-7d4b9c-bbbbb refused the RuleSet it read.',
              description:
                'The last RuleSet in the ConfigMap is invalid and not in force. The reason: kubectl -n portcullis describe configmap portcullis-rules.',
            },
          },
        ],
      },
    ],
  },
  {
    name: 'certificate: the replica serving a 13-day certificate fires once; 60 days and another namespace do not',
    input_series: [
      expiry('a', `${13 * DAY}x30`),
      expiry('b', `${60 * DAY}x30`),
      expiry('c', `${DAY}x30`, 'staging'),
    ],
    alert_rule_test: [
      { eval_time: '5m', alertname: 'PortcullisCertificateExpiresSoon', exp_alerts: [] },
      {
        eval_time: '20m',
        alertname: 'PortcullisCertificateExpiresSoon',
        exp_alerts: [
          {
            exp_labels: { severity: 'warning', namespace: 'portcullis' },
            exp_annotations: {
              // 13 days from the epoch, seen 20 minutes after it (promtool's clock starts at 0).
              summary: "Portcullis' serving certificate expires in 12d 23h 40m 0s.",
              description:
                "Once it expires the API server refuses to call the webhooks, and with failurePolicy Fail refuses what they judge. Renew it (portcullis certs with the same --out, or check cert-manager's Certificate portcullis-tls).",
            },
          },
        ],
      },
    ],
  },
  {
    name: 'certificate: 15 days left does not fire',
    input_series: [expiry('a', `${15 * DAY}x30`)],
    alert_rule_test: [{ eval_time: '20m', alertname: 'PortcullisCertificateExpiresSoon', exp_alerts: [] }],
  },
  {
    name: 'no ready replica: both go unready, it fires 2 minutes later',
    input_series: [ready('a', '1x10 0x20'), ready('b', '1x10 0x20')],
    alert_rule_test: [
      { eval_time: '10m', alertname: 'PortcullisNoReadyReplica', exp_alerts: [] },
      { eval_time: '12m', alertname: 'PortcullisNoReadyReplica', exp_alerts: [] },
      { eval_time: '20m', alertname: 'PortcullisNoReadyReplica', exp_alerts: [NO_READY] },
    ],
  },
  {
    name: 'no ready replica: one of two ready is enough',
    input_series: [ready('a', '1x30'), ready('b', '0x30')],
    alert_rule_test: [{ eval_time: '20m', alertname: 'PortcullisNoReadyReplica', exp_alerts: [] }],
  },
  {
    name: 'no ready replica: nothing scraped in the namespace at all (a ready one elsewhere does not count)',
    input_series: [ready('x', '1x30', 'staging')],
    alert_rule_test: [{ eval_time: '5m', alertname: 'PortcullisNoReadyReplica', exp_alerts: [NO_READY] }],
  },
];

function writeRules(file: string, ruleGroups: unknown): void {
  writeFileSync(join(scratch, file), stringify({ groups: ruleGroups }));
}

function writeTests(file: string, rulesFile: string, tests: readonly Case[]): void {
  writeFileSync(
    join(scratch, file),
    stringify({
      rule_files: [rulesFile],
      evaluation_interval: '1m',
      tests: tests.map(({ name, ...test }) => ({ name, interval: '1m', ...test })),
    }),
  );
}

t.test('promtool check rules: the expressions parse', promtoolSkip, async (t) => {
  writeRules('rules.yaml', groups);
  const run = runPromtool(['check', 'rules', 'rules.yaml']);
  t.equal(run.status, 0, run.output);
  t.match(run.output, `SUCCESS: ${alerts.length} rules found`);
});

t.test('promtool test rules: each alert fires where it must and nowhere else', promtoolSkip, async (t) => {
  writeRules('rules.yaml', groups);
  writeTests('tests.yaml', 'rules.yaml', cases);
  const run = runPromtool(['test', 'rules', 'tests.yaml']);
  t.equal(run.status, 0, run.output);
  t.match(run.output, /SUCCESS/);
  const tested = new Set(cases.flatMap((c) => c.alert_rule_test.map((r) => r.alertname)));
  t.same([...tested].sort(), alerts.map((a) => String(a['alert'])).sort(), 'every alert has cases');
});

t.test(
  'promtool test rules fails on a wrong expectation (the cases are not a no-op)',
  promtoolSkip,
  async (t) => {
    writeRules('rules.yaml', groups);
    const wrong = structuredClone(cases.filter((c) => c.name.startsWith('certificate: 15 days')));
    const [only] = wrong;
    if (only === undefined) throw new Error('no 15-day case');
    only.input_series = [expiry('a', `${14 * DAY - 3600}x30`)];
    writeTests('wrong.yaml', 'rules.yaml', wrong);
    const run = runPromtool(['test', 'rules', 'wrong.yaml']);
    t.equal(run.status, 1, run.output);
    t.match(run.output, /alertname: PortcullisCertificateExpiresSoon/);
  },
);

t.test('the chart’s alerts follow its timeout and expiry values', helmSkip, async (t) => {
  const objects = renderChart({
    certificates: { source: 'cert-manager' },
    webhooks: { timeoutSeconds: 10 },
    monitoring: {
      prometheusRule: { enabled: true, latencyFractionOfTimeout: 0.75, certificateExpiryDays: 30 },
    },
  });
  const rules = records(
    at(
      objects.find((o) => o.kind === 'PrometheusRule'),
      'spec',
      'groups',
      0,
      'rules',
    ),
  );
  const byName = (name: string) => rules.find((r) => r['alert'] === name);
  t.match(String(byName('PortcullisWebhookSlow')?.['expr']), /\) > 7\.5$/);
  t.match(
    String(at(byName('PortcullisWebhookSlow'), 'annotations', 'description')),
    /above 7\.5 s for 10 minutes; the API server refuses what it judges after 10 s\./,
  );
  t.match(String(byName('PortcullisCertificateExpiresSoon')?.['expr']), /- time\(\) < 30 \* 86400$/);
});

t.test(
  'the chart’s alerts with another timeout still pass promtool',
  { ...helmSkip, ...promtoolSkip },
  async (t) => {
    const objects = renderChart({
      certificates: { source: 'cert-manager' },
      webhooks: { timeoutSeconds: 3 },
      monitoring: { prometheusRule: { enabled: true } },
    });
    writeRules(
      'chart-rules.yaml',
      at(
        objects.find((o) => o.kind === 'PrometheusRule'),
        'spec',
        'groups',
      ),
    );
    const run = runPromtool(['check', 'rules', 'chart-rules.yaml']);
    t.equal(run.status, 0, run.output);
    t.match(
      String(
        at(parse(readFileSync(join(scratch, 'chart-rules.yaml'), 'utf8')), 'groups', 0, 'rules', 0, 'expr'),
      ),
      /\) > 2\.4$/,
      '0.8 × 3 s, printed as 2.4',
    );
  },
);
