/** Bounds on how long a wait may take. */
import { CrierError } from "./errors.ts";

/**
 * `started`, or a `CRIER_ERR_UNAVAILABLE` rejection once `ms` have passed (0: no bound). The
 * timer is unref()ed: it never keeps a process alive by itself.
 */
export function within(started: Promise<void>, ms: number): Promise<void> {
  if (ms === 0) return started;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    const reason = `the backplane did not start within ${ms} ms; check that its server is reachable (the library's createHub also takes a longer readyTimeoutMs)`;
    timer = setTimeout(() => reject(new CrierError("CRIER_ERR_UNAVAILABLE", reason)), ms);
    timer.unref();
  });
  return Promise.race([started, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Waits for `promise`, or `ms` at most, and goes on either way (no error at the bound): for a
 * caller that checks the state itself afterwards.
 */
export async function waitAtMost(promise: Promise<unknown> | undefined, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  await Promise.race([promise ?? timeout, timeout]);
  clearTimeout(timer);
}
