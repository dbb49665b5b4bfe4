/**
 * Whether an engine answers, as a backplane tells its listeners: `down` once on the way down
 * (the first failure to connect included), `up` once on the way back, nothing in between and
 * nothing after the backplane is closed.
 *
 *   answers ──failure──▶ down (said once) ──an answer──▶ up (said once) ──▶ …
 *
 * Invariant: the `down` and `up` said alternate, starting with `down`.
 */
export class Availability {
  readonly #say: { down(err: Error): void; up(): void };
  readonly #closed: () => boolean;
  #down = false;

  /** `say` tells the listeners; `closed` says when to stay silent (the backplane is closing). */
  constructor(say: { down(err: Error): void; up(): void }, closed: () => boolean) {
    this.#say = say;
    this.#closed = closed;
  }

  /** Between a failure and the next answer. */
  get isDown(): boolean {
    return this.#down;
  }

  /** The engine failed to answer (`err` says how); said unless it is down already. */
  down(err: Error): void {
    if (this.#down || this.#closed()) return;
    this.#down = true;
    this.#say.down(err);
  }

  /** The engine answered; said when it was down. */
  up(): void {
    if (!this.#down) return;
    this.#down = false;
    this.#say.up();
  }
}
