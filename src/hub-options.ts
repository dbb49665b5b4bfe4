/**
 * The hub's options and their defaults. `createHub` checks each one (`CRIER_ERR_INVALID_OPTION`)
 * and the command line's settings table takes its defaults from here, so the two never differ.
 *
 * Invariant: every field is optional, and its default is the one stated at the field.
 */
import type { Backplane } from "./backplane/backplane.ts";
import type { MemoryHistoryOptions } from "./history/memory.ts";
import type { PushbackOptions } from "./pushback.ts";
import type { QueueOptions } from "./queue-options.ts";

/** Defaults of {@link HubOptions}. */
export const HUB_DEFAULTS = {
  keepAliveMs: 15_000,
  closeRetryMs: 1000,
  readyTimeoutMs: 10_000,
  flushWindowMs: 5,
} as const;

/** The keys of {@link HubOptions}: any other is refused (a misspelt one would be ignored). */
export const HUB_OPTION_KEYS: readonly (keyof HubOptions)[] = [
  "history",
  "backplane",
  "keepAliveMs",
  "queue",
  "closeRetryMs",
  "readyTimeoutMs",
  "flushWindowMs",
  "pushback",
];

/** Options of `createHub`. Every field is optional. */
export interface HubOptions {
  /** Bounds of the in-memory history (ignored when `backplane` is given). */
  readonly history?: MemoryHistoryOptions | undefined;
  /** Where updates are stored and shared. Default: an in-memory history in this process. */
  readonly backplane?: Backplane | undefined;
  /** Milliseconds between keep-alive comments. Default 15,000; `0` turns them off. */
  readonly keepAliveMs?: number | undefined;
  /** Bounds of each subscriber's queue and what happens at them. */
  readonly queue?: QueueOptions | undefined;
  /** The `retry` hint, in ms, sent to subscribers when the hub closes. Default 1,000. */
  readonly closeRetryMs?: number | undefined;
  /**
   * How long `Hub.ready` waits for the backplane to start, in ms, before it rejects with
   * `CRIER_ERR_UNAVAILABLE` (e.g. Redis unreachable). The backplane keeps trying afterwards;
   * close the hub to stop it. Default 10,000; `0` waits as long as it takes.
   */
  readonly readyTimeoutMs?: number | undefined;
  /**
   * The least time, in ms, between the end of one flush to subscribers and the start of the
   * next (`flush-queue.ts`): under a publish flood the hub reads more publishes between flushes
   * and writes each subscriber more updates per write; after a quiet spell an update is written
   * at once. Default 5; `0`: flush on every event-loop turn that has something to write.
   */
  readonly flushWindowMs?: number | undefined;
  /** When publishes wait or are refused under a fan-out backlog (`pushback.ts`); `false`: never. */
  readonly pushback?: PushbackOptions | false | undefined;
}
