// `portcullis`: one binary. `check` dry-runs the rules on manifests, `test` runs rule tests,
// `replay` judges the API server's audit log, `scan` what runs in a cluster; `serve` runs the
// webhook, `certs` makes its certificates. Each command lives in its own module and returns an exit code.

import { Command, CommanderError } from 'commander';
import { certsCommand } from './certs.js';
import { checkCommand } from './check.js';
import { replayCommand } from './replay.js';
import { scanCommand } from './scan.js';
import { serveCommand } from './serve.js';
import { testCommand } from './test.js';
import { VERSION } from '../version.js';

export async function main(argv: readonly string[]): Promise<number> {
  let exitCode = 0;
  const program = new Command('portcullis')
    .description(
      'Kubernetes admission controller: privileged pods, hostPath, registries, seccomp, cluster-admin',
    )
    .version(VERSION, '-V, --version', 'print the version and exit')
    .exitOverride()
    .showHelpAfterError();
  program.addCommand(checkCommand((code) => (exitCode = code)));
  program.addCommand(replayCommand((code) => (exitCode = code)));
  program.addCommand(scanCommand((code) => (exitCode = code)));
  program.addCommand(certsCommand((code) => (exitCode = code)));
  program.addCommand(serveCommand((code) => (exitCode = code)));
  program.addCommand(testCommand((code) => (exitCode = code)));
  // Subcommands do not inherit exitOverride: without it commander exits 1 on a usage error, which
  // `check` reserves for "something was denied".
  for (const command of program.commands) command.exitOverride();
  try {
    await program.parseAsync([...argv]);
  } catch (err) {
    // --help and --version end through here with code 0; usage errors have been printed already.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  return exitCode;
}
