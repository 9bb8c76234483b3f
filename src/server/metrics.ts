// Prometheus metrics. Labels stay low-cardinality: endpoint, decision, rule and action come from
// small fixed sets or from the RuleSet; object names, namespaces and users never become labels.
// One registry per server, so tests can run several servers in a process.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FastifyPluginCallback } from 'fastify';
import type { AuditCounters } from '../audit/sink.js';
import { VERSION } from '../version.js';
import { stateAt, type CompiledException } from '../core/index.js';

export interface Metrics {
  registry: Registry;
  /**
   * One per admission answer, by endpoint and outcome: `allow`, `deny`, `warn`, `audit`, `skip`,
   * `invalid` (a 4xx: the caller sent what cannot be judged, or may not call) or `error` (a 5xx).
   */
  decisions: Counter<'endpoint' | 'decision'>;
  /** One per rule per answer that rule had something to say in, by its action (`deny`, `warn`, `audit`, `mutate`). */
  ruleResults: Counter<'rule' | 'action'>;
  latency: Histogram<'endpoint'>;
  auditWritten: Counter<'sink'>;
  auditDropped: Counter<'sink'>;
  rulesetLoads: Counter<'result'>;
  /** 1 when the last RuleSet read was loaded, 0 when it was refused (the one before stays in force). */
  rulesetLastLoadSuccess: Gauge;
  /** 1 for the hash of the RuleSet in force, so a rollout can be followed across replicas. */
  rulesetInfo: Gauge<'hash'>;
  certificateExpiry: Gauge;
  /** 1 while /readyz would answer 200, 0 otherwise; set when /metrics is scraped. */
  ready: Gauge;
  /** When each exception of the RuleSet in force expires (Unix time), by exception name. */
  exceptionExpiry: Gauge<'exception'>;
  /** Requests an exception matched while it was not in force (expired, or not yet granted). */
  exceptionLapsed: Counter<'exception'>;
  /** Where `portcullis_exceptions_active` counts from: the exceptions of the RuleSet in force. */
  countExceptionsOf(source: () => readonly CompiledException[]): void;
  audit: AuditCounters;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  // As Prometheus' own `prometheus_build_info`: a constant 1 whose labels say what runs.
  new Gauge({
    name: 'portcullis_build_info',
    help: 'Always 1; labelled with the Portcullis version and the Node.js version running it.',
    labelNames: ['version', 'node_version'] as const,
    registers,
  }).set({ version: VERSION, node_version: process.version }, 1);
  const auditWritten = new Counter({
    name: 'portcullis_audit_events_written_total',
    help: 'Audit events handed to a sink (for the webhook: accepted by the collector).',
    labelNames: ['sink'] as const,
    registers,
  });
  const auditDropped = new Counter({
    name: 'portcullis_audit_events_dropped_total',
    help: 'Audit events a sink had to drop (queue full, collector down past its retries, sink closed).',
    labelNames: ['sink'] as const,
    registers,
  });
  let exceptions: () => readonly CompiledException[] = () => [];
  new Gauge({
    name: 'portcullis_exceptions_active',
    help: 'Exceptions of the RuleSet in force that are in force now (granted, not expired).',
    registers,
    collect() {
      const now = new Date();
      this.set(exceptions().filter((e) => stateAt(e, now) === 'in-force').length);
    },
  });
  const decisions = new Counter({
    name: 'portcullis_admission_decisions_total',
    help: 'Admission answers, by endpoint and decision (invalid: refused with a 4xx; error: a 5xx).',
    labelNames: ['endpoint', 'decision'] as const,
    registers,
  });
  // Present from the start at 0, so an alert on their rate has a series before the first failure.
  for (const endpoint of ['validate', 'mutate']) {
    for (const decision of ['invalid', 'error']) decisions.inc({ endpoint, decision }, 0);
  }
  return {
    registry,
    exceptionExpiry: new Gauge({
      name: 'portcullis_exception_expiration_timestamp_seconds',
      help: 'When each exception of the RuleSet in force expires (Unix time); alert on it minus time().',
      labelNames: ['exception'] as const,
      registers,
    }),
    exceptionLapsed: new Counter({
      name: 'portcullis_exception_lapsed_total',
      help: 'Requests an exception matched while not in force (expired or not yet granted): it was not applied.',
      labelNames: ['exception'] as const,
      registers,
    }),
    countExceptionsOf(source) {
      exceptions = source;
    },
    decisions,
    ruleResults: new Counter({
      name: 'portcullis_rule_results_total',
      help: 'Admission answers in which a rule was violated (or asked for a patch), by rule and action.',
      labelNames: ['rule', 'action'] as const,
      registers,
    }),
    latency: new Histogram({
      name: 'portcullis_admission_duration_seconds',
      help: 'Time from receiving an admission request to answering it.',
      labelNames: ['endpoint'] as const,
      // Up to the API server's largest webhook timeout (30 s), so that a p99 near the configured
      // timeout (5 s shipped) can be seen: the PrometheusRule alerts on it.
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5, 5, 10, 30],
      registers,
    }),
    auditWritten,
    auditDropped,
    rulesetLoads: new Counter({
      name: 'portcullis_ruleset_loads_total',
      help: 'RuleSet loads, by result (success, failure). A failed load keeps the RuleSet in force.',
      labelNames: ['result'] as const,
      registers,
    }),
    rulesetLastLoadSuccess: new Gauge({
      name: 'portcullis_ruleset_last_load_success',
      help: 'Whether the last RuleSet read was loaded (1) or refused (0, the one before stays in force).',
      registers,
    }),
    rulesetInfo: new Gauge({
      name: 'portcullis_ruleset_info',
      help: 'The RuleSet in force, by hash.',
      labelNames: ['hash'] as const,
      registers,
    }),
    certificateExpiry: new Gauge({
      name: 'portcullis_certificate_expiration_timestamp_seconds',
      help: 'When the serving certificate in use expires (Unix time); alert on it minus time().',
      registers,
    }),
    ready: new Gauge({
      name: 'portcullis_ready',
      help: 'Whether this replica is ready (1: /readyz answers 200), as of the scrape.',
      registers,
    }),
    audit: {
      written: (sink, count) => {
        auditWritten.inc({ sink }, count);
      },
      dropped: (sink, count) => {
        auditDropped.inc({ sink }, count);
      },
    },
  };
}

/** GET /metrics, Prometheus text, as a fastify plugin; `ready` sets portcullis_ready at each scrape. */
export const metricsRoute: FastifyPluginCallback<{ metrics: Metrics; ready: () => boolean }> = (
  app,
  { metrics, ready },
  done,
) => {
  app.get('/metrics', async (_request, reply) => {
    metrics.ready.set(ready() ? 1 : 0);
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
  done();
};
