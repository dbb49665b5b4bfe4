/**
 * A backplane stores updates and brings every stored update to every hub that shares it, in one
 * order. The hub asks it for two things: append (publish) and read back (replay); it hears about
 * new updates only through `deliver`, so a single node and a cluster look the same to the hub.
 */
import type { Update, UpdateFields } from "../update.ts";

/**
 * What a resume gets: the stored updates after the asked id, oldest first, that this node has
 * already delivered; `undefined` when the id is unknown or evicted (the client is told
 * `earliest`). Updates after them reach the (already registered) subscriber live.
 */
export type Replay =
  | {
      readonly updates: readonly Update[];
      /**
       * Ids at or before the asked one that this node has not delivered yet (its reader is behind
       * the node the client came from): when they arrive live, the subscriber drops them, so
       * nothing at or before its cursor is delivered again.
       */
      readonly skip?: ReadonlySet<string> | undefined;
      /**
       * The next page of the replay, oldest first: at most `maxBytes` of encoded updates (at
       * least one; default: no byte limit), and an empty page once the replay is complete. A
       * backplane that reads its history from elsewhere (Redis) gives the replay (or all of
       * it but the first page) through `more`, so a resume from far back never holds the
       * whole history at once: the subscriber asks for the next page only when it has written
       * the last one, and only for as many bytes as its queue has free. Pages end at the
       * position this node had delivered when the subscriber was registered: what comes after
       * reaches it live, queued behind the replay, so there is no gap and no overlap.
       * Absent: `updates` is the whole replay.
       */
      readonly more?: ((maxBytes?: number) => Promise<readonly Update[]>) | undefined;
    }
  | undefined;

export interface Backplane {
  /**
   * Starts delivery: from now on every update stored by any node is passed to `deliver`, once
   * and in order. Called once by the hub before anything else. `reset` is called when the
   * history was replaced under the running node (the Redis stream flushed or lost in a
   * failover): updates may have been missed, so the hub ends every live stream, and each client
   * resumes and is told `earliest`.
   */
  start(deliver: (update: Update) => void, reset?: () => void): void | Promise<void>;
  /**
   * Stores an update (assigning its id when the publisher gave none) and resolves with it once it
   * is durable for this backplane. Rejects with a `CrierError` (`CRIER_ERR_DUPLICATE_ID`,
   * `CRIER_ERR_UNAVAILABLE`, …) when it cannot be stored; nothing is then delivered.
   */
  publish(fields: UpdateFields): Promise<Update>;
  /** The stored updates after `lastEventId` (`earliest`: all of them), or `undefined`. */
  replay(lastEventId: string): Replay | Promise<Replay>;
  /** The newest stored id, if any. */
  lastEventId(): string | undefined | Promise<string | undefined>;
  /**
   * The newest update stored when the backplane started, if it knows it without a read
   * (optional): the id a stream opened before anything is delivered names in its
   * `Last-Event-ID` header (a history file after a restart).
   */
  newestAtStart?(): Update | undefined;
  /** How many updates the history holds (optional: metrics only). */
  size?(): number | Promise<number>;
  /**
   * A directory shared by every node of this backplane (optional: a single node has no other
   * nodes to share with). Used for what one node knows and the others must see, e.g. Mercure's
   * active subscriptions. Each node's entries vanish with it: a node that stops refreshing them
   * for `ttlMs` (crashed, partitioned) is forgotten.
   */
  directory?(name: string, ttlMs: number): SharedDirectory;
  /** Stops delivery and releases connections. */
  close(): Promise<void>;
}

/**
 * A map each node writes its own entries into, and reads everyone's from. Writes are
 * fire-and-forget: one that fails (the engine is away) is made good by the next refresh.
 */
export interface SharedDirectory {
  /** Sets this node's entry `key`. */
  set(key: string, value: string): void;
  /** Removes this node's entry `key`. */
  delete(key: string): void;
  /** Every live node's entries' values, this node's included; rejects when the engine is away. */
  values(): Promise<string[]>;
  /** Removes this node's entries and stops refreshing them. */
  close(): Promise<void>;
}
