/**
 * When a subscription ends on its own, with neither its client nor the hub asking:
 *
 *   keep-alive tick ──▶ backed up STALLED_TICKS ticks in a row?  ──▶ `stalled`
 *                  └──▶ past `endsAt` (a bound on its lifetime)? ──▶ `expired`
 *   one timer       ──▶ at `expiresAt` (its token's `exp`)         ──▶ `expired`
 *
 * Invariant: nothing here runs per event. The keep-alive checks ride on the hub's one timer; a
 * subscription costs a timer of its own only when its token expires, and that timer is unref'd
 * and cleared when the subscription closes.
 */
import { MAX_TIMER_MS } from "./options.ts";

/** Keep-alive intervals a connection may stay backed up before it is dropped (45–60 s by default). */
export const STALLED_TICKS = 4;

/**
 * What ends a subscription at a keep-alive tick, if anything: `stalled` when its connection has
 * now been backed up for `stalledTicks` ≥ {@link STALLED_TICKS} ticks in a row, `expired` when
 * its `endsAt` has passed.
 */
export function endAtTick(
  stalledTicks: number,
  endsAt: number | undefined,
): "stalled" | "expired" | undefined {
  if (stalledTicks >= STALLED_TICKS) return "stalled";
  if (endsAt !== undefined && Date.now() >= endsAt) return "expired";
  return undefined;
}

/** What the expiry timer needs of a subscriber. */
export interface Expiring {
  /** The timer armed for it, if any: the subscriber clears it when it closes. */
  expiry: NodeJS.Timeout | undefined;
  close(reason: "expired"): void;
}

/**
 * Arms the one unref'd timer that ends `subscriber` at `at` (ms since the epoch). One timer per
 * subscription whose token expires, none otherwise: nothing is checked per event, and a hub-wide
 * sweep would visit every subscriber on every tick to close a few.
 */
export function armExpiry(subscriber: Expiring, at: number): void {
  // Timers cap at MAX_TIMER_MS (about 24.8 days); a later expiry re-arms.
  const delay = Math.max(0, at - Date.now());
  // The timer's arguments, not a closure: no per-subscriber function is made.
  subscriber.expiry = setTimeout(
    expireOrRearm,
    Math.min(delay, MAX_TIMER_MS),
    subscriber,
    at,
    delay > MAX_TIMER_MS,
  );
  subscriber.expiry.unref();
}

function expireOrRearm(subscriber: Expiring, at: number, early: boolean): void {
  if (early) armExpiry(subscriber, at);
  else subscriber.close("expired");
}
