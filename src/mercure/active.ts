/**
 * The registry of active subscriptions (Mercure): which subscriptions the subscribers of one hub
 * hold, and the private subscription events that announce each one's start and end. It learns
 * of a subscription's end from the hub's `disconnect` event; the hub itself knows nothing of it.
 *
 *   handler ──add(subscription, selectors, payloads)──▶ registry ──hub.publish(event)──▶ history
 *   hub ──"disconnect"──▶ registry: remove, announce the end
 *
 * One registry per hub (see {@link activeSubscriptionsOf}), so that two handlers on one hub do not
 * announce every subscription twice.
 */
import type { SharedDirectory } from "../backplane/backplane.ts";
import { CrierError } from "../errors.ts";
import type { Hub } from "../hub.ts";
import { hubArgument } from "../options.ts";
import type { Selector, SelectorInput } from "../selectors/selector.ts";
import type { Subscription } from "../subscriber.ts";
import {
  type ActiveSubscription,
  describeSubscriptions,
  SUBSCRIPTION_EVENT_TYPE,
  subscriptionEventData,
} from "./subscriptions.ts";

/** Keep-alive intervals a node may miss before the others forget its subscriptions. */
const MISSED_KEEP_ALIVES = 3;
/** The bound when keep-alives are off. */
const DEFAULT_NODE_TTL_MS = 45_000;

export class ActiveSubscriptions {
  readonly #hub: Hub;
  // By subscription, in connection order.
  readonly #active = new Map<Subscription, readonly ActiveSubscription[]>();
  // Every node's subscriptions, when the hub shares a backplane with other nodes.
  readonly #directory: SharedDirectory | undefined;

  constructor(hub: Hub) {
    this.#hub = hub;
    const ttlMs = hub.keepAliveMs > 0 ? hub.keepAliveMs * MISSED_KEEP_ALIVES : DEFAULT_NODE_TTL_MS;
    this.#directory = hub.directory("subscriptions", ttlMs);
    hub.on("disconnect", (subscription) => {
      const active = this.#active.get(subscription);
      if (active === undefined) return;
      this.#active.delete(subscription);
      for (const one of active) this.#directory?.delete(one.id);
      this.#announce(active, false);
    });
  }

  /**
   * Registers the subscriptions of a subscriber just connected, one per selector as written (a
   * plain string or `{ template }` is a v0.x `topic`, `{ exact }` and `{ urlpattern }` draft-08
   * matchers), `payloads[i]` being the payload of `selectors[i]`, and announces them.
   */
  add(
    subscription: Subscription,
    selectors: readonly (SelectorInput | Selector)[],
    payloads: readonly unknown[] = [],
  ): void {
    // Ended already (its replay failed at once): there is nothing to announce.
    if (subscription.closed) return;
    const active = describeSubscriptions(subscription.id, selectors, payloads);
    this.#active.set(subscription, active);
    for (const one of active) this.#directory?.set(one.id, JSON.stringify(one));
    // [spec] it MUST publish an update when a subscription is created or terminated.
    this.#announce(active, true);
  }

  /** The subscriptions of this hub's subscribers (not other nodes'), oldest first. */
  list(): ActiveSubscription[] {
    return [...this.#active.values()].flat();
  }

  /**
   * The subscriptions of every node sharing this hub's backplane (this node's alone when it
   * shares none). A node that has stopped is forgotten within three keep-alive intervals.
   * Rejects with `CRIER_ERR_UNAVAILABLE` when the backplane cannot be read.
   */
  async listAll(): Promise<ActiveSubscription[]> {
    if (this.#directory === undefined) return this.list();
    let values: string[];
    try {
      values = await this.#directory.values();
    } catch (err) {
      throw new CrierError(
        "CRIER_ERR_UNAVAILABLE",
        `the subscriptions of other nodes cannot be read: ${(err as Error).message}`,
      );
    }
    const all: ActiveSubscription[] = [];
    for (const value of values) {
      const one = parseActive(value);
      if (one !== undefined) all.push(one);
    }
    return all;
  }

  // [spec] In order to only allow authorized subscribers to receive subscription events, the
  // subscription update MUST be marked as `private`.
  #announce(subscriptions: readonly ActiveSubscription[], active: boolean): void {
    for (const subscription of subscriptions) {
      const update = {
        topics: [subscription.id],
        data: subscriptionEventData(subscription, active),
        // [spec, draft-08] The hub MUST dispatch subscription events with the update `type`
        // field […] set to the reserved value `mercure`. The v0.x text has no type.
        type: subscription.matchType === undefined ? undefined : SUBSCRIPTION_EVENT_TYPE,
        private: true,
      };
      // A failure (backplane down, hub closed) is the hub's to report; the registry stays right.
      this.#hub.publish(update).catch((err: unknown) => {
        if (this.#hub.listenerCount("error") > 0) this.#hub.emit("error", err as Error);
      });
    }
  }
}

// An entry written by another node; anything that is not one (another version, another program
// on the prefix) is left out rather than served.
function parseActive(value: string): ActiveSubscription | undefined {
  try {
    const v = JSON.parse(value) as Partial<Record<keyof ActiveSubscription, unknown>>;
    if (
      typeof v.id !== "string" ||
      typeof v.collection !== "string" ||
      typeof v.subscriber !== "string" ||
      typeof v.selector !== "string" ||
      (v.matchType !== undefined && v.matchType !== "exact" && v.matchType !== "urlpattern")
    ) {
      return undefined;
    }
    return {
      id: v.id,
      collection: v.collection,
      subscriber: v.subscriber,
      matchType: v.matchType,
      selector: v.selector,
      payload: v.payload,
    };
  } catch {
    return undefined;
  }
}

const registries = new WeakMap<Hub, ActiveSubscriptions>();

/** The registry of `hub`, made on first use. */
export function activeSubscriptionsOf(hub: Hub): ActiveSubscriptions {
  hubArgument(hub, "activeSubscriptionsOf");
  let registry = registries.get(hub);
  if (registry === undefined) {
    registry = new ActiveSubscriptions(hub);
    registries.set(hub, registry);
  }
  return registry;
}
