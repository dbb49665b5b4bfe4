/**
 * The resume path: how a registered subscriber's stream starts.
 *
 *   no lastEventId ──▶ head says the newest id it may see ──────────────▶ open (live only)
 *   lastEventId    ──▶ backplane.replay(id) ──▶ held:   head says `id`   ──▶ open (replay, pages)
 *                                           └─▶ gone:   head says `earliest` ▶ open (live only)
 *
 * Invariant: it runs only once the subscriber is registered, so the replay and the live stream
 * meet with no gap and no duplicate (the subscriber drops from its queue what the replay holds),
 * and every path ends with the stream open or the subscriber closed and the failure reported:
 * none is left half-open.
 */
import type { Backplane } from "./backplane/backplane.ts";
import { streamHead } from "./head.ts";
import type { Subscriber } from "./subscriber.ts";
import type { SubscribeOptions } from "./subscription.ts";
import type { Update } from "./update.ts";

export class StreamStart {
  readonly #backplane: Backplane;
  readonly #resumes: { total: number; earliest: number };
  readonly #report: (err: unknown) => void;
  // The newest update delivered, and the newest public one: what a fresh subscriber is told.
  #newest: Update | undefined;
  #newestPublic: string | undefined;

  /** `resumes` is counted into (see `HubStats.resumes`); `report` hears every failure. */
  constructor(
    backplane: Backplane,
    resumes: { total: number; earliest: number },
    report: (err: unknown) => void,
  ) {
    this.#backplane = backplane;
    this.#resumes = resumes;
    this.#report = report;
  }

  /** The newest update stored before this process delivered any (the backplane's, at start). */
  seed(update: Update | undefined): void {
    if (update !== undefined && this.#newest === undefined) this.delivered(update);
  }

  /** Remembers the newest update delivered (called once per update). */
  delivered(update: Update): void {
    this.#newest = update;
    if (!update.private) this.#newestPublic = update.id;
  }

  /** Opens `subscriber`'s stream, replaying from `options.lastEventId` when given. */
  open(subscriber: Subscriber, options: SubscribeOptions): void {
    const lastEventId = options.lastEventId;
    const fail = (err: unknown) => this.#fail(subscriber, err);
    if (lastEventId === undefined) {
      // [spec] The hub MUST NOT disclose, via this header, the identifier of any event the
      // subscriber is not authorized to receive. So: the newest id it may see, else none.
      const newest = this.#newest;
      const last =
        newest === undefined || subscriber.isDenied(newest) ? this.#newestPublic : newest.id;
      settle(
        () => last,
        () => subscriber.open(streamHead(options.headers, last), []),
        fail,
      );
      return;
    }
    this.#resumes.total++;
    settle(
      () => this.#backplane.replay(lastEventId),
      (replay) => {
        if (replay === undefined) this.#resumes.earliest++;
        const resumed = replay === undefined ? "earliest" : lastEventId;
        // Replayed updates are filtered against the current token, like live ones.
        const updates = replay?.updates.filter((update) => subscriber.wants(update)) ?? [];
        const more = replay?.more;
        // A later page that cannot be read ends the stream (the client resumes again); the
        // failure is reported like that of a first page.
        const pages =
          more &&
          (async (maxBytes?: number) => {
            try {
              return await more(maxBytes);
            } catch (err) {
              this.#report(err);
              throw err;
            }
          });
        subscriber.open(streamHead(options.headers, resumed), updates, replay?.skip, pages);
      },
      fail,
    );
  }

  // The history could not be read (the backplane is unavailable). The connection is dropped
  // rather than answered with an error status: a browser's EventSource gives up for good on a
  // non-200 answer, but retries after a network error, which is what the client needs here.
  #fail(subscriber: Subscriber, err: unknown): void {
    subscriber.close("closed");
    this.#report(err);
  }
}

// Runs `then` synchronously when `produce` gives no promise, so the in-memory backplane replays
// in the same tick as the registration. A throw in `produce` (a backplane that throws instead of
// rejecting: a damaged history file) or in `then` goes to `fail` too, so no path leaves a
// registered subscriber half-open.
function settle<T>(
  produce: () => T | Promise<T>,
  then: (value: T) => void,
  fail: (err: unknown) => void,
) {
  try {
    const value = produce();
    if (value instanceof Promise) value.then(then).catch(fail);
    else then(value);
  } catch (err) {
    fail(err);
  }
}
