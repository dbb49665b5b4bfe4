/** A bound on how long a start may take. */
import { CrierError } from "./errors.ts";

/**
 * `started`, or a `CRIER_ERR_UNAVAILABLE` rejection once `ms` have passed (0: no bound). The
 * timer is unref()ed: it never keeps a process alive by itself.
 */
export function within(started: Promise<void>, ms: number): Promise<void> {
  if (ms === 0) return started;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    const reason = `the backplane did not start within ${ms} ms; check that its server is reachable, or raise readyTimeoutMs`;
    timer = setTimeout(() => reject(new CrierError("CRIER_ERR_UNAVAILABLE", reason)), ms);
    timer.unref();
  });
  return Promise.race([started, timeout]).finally(() => clearTimeout(timer));
}
