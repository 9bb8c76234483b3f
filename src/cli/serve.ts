// `portcullis serve`: the admission webhook over HTTPS. Without --tls-cert/--tls-key it makes a
// throw-away CA and a serving cert for localhost, so `npm start` runs the webhook locally on the
// shipped rules. The RuleSet comes from a watched file (or mounted ConfigMap directory) or, with
// --rules-configmap, straight from the API server; a broken edit never replaces the one in force,
// and until a first good one loads the server is not ready and denies everything. Runs until
// SIGTERM or SIGINT, then drains and exits 0. With --client-ca only callers holding a client
// certificate from that CA (the API server) are judged. Exit 2: unusable certificate files, kubeconfig or
// options; 1: the port cannot be bound.

import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { Command, InvalidArgumentError } from 'commander';
import pino, { type Logger } from 'pino';
import { JsonLinesSink, type AuditSink } from '../audit/sink.js';
import { WebhookSink } from '../audit/webhook.js';
import type { ClusterRolesWatch } from '../config/cluster-roles-watch.js';
import { parseConfigMapRef, type ConfigMapRef } from '../config/rules-configmap.js';
import { watchRulesFile, type RulesWatch } from '../config/rules-file-watch.js';
import { DEFAULT_RULES_PATH, type LoadedRuleSet } from '../config/ruleset-source.js';
import { checkPair, readPair, type ServingCertificate } from '../server/certificates.js';
import { checkClientCa, type ClientAuthOptions } from '../server/client-auth.js';
import { createMetrics, type Metrics } from '../server/metrics.js';
import { podLabelLookup } from '../server/pod-lookup.js';
import { RuleSetHolder } from '../server/ruleset-holder.js';
import { createServer } from '../server/server.js';
import { generateCertificates } from '../tls/certs.js';
import { VERSION } from '../version.js';

export interface ServeOptions {
  rules: string;
  /** `--rules-configmap`, as commander names it. */
  rulesConfigmap?: ConfigMapRef;
  kubeconfig?: string;
  /** `--webhook-configuration`: the ValidatingWebhookConfiguration whose cel webhook follows the rules. */
  webhookConfiguration?: string;
  tlsCert?: string;
  tlsKey?: string;
  port: number;
  host: string;
  auditLog?: string;
  auditWebhook?: string;
  auditWebhookCa?: string;
  clientCa?: string;
  /** `--client-name`, repeatable. */
  clientName?: string[];
}

/** Days the throw-away certificate lives: long enough for a local session, short enough to be thrown away. */
const THROWAWAY_DAYS = 30;

