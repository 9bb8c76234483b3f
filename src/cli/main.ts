// `portcullis`: one binary, three commands. `check` dry-runs the rules, `serve` runs the webhook,
// `certs` makes its certificates. Each command lives in its own module and returns an exit code.

import { Command, CommanderError } from 'commander';
import { checkCommand } from './check.js';

export async function main(argv: readonly string[]): Promise<number> {
  let exitCode = 0;
  const program = new Command('portcullis')
    .description('Kubernetes admission controller: privileged pods, hostPath, registries, seccomp, cluster-admin')
    .exitOverride()
    .showHelpAfterError();
  program.addCommand(checkCommand((code) => (exitCode = code)));
  try {
    await program.parseAsync([...argv]);
  } catch (err) {
    // --help and --version end through here with code 0; usage errors have been printed already.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  return exitCode;
}
