/**
 * A backplane stores updates and brings every stored update to every hub that shares it, in one
 * order. The hub asks it for two things: append (publish) and read back (replay); it hears about
 * new updates only through `deliver`, so a single node and a cluster look the same to the hub.
 */
import type { Update, UpdateFields } from "../update.ts";

/** The updates after a given id, oldest first; `undefined` when the id is unknown or evicted. */
export type Replay = readonly Update[] | undefined;

export interface Backplane {
  /**
   * Starts delivery: from now on every update stored by any node is passed to `deliver`, once
   * and in order. Called once by the hub before anything else.
   */
  start(deliver: (update: Update) => void): void | Promise<void>;
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
  /** Stops delivery and releases connections. */
  close(): Promise<void>;
}
