/**
 * Who may open a new event stream: the limits an operator sets on subscriptions, checked in the
 * order of their cost to the refused client.
 *
 *   GET ──▶ total < maxSubscribers ──▶ this address < maxSubscribersPerIp ──▶ rate bucket ──▶ token
 *           429 + Retry-After          429 + Retry-After                       503 + Retry-After
 *
 * The invariant: a refusal is decided before any work is done for the request (the token is
 * verified only after), and the rate bucket spends a token only on a request no other limit
 * refuses, so a client over its own cap cannot use up everyone else's admissions.
 */

import { isIPv6 } from "node:net";
import { CrierError } from "../../errors.ts";
import type { Hub } from "../../hub.ts";
import type { Subscription } from "../../subscriber.ts";
import type { Exchange } from "./exchange.ts";

/** The limits, resolved (0: off). */
export interface AdmissionLimits {
  readonly maxSubscribers: number;
  readonly maxSubscribersPerIp: number;
  readonly maxSubscribeRate: number;
}

export class Admission {
  readonly #hub: Hub;
  readonly #limits: AdmissionLimits;
  // Concurrent subscriptions by client address; only addresses that hold one are kept.
  readonly #byAddress = new Map<string, number>();
  readonly #addressOf = new Map<Subscription, string>();
  readonly #bucket: TokenBucket | undefined;

  constructor(hub: Hub, limits: AdmissionLimits) {
    this.#hub = hub;
    this.#limits = limits;
    if (limits.maxSubscribeRate > 0) this.#bucket = new TokenBucket(limits.maxSubscribeRate);
    if (limits.maxSubscribersPerIp > 0) hub.on("disconnect", (s) => this.#released(s));
  }

  /**
   * Throws the refusal of a new subscription from `ex`, if any. `spend`: take a place in the
   * rate (the first check of a request); the check just before registering does not, so that
   * concurrent requests cannot overshoot the caps while each request counts once.
   */
  check(ex: Exchange, spend: boolean): void {
    const { maxSubscribers, maxSubscribersPerIp } = this.#limits;
    if (this.#hub.stats.subscribers >= maxSubscribers) {
      // [spec, draft-08] Hubs MAY also limit the number of concurrent subscriptions […] and MAY
      // reject further subscription attempts with a 429 "Too Many Requests" status code.
      throw new CrierError(
        "CRIER_ERR_TOO_MANY",
        `the hub serves its maximum of ${maxSubscribers} subscriptions; retry later`,
      );
    }
    if (maxSubscribersPerIp > 0) {
      const address = addressKey(ex.remoteAddress);
      if ((this.#byAddress.get(address) ?? 0) >= maxSubscribersPerIp) {
        throw new CrierError(
          "CRIER_ERR_TOO_MANY",
          `your address (${address}) holds the maximum of ${maxSubscribersPerIp} subscriptions; close one or retry later`,
        );
      }
    }
    if (spend && this.#bucket !== undefined && !this.#bucket.take()) {
      throw new CrierError(
        "CRIER_ERR_UNAVAILABLE",
        `the hub admits at most ${this.#limits.maxSubscribeRate} new subscriptions per second; retry shortly`,
        { retryAfterSeconds: 1 },
      );
    }
  }

  /** Counts a subscription just registered against its client's address. */
  admitted(ex: Exchange, subscription: Subscription): void {
    // Ended already (the peer left, the replay failed): the hub has said `disconnect`.
    if (this.#limits.maxSubscribersPerIp === 0 || subscription.closed) return;
    const address = addressKey(ex.remoteAddress);
    this.#addressOf.set(subscription, address);
    this.#byAddress.set(address, (this.#byAddress.get(address) ?? 0) + 1);
  }

  #released(subscription: Subscription): void {
    const address = this.#addressOf.get(subscription);
    if (address === undefined) return;
    this.#addressOf.delete(subscription);
    const left = (this.#byAddress.get(address) ?? 1) - 1;
    if (left === 0) this.#byAddress.delete(address);
    else this.#byAddress.set(address, left);
  }
}

/**
 * The address a per-IP limit counts by: IPv4 (also when mapped into IPv6) as is, IPv6 by its
 * /64 prefix, since one host is usually given a whole /64 and could otherwise pick a fresh
 * address for every stream.
 */
export function addressKey(address: string | undefined): string {
  if (address === undefined) return "unknown";
  const plain = address.split("%")[0] as string;
  if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(plain)) return plain.slice(7);
  if (!isIPv6(plain)) return plain;
  const [head = "", tail] = plain.split("::");
  const groups = head === "" ? [] : head.split(":");
  if (tail !== undefined) while (groups.length < 4) groups.push("0");
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(":")}::/64`;
}

/** `rate` admissions per second, at most `rate` at once after a quiet second. */
class TokenBucket {
  readonly #rate: number;
  #tokens: number;
  #at = performance.now();

  constructor(rate: number) {
    this.#rate = rate;
    this.#tokens = rate;
  }

  take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.#rate, this.#tokens + ((now - this.#at) * this.#rate) / 1000);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