export function serveCommand(setExitCode: (code: number) => void): Command {
  return (
    new Command('serve')
      .description(
        'Run the admission webhook over HTTPS: POST /validate and /mutate, GET /healthz, /readyz, /metrics',
      )
      .option(
        '--rules <path>',
        'RuleSet file (YAML or JSON), or a directory holding rules.yaml (a mounted ConfigMap); watched',
        DEFAULT_RULES_PATH,
      )
      .option(
        '--rules-configmap <namespace/name>',
        'watch the RuleSet in this ConfigMap (key rules.yaml) through the API server instead',
        configMapRef,
      )
      .option(
        '--kubeconfig <file>',
        "with --rules-configmap: cluster credentials (default: in-cluster, then kubectl's)",
      )
      .option(
        '--webhook-configuration <name>',
        "with --rules-configmap: keep the rules of this ValidatingWebhookConfiguration's custom.portcullis.io webhook in step with the cel rules in force",
      )
      .option('--tls-cert <file>', 'serving certificate (PEM), watched for rotation; with --tls-key')
      .option('--tls-key <file>', 'its private key (PEM)')
      .option('--port <n>', 'port to listen on', port, 8443)
      .option('--host <addr>', 'address to listen on', '0.0.0.0')
      .option('--audit-log <file>', 'write audit events to this file (JSON lines) instead of stdout')
      .option('--audit-webhook <url>', 'POST audit events in EventList batches to this URL')
      .option('--audit-webhook-ca <file>', 'CA bundle (PEM) to verify an https audit webhook with')
      .option(
        '--client-ca <file>',
        'judge only callers with a client certificate from this CA (PEM): the API server, given a kubeConfigFile',
      )
      .option(
        '--client-name <name>',
        'with --client-ca: the certificate CN or DNS SAN must be this (repeatable)',
        (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
      )
      // Subcommands added with addCommand do not inherit these from the program.
      .exitOverride()
      .showHelpAfterError()
      .addHelpText(
        'after',
        '\nWithout --tls-cert and --tls-key a throw-away CA and a cert for localhost are made; the CA file is printed.\n' +
          'Audit events go to stdout unless --audit-log or --audit-webhook is given (both may be).\n' +
          'Until a valid RuleSet loads, /readyz answers 503 and every admission request is denied.\n' +
          'With --client-ca, /validate and /mutate refuse (401) a caller without a certificate from that CA;\n' +
          '/healthz, /readyz and /metrics stay open to probes.\n' +
          'Exit status: 0 after SIGTERM or SIGINT, 1 cannot listen, 2 unusable certificates, kubeconfig or options.',
      )
      .action(async (options: ServeOptions, command: Command) => {
        if (options.rulesConfigmap !== undefined && command.getOptionValueSource('rules') === 'cli') {
          command.error('--rules and --rules-configmap are alternatives: give one', { exitCode: 2 });
        }
        if (options.kubeconfig !== undefined && options.rulesConfigmap === undefined) {
          command.error('--kubeconfig goes with --rules-configmap', { exitCode: 2 });
        }
        if (options.webhookConfiguration !== undefined && options.rulesConfigmap === undefined) {
          command.error('--webhook-configuration goes with --rules-configmap', { exitCode: 2 });
        }
        if (options.clientName !== undefined && options.clientCa === undefined) {
          command.error('--client-name goes with --client-ca', { exitCode: 2 });
        }
        setExitCode(await runServe(options));
      })
  );
}

function configMapRef(value: string): ConfigMapRef {
  const parsed = parseConfigMapRef(value);
  if (!parsed.ok) throw new InvalidArgumentError(parsed.error);
  return parsed.ref;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('must be a port number (0-65535)');
  return n;
}

export async function runServe(options: ServeOptions): Promise<number> {
  const fail = (messages: readonly string[]): 2 => {
    process.stderr.write(messages.map((m) => `portcullis: ${m}\n`).join(''));
    return 2;
  };
  const certificate = await servingCertificate(options);
  if (!certificate.ok) return fail([certificate.error]);
  const clientAuth = await clientAuthOptions(options);
  if (!clientAuth.ok) return fail([clientAuth.error]);

  const destination = pino.destination({ dest: 1, sync: true });
  const logger = pino({ level: process.env['LOG_LEVEL'] ?? 'info' }, destination);
  logger.info({ version: VERSION, node: process.version }, 'portcullis starting');
  const metrics = createMetrics();
  const sinks = await auditSinks(options, metrics, logger, destination);
  if (!sinks.ok) return fail([sinks.error]);

  const rules = new RuleSetHolder(metrics);
  const watch = await watchRules(options, rules, logger);
  if (!watch.ok) {
    await Promise.all(sinks.sinks.map((sink) => sink.close()));
    return fail([watch.error]);
  }
  const clusterRoles = await watchClusterRoles(options, logger);
  if (!clusterRoles.ok) {
    await watch.watch.stop();
    await Promise.all(sinks.sinks.map((sink) => sink.close()));
    return fail([clusterRoles.error]);
  }
  const server = await createServer({
    rules,
    ...(clusterRoles.watch === undefined ? {} : { clusterRoles: clusterRoles.watch }),
    ...(options.rulesConfigmap === undefined ? {} : { rulesConfigMap: options.rulesConfigmap }),
    ...(watch.namespaces === undefined ? {} : { namespaces: watch.namespaces }),
    certificate: certificate.certificate,
    ...(options.tlsCert !== undefined && options.tlsKey !== undefined
      ? { certificateFiles: { cert: options.tlsCert, key: options.tlsKey } }
      : {}),
    ...(clientAuth.clientAuth === undefined ? {} : { clientAuth: clientAuth.clientAuth }),
    audit: sinks.sinks,
    metrics,
    logger,
    // For podExec's podSelector: the same credentials as --rules-configmap, loaded on first use.
    lookupPod: podLabelLookup(async () => {
      const { loadKubeConfig } = await import('../config/rules-configmap-watch.js');
      return loadKubeConfig(options.kubeconfig);
    }),
  });
  try {
    await server.listen({ host: options.host, port: options.port });
  } catch (err) {
    logger.error({ err, host: options.host, port: options.port }, 'cannot listen');
    await watch.watch.stop();
    await clusterRoles.watch?.stop();
    await server.shutdown();
    return 1;
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    // A second signal while draining gets the default handler: it ends the process at once.
    const stop = (received: NodeJS.Signals): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve(received);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  logger.info({ signal }, 'shutting down');
  await watch.watch.stop();
  await clusterRoles.watch?.stop();
  await server.shutdown();
  return 0;
}

/**
 * Starts following the RuleSet source. A file is read before this returns, so a valid one is in
 * force before the port opens; a ConfigMap arrives with the first list, shortly after.
 */
async function watchRules(
  options: ServeOptions,
  rules: RuleSetHolder,
  logger: Logger,
): Promise<
  { ok: true; watch: RulesWatch; namespaces?: ReadonlyMap<string, unknown> } | { ok: false; error: string }
> {
  if (options.rulesConfigmap === undefined) {
    const listener = { onRuleSet: rules.onRuleSet, onInvalid: rules.onInvalid };
    return { ok: true, watch: await watchRulesFile({ path: options.rules, log: logger, ...listener }) };
  }
  // Loaded only here: @kubernetes/client-node takes ~0.6 s to import, which every `check` and
  // every `serve --rules` would otherwise pay at start.
  const { loadKubeConfig, watchRulesConfigMap } = await import('../config/rules-configmap-watch.js');
  const { syncWebhookRules, watchNamespaces } = await import('../config/cel-cluster.js');
  let kubeConfig: KubeConfig;
  try {
    kubeConfig = loadKubeConfig(options.kubeconfig);
  } catch (err) {
    return {
      ok: false,
      error: `cannot load cluster credentials${options.kubeconfig === undefined ? '' : ` from ${options.kubeconfig}`}: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
  const sync =
    options.webhookConfiguration === undefined
      ? undefined
      : syncWebhookRules(kubeConfig, options.webhookConfiguration, logger);
  const listener = {
    onRuleSet: (loaded: LoadedRuleSet) => {
      rules.onRuleSet(loaded);
      sync?.update(loaded.ruleset);
    },
    onInvalid: rules.onInvalid,
  };
  const namespaceWatch = watchNamespaces(kubeConfig, logger);
  const configMapWatch = watchRulesConfigMap({
    ref: options.rulesConfigmap,
    kubeConfig,
    log: logger,
    ...listener,
  });
  const watch: RulesWatch = {
    async stop() {
      sync?.stop();
      await Promise.all([configMapWatch.stop(), namespaceWatch.stop()]);
    },
  };
  return { ok: true, watch, namespaces: namespaceWatch.namespaces };
}

/**
 * With --rules-configmap (serve in a cluster), the ClusterRoles too, so bindings are judged by what
 * their role grants. Without a cluster, only Kubernetes' bootstrap roles are known.
 */
async function watchClusterRoles(
  options: ServeOptions,
  logger: Logger,
): Promise<{ ok: true; watch: ClusterRolesWatch | undefined } | { ok: false; error: string }> {
  if (options.rulesConfigmap === undefined) return { ok: true, watch: undefined };
  const { loadKubeConfig } = await import('../config/rules-configmap-watch.js');
  const { watchClusterRoles: watch } = await import('../config/cluster-roles-watch.js');
  try {
    return { ok: true, watch: watch({ kubeConfig: loadKubeConfig(options.kubeconfig), log: logger }) };
  } catch (err) {
    return {
      ok: false,
      error: `cannot watch ClusterRoles: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
}

/** `--client-ca` read and checked now: a file that holds no CA is an error at start, not a 401 later. */
async function clientAuthOptions(
  options: ServeOptions,
): Promise<{ ok: true; clientAuth: ClientAuthOptions | undefined } | { ok: false; error: string }> {
  if (options.clientCa === undefined) return { ok: true, clientAuth: undefined };
  let ca: string;
  try {
    ca = await readFile(options.clientCa, 'utf8');
  } catch (err) {
    const reason = err instanceof Error && 'code' in err ? String(err.code) : String(err);
    return { ok: false, error: `--client-ca ${options.clientCa}: cannot read (${reason})` };
  }
  const checked = checkClientCa(ca);
  if (!checked.ok) return { ok: false, error: `--client-ca ${options.clientCa}: ${checked.error}` };
  return { ok: true, clientAuth: { ca, names: options.clientName ?? [] } };
}

type CertificateResult = { ok: true; certificate: ServingCertificate } | { ok: false; error: string };

async function servingCertificate(options: ServeOptions): Promise<CertificateResult> {
  if (options.tlsCert !== undefined && options.tlsKey !== undefined) {
    const read = await readPair({ cert: options.tlsCert, key: options.tlsKey });
    return read.ok ? read : { ok: false, error: read.error };
  }
  if (options.tlsCert !== undefined || options.tlsKey !== undefined) {
    return { ok: false, error: '--tls-cert and --tls-key go together' };
  }
  const generated = await generateCertificates({
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
    days: THROWAWAY_DAYS,
  });
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-'));
  const caFile = join(dir, 'ca.crt');
  await writeFile(caFile, generated.ca.cert);
  process.stderr.write(
    `portcullis: no --tls-cert/--tls-key: serving a throw-away certificate for localhost and 127.0.0.1\n` +
      `portcullis: its CA is ${caFile} (curl --cacert ${caFile} https://localhost:${options.port}/healthz)\n`,
  );
  const checked = checkPair({ cert: generated.cert, key: generated.key });
  return checked.ok ? checked : { ok: false, error: checked.error };
}

async function auditSinks(
  options: ServeOptions,
  metrics: Metrics,
  logger: Logger,
  stdout: ReturnType<typeof pino.destination>,
): Promise<{ ok: true; sinks: AuditSink[] } | { ok: false; error: string }> {
  const sinks: AuditSink[] = [];
  if (options.auditLog !== undefined) {
    try {
      sinks.push(await JsonLinesSink.openFile(options.auditLog, metrics.audit, logger));
    } catch (err) {
      return {
        ok: false,
        error: `--audit-log ${options.auditLog}: ${err instanceof Error ? err.message : String(err)}`,
      };
    }
  }
  if (options.auditWebhookCa !== undefined && options.auditWebhook === undefined) {
    return { ok: false, error: '--audit-webhook-ca goes with --audit-webhook' };
  }
  if (options.auditWebhook !== undefined) {
    let ca: string | undefined;
    try {
      ca = options.auditWebhookCa === undefined ? undefined : await readFile(options.auditWebhookCa, 'utf8');
      sinks.push(
        new WebhookSink(
          { url: options.auditWebhook, ...(ca === undefined ? {} : { ca }) },
          metrics.audit,
          logger,
        ),
      );
    } catch (err) {
      await Promise.all(sinks.map((s) => s.close()));
      return { ok: false, error: `--audit-webhook: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
  if (sinks.length === 0) {
    sinks.push(new JsonLinesSink('stdout', stdout, metrics.audit, logger, { ownsDestination: false }));
  }
  return { ok: true, sinks };
}
