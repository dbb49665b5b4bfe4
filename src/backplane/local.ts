/**
 * The single-process backplane: an in-memory history, and delivery in the same tick as the
 * publish. Replay is synchronous, so a subscriber registered and replayed in one tick can neither
 * miss nor repeat an update.
 */
import { MemoryHistory, type MemoryHistoryOptions } from "../history/memory.ts";
import type { Update, UpdateFields } from "../update.ts";
import type { Backplane, Replay } from "./backplane.ts";

export class LocalBackplane implements Backplane {
  readonly history: MemoryHistory;
  #deliver: ((update: Update) => void) | undefined;

  constructor(options: MemoryHistoryOptions = {}) {
    this.history = new MemoryHistory(options);
  }

  start(deliver: (update: Update) => void): void {
    this.#deliver = deliver;
  }

  publish(fields: UpdateFields): Promise<Update> {
    try {
      const update = this.history.append(fields);
      this.#deliver?.(update);
      return Promise.resolve(update);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  replay(lastEventId: string): Replay {
    const updates = this.history.after(lastEventId);
    return updates === undefined ? undefined : { updates };
  }

  lastEventId(): string | undefined {
    return this.history.lastEventId;
  }

  size(): number {
    return this.history.size;
  }

  async close(): Promise<void> {
    this.#deliver = undefined;
  }
}
