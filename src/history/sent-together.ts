/**
 * Requests to an engine, sent together: the ones handed in during one phase of the event loop
 * (the I/O callbacks of one poll, typically several publishes read from several publishers) are
 * made at its end, one after another in the order they came, in one synchronous run. A client
 * that writes what it is given in one run as one chunk (the NATS client flushes on a microtask)
 * then makes one write to the engine's socket for all of them instead of one each.
 *
 *   publish ─┐
 *   publish ─┼─▶ [queued] ──setImmediate──▶ send, send, send ──microtask──▶ one socket write
 *   publish ─┘
 *
 * Why: each write to the engine's socket is a system call that also wakes the engine's thread;
 * under a publish flood a node on NATS spent about 15% of its time in them, one per publish
 * (BENCHMARKS.md, "NATS: one write per loop turn"). The cost is the rest of the current loop
 * turn before a request leaves; requests keep their order.
 */
export class SentTogether {
  #queued: Array<() => void> = [];

  /** `request()`, made at the end of this phase of the event loop with the others handed in. */
  send<T>(request: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queued.push(() => {
        try {
          request().then(resolve, reject);
        } catch (err) {
          reject(err);
        }
      });
      if (this.#queued.length === 1) setImmediate(this.#sendQueued);
    });
  }

  readonly #sendQueued = (): void => {
    const queued = this.#queued;
    this.#queued = [];
    for (const send of queued) send();
  };
}
