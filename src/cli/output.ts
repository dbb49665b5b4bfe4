/** What the command says: log lines on stderr, and the usage error that exits 2. */

/** A mistake in how the command was called: printed with the usage, exit code 2. */
export class UsageError extends Error {}

/** One line on stderr, prefixed with the command's name. */
export function log(message: string): void {
  process.stderr.write(`crier: ${message}\n`);
}
