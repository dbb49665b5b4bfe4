/**
 * Pushback: when the hub accepts updates faster than it can fan them out, the publisher is the
 * one party that can slow down without losing anything. The hub's fan-out backlog (see
 * {@link FanOutBacklog}: updates accepted and not yet written to the sockets that can take them)
 * is checked on every publish, against two thresholds:
 *
 *   backlog < hold          accepted; `publish` resolves once stored (as without pushback)
 *   hold ≤ backlog < refuse stored, then `publish` resolves once the flush has written it to every
 *                           subscriber it went to (an HTTP publisher gets its 200 then): the
 *                           answer waits, not the update
 *   refuse ≤ backlog        refused before anything is stored: `CRIER_ERR_OVERLOADED`
 *                           (HTTP 503 with `Retry-After`); nothing to undo, retrying is safe
 *
 * A subscriber backed up on its own socket is not in the backlog: it is evicted at its own queue
 * bound, as without pushback, and never slows publishers down.
 */
import { CrierError } from "./errors.ts";
import type { FanOutBacklog, FlushQueue } from "./flush-queue.ts";
import { integerOption, knownKeys, objectArgument } from "./options.ts";

/** Defaults of {@link PushbackOptions}. */
export const PUSHBACK_DEFAULTS = { holdMs: 100, refuseMs: 1000, retryAfterSeconds: 1 } as const;

/**
 * When the hub pushes back on publishers (see `HubOptions.pushback`). A threshold is passed when
 * any of its parts is: the backlog's age, its bytes, or its updates (a quarter of
 * `queue.maxEvents` to hold, half to refuse: a subscriber that reads as fast as it can must not
 * hit its own queue bound because of the hub's backlog).
 */
export interface PushbackOptions {
  /** Backlog age, in ms, from which publish answers wait for the flush. Default 100. */
  readonly holdMs?: number | undefined;
  /** Backlog age, in ms, from which publishes are refused. Default 1,000. */
  readonly refuseMs?: number | undefined;
  /** Backlog bytes from which publish answers wait. Default a quarter of `queue.maxBytes`. */
  readonly holdBytes?: number | undefined;
  /** Backlog bytes from which publishes are refused. Default half of `queue.maxBytes`. */
  readonly refuseBytes?: number | undefined;
}

/** What pushback did since the hub started. */
export interface PushbackStats {
  /** False when the hub was made with `pushback: false`. */
  readonly enabled: boolean;
  /** Publishes whose answer waited for the flush (stored and delivered all the same). */
  readonly held: number;
  /** Publishes refused with `CRIER_ERR_OVERLOADED` (nothing stored). */
  readonly refused: number;
}

interface Threshold {
  readonly ms: number;
  readonly bytes: number;
  readonly updates: number;
}

/** The pushback policy of one hub, over its flush queue's backlog. Internal. */
export class Pushback {
  readonly #queue: FlushQueue;
  readonly #hold: Threshold | undefined;
  readonly #refuse: Threshold | undefined;
  #held = 0;
  #refused = 0;

  constructor(
    options: PushbackOptions | false | undefined,
    bounds: { readonly maxEvents: number; readonly maxBytes: number },
    queue: FlushQueue,
  ) {
    this.#queue = queue;
    if (options === false) return;
    if (options !== undefined) {
      objectArgument(options, "pushback must be an options object, or false to turn it off");
      knownKeys(options, ["holdMs", "refuseMs", "holdBytes", "refuseBytes"], "pushback");
    }
    const o = options ?? {};
    const holdMs = integerOption("pushback.holdMs", o.holdMs, PUSHBACK_DEFAULTS.holdMs, 1);
    const refuseMs = integerOption("pushback.refuseMs", o.refuseMs, PUSHBACK_DEFAULTS.refuseMs, 1);
    const quarter = Math.max(1, Math.floor(bounds.maxBytes / 4));
    const holdBytes = integerOption("pushback.holdBytes", o.holdBytes, quarter, 1);
    const refuseBytes = integerOption("pushback.refuseBytes", o.refuseBytes, quarter * 2, 1);
    if (refuseMs < holdMs || refuseBytes < holdBytes) {
      throw new CrierError(
        "CRIER_ERR_INVALID_OPTION",
        "pushback thresholds: refuseMs must be ≥ holdMs and refuseBytes ≥ holdBytes",
      );
    }
    const events = Math.max(1, Math.floor(bounds.maxEvents / 4));
    this.#hold = { ms: holdMs, bytes: holdBytes, updates: events };
    this.#refuse = { ms: refuseMs, bytes: refuseBytes, updates: events * 2 };
  }

  get stats(): PushbackStats {
    return { enabled: this.#hold !== undefined, held: this.#held, refused: this.#refused };
  }

  /** Throws `CRIER_ERR_OVERLOADED` when the backlog is past the refuse threshold; call before storing. */
  admit(): void {
    if (this.#refuse === undefined) return;
    const backlog = this.#queue.backlog;
    if (!past(backlog, this.#refuse)) return;
    this.#refused++;
    throw new CrierError(
      "CRIER_ERR_OVERLOADED",
      `the hub is overloaded (${backlog.updates} updates, ${Math.round(backlog.ageMs)} ms not yet sent to subscribers); nothing was stored, retry in ${PUSHBACK_DEFAULTS.retryAfterSeconds} s`,
      { retryAfterSeconds: PUSHBACK_DEFAULTS.retryAfterSeconds },
    );
  }

  /** `value` at once, or once what was accepted so far is written when past the hold threshold. */
  async hold<T>(value: T): Promise<T> {
    if (this.#hold === undefined || !past(this.#queue.backlog, this.#hold)) return value;
    this.#held++;
    await this.#queue.flushed();
    return value;
  }
}

function past(backlog: FanOutBacklog, threshold: Threshold): boolean {
  return (
    backlog.ageMs >= threshold.ms ||
    backlog.bytes >= threshold.bytes ||
    backlog.updates >= threshold.updates
  );
}
