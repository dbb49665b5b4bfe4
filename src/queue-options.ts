/**
 * The bounds of one subscriber's queue and what happens at them: the options, their defaults
 * and their checking (the hub resolves them once, each subscriber applies them).
 *
 * Invariant: a resolved bound is a whole number ≥ 1 and the policy one of the two named; an
 * option that is not is refused with `CRIER_ERR_INVALID_OPTION`, never silently defaulted.
 */
import { choiceOption, integerOption, knownKeys, objectArgument } from "./options.ts";

/** What happens when a subscriber's queue is full. */
export type OverflowPolicy = "disconnect" | "drop";

/** Defaults of {@link QueueOptions}. */
export const QUEUE_DEFAULTS = { maxEvents: 4096, maxBytes: 1024 * 1024 } as const;

/** Checks queue options and applies their defaults; throws `CRIER_ERR_INVALID_OPTION`. */
export function resolveQueueOptions(queue: QueueOptions = {}): Required<{
  [K in keyof QueueOptions]: Exclude<QueueOptions[K], undefined>;
}> {
  objectArgument(queue, "queue must be an object { maxEvents?, maxBytes?, overflow? }");
  knownKeys(queue, ["maxEvents", "maxBytes", "overflow"], "queue");
  return {
    maxEvents: integerOption("queue.maxEvents", queue.maxEvents, QUEUE_DEFAULTS.maxEvents, 1),
    maxBytes: integerOption("queue.maxBytes", queue.maxBytes, QUEUE_DEFAULTS.maxBytes, 1),
    overflow: choiceOption("queue.overflow", queue.overflow, "disconnect", ["disconnect", "drop"]),
  };
}

/** Bounds of one subscriber's queue. */
export interface QueueOptions {
  /** Most frames waiting to be written. Default 4,096. */
  readonly maxEvents?: number | undefined;
  /** Most bytes waiting to be written (besides what the socket itself buffers). Default 1 MiB. */
  readonly maxBytes?: number | undefined;
  /**
   * At the bound: `disconnect` (default) closes the connection so the client resumes from the
   * history with Last-Event-ID and loses nothing; `drop` discards the new frame (counted) and
   * keeps the connection: use it only where losing updates is acceptable.
   */
  readonly overflow?: OverflowPolicy | undefined;
}
