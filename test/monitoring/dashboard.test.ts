// The Grafana dashboard reads what Portcullis exports, and shows all of it: every query's metric
// names are compared with the /metrics of a real server on loopback (after it has answered a deny,
// an allow and a mutation), and every portcullis_* metric that server exports is on some panel.
// The chart ships a copy of this file (test/manifests/chart.test.ts holds the two equal).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { exportedNames, metricNames } from '../helpers/promql.js';
import { isRecord, REPO_ROOT } from '../helpers/manifests.js';
import { localhostCertificates, podCreateReview, startServer } from '../helpers/server.js';

/**
 * Metrics a panel reads that this Portcullis does not export yet, and why the panel is there
 * anyway. The test fails once one of them is exported, so this list only ever shrinks.
 */
const NOT_YET_EXPORTED: Record<string, string> = {};

const dashboard: unknown = JSON.parse(
  readFileSync(join(REPO_ROOT, 'manifests/components/monitoring/portcullis-dashboard.json'), 'utf8'),
);
const records = (value: unknown): Record<string, unknown>[] =>
  Array.isArray(value) ? value.filter(isRecord) : [];
const panels = isRecord(dashboard) ? records(dashboard['panels']) : [];
const templating =
  isRecord(dashboard) && isRecord(dashboard['templating']) ? records(dashboard['templating']['list']) : [];

/** Every PromQL expression on the dashboard, with where it is. */
const queries: { where: string; expr: string }[] = [
  ...panels.flatMap((panel) =>
    records(panel['targets']).map((target) => ({
      where: `panel "${String(panel['title'])}" ${String(target['refId'])}`,
      expr: String(target['expr']),
    })),
  ),
  ...templating.flatMap((variable) => {
    const query = isRecord(variable['query']) ? String(variable['query']['query']) : '';
    // label_values(METRIC, LABEL): the metric is an expression, the label is not.
    const metric = /^label_values\((.+),\s*\w+\)$/.exec(query)?.[1];
    return metric === undefined ? [] : [{ where: `variable $${String(variable['name'])}`, expr: metric }];
  }),
];

const certificates = await localhostCertificates();
const srv = await startServer({ certificates });
t.teardown(() => srv.close());
const privileged = podCreateReview();
Object.assign(privileged.request.object.spec.containers[0] ?? {}, { securityContext: { privileged: true } });
for (const [path, body] of [
  ['/validate', privileged],
  ['/validate', podCreateReview()],
  ['/mutate', podCreateReview()],
] as const) {
  const reply = await srv.request(path, { body });
  if (reply.status !== 200) throw new Error(`${path}: ${reply.status} ${reply.text}`);
}
const exposition = (await srv.request('/metrics')).text;
const exported = exportedNames(exposition);

t.test('metricNames reads the names out of PromQL, and nothing else', async (t) => {
  const cases: [string, string[]][] = [
    [
      'sum by (rule, action) (rate(portcullis_rule_results_total{namespace=~"$namespace"}[$__rate_interval]))',
      ['portcullis_rule_results_total'],
    ],
    ['histogram_quantile(0.99, sum by (le) (rate(a_bucket{x="rate(b)"}[5m]))) > 4', ['a_bucket']],
    ['min(x_seconds) - time() < 14 * 86400', ['x_seconds']],
    ['absent(up{job="j"} == 1) or on(namespace) y offset 1h', ['up', 'y']],
    ['1e3 * count by (version) (portcullis_build_info)', ['portcullis_build_info']],
  ];
  for (const [expr, names] of cases) t.same(metricNames(expr), names, expr);
});

t.test('the dashboard has queries, each reading at least one metric', async (t) => {
  t.ok(queries.length >= 15, `${queries.length} queries`);
  for (const { where, expr } of queries) t.ok(metricNames(expr).length > 0, `${where}: ${expr}`);
});

t.test('every metric a query reads is one Portcullis exports', async (t) => {
  for (const { where, expr } of queries) {
    for (const name of metricNames(expr)) {
      if (name in NOT_YET_EXPORTED) continue;
      t.ok(exported.has(name), `${where}: ${name} is exported`);
    }
  }
});

t.test(
  'metrics read before Portcullis exports them are still not exported (else drop them from the list)',
  async (t) => {
    const read = new Set(queries.flatMap(({ expr }) => metricNames(expr)));
    for (const [name, why] of Object.entries(NOT_YET_EXPORTED)) {
      t.ok(read.has(name), `${name} is on the dashboard (${why})`);
      t.notOk(exported.has(name), `${name} is not exported yet`);
    }
  },
);

t.test('every portcullis_* metric Portcullis exports is on some panel', async (t) => {
  const read = new Set(queries.flatMap(({ expr }) => metricNames(expr)));
  const families = [...exposition.matchAll(/^# TYPE (portcullis_\w+) (\w+)$/gm)];
  t.ok(families.length >= 11, `${families.length} metric families`);
  for (const [, name = '', type] of families) {
    const readAs = type === 'histogram' ? ['_bucket', '_count', '_sum'].map((s) => `${name}${s}`) : [name];
    t.ok(
      readAs.some((n) => read.has(n)),
      `${name} (${String(type)})`,
    );
  }
});

t.test('panels: unique ids, every target on the dashboard’s data source variable', async (t) => {
  const ids = panels.map((p) => p['id']);
  t.equal(new Set(ids).size, ids.length, 'unique panel ids');
  t.equal(
    isRecord(dashboard) ? dashboard['uid'] : undefined,
    'portcullis',
    'a stable uid, so links survive re-imports',
  );
  for (const panel of panels.filter((p) => p['type'] !== 'row')) {
    for (const target of records(panel['targets'])) {
      t.same(target['datasource'], { type: 'prometheus', uid: '${datasource}' }, String(panel['title']));
      t.match(
        String(target['expr']),
        /namespace=~"\$namespace"/,
        `${String(panel['title'])}: filtered by $namespace`,
      );
    }
  }
});

t.test(
  'a replica without a RuleSet reports portcullis_ready 0 (what the no-ready-replica alert reads)',
  async (t) => {
    const notReady = await startServer({ certificates, rules: null });
    t.teardown(() => notReady.close());
    t.equal((await notReady.request('/readyz')).status, 503);
    t.match((await notReady.request('/metrics')).text, /^portcullis_ready 0$/m);
  },
);
