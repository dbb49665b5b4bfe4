/**
 * The tail of the NATS backplane: one node's reader of the shared stream (an ordered consumer),
 * and the one place that knows what this node has delivered.
 *
 *   ordered consumer from `position + 1` ──▶ next sequence? ──▶ own update, or decode ──▶ deliver
 *   own publish acknowledged ──▶ `position + 1`? ──yes──▶ deliver now (early)
 *                                               └─no──▶ kept for the consumer
 *
 * Invariant: `position` is the sequence of the last message this node delivered, in the stream
 * of `epoch`; every message is delivered at most once and in sequence order, whether the
 * consumer or an acknowledgement brings it. A consumer is made from `position + 1` (never from
 * "new"), so an outage skips nothing; a hole in the sequences (trimmed before this node read
 * them) or a new epoch (the stream deleted and made again) ends every live stream through
 * `reset`, so that their clients resume and are told `earliest`.
 */
import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeMessage, type NatsHistory, type StreamState } from "../history/nats.ts";
import type { Update } from "../update.ts";
import type { Availability } from "./availability.ts";
import { loadJetStream } from "./nats-client.ts";
import { OwnUpdates } from "./own-updates.ts";

/** What the tail tells the backplane, which owns the connection and the events. */
export interface NatsTailHost {
  readonly availability: Availability;
  /** The first consumer is reading: the backplane has started. */
  started(): void;
  /** The stream is a new one. */
  newEpoch(epoch: string): void;
  /** Sequences `from`..`to` were trimmed before this node read them. */
  gap(from: number, to: number): void;
  /** The message at `sequence` is not an update: skipped. */
  skipped(sequence: number): void;
  /**
   * The stream went back past `delivered` (the last sequence delivered here) to an older copy;
   * its epoch was renewed, from after sequence `last`.
   */
  wentBack(delivered: number, last: number): void;
}

export class NatsTail {
  readonly #host: NatsTailHost;
  readonly #deliver: (update: Update) => void;
  readonly #reset: (() => void) | undefined;
  #stream = "";
  #messages: ConsumerMessages | undefined;
  #epoch: string | undefined;
  #position = 0;
  #lastId: string | undefined;
  // The stream's newest update when the tail started, until it starts over (a new epoch).
  #newestAtStart: Update | undefined;
  // This node's publishes the consumer has not reached yet (and that were not delivered early).
  readonly #own = new OwnUpdates<number, Update>(
    (a, b) => a < b,
    (u) => u.bytes.length,
  );
  #deliveredEarly = 0;
  #deliveredKept = 0;
  #stopped = false;

  constructor(host: NatsTailHost, deliver: (update: Update) => void, reset?: () => void) {
    this.#host = host;
    this.#deliver = deliver;
    this.#reset = reset;
  }

  /** The epoch of the stream being delivered; undefined until the first consumer is made. */
  get epoch(): string | undefined {
    return this.#epoch;
  }

  /** The sequence of the last message delivered here. */
  get position(): number {
    return this.#position;
  }

  /** The id of the last update delivered here, if any since the start or the last new epoch. */
  get lastId(): string | undefined {
    return this.#lastId;
  }

  /**
   * The newest update stored when the tail started (see `Backplane.newestAtStart`); `undefined`
   * once the stream has started over.
   */
  get newestAtStart(): Update | undefined {
    return this.#newestAtStart;
  }

  /** How this node's own publishes were delivered (see `NatsBackplane.ownDelivered`). */
  get ownDelivered(): { readonly early: number; readonly kept: number } {
    return { early: this.#deliveredEarly, kept: this.#deliveredKept };
  }

  /**
   * An own publish, acknowledged (a deduplicated one is refused before it gets here): delivered
   * now when it is the very next sequence after the last one delivered here (sequences have no
   * holes, so nothing can come between them: the order every node sees is unchanged); otherwise
   * kept for the consumer, which delivers it in its turn without decoding it again.
   */
  acknowledged(epoch: string, seq: number, update: Update): void {
    // (A sequence at or before `position`: the consumer delivered it first.)
    if (this.#stopped || epoch !== this.#epoch) return;
    if (seq === this.#position + 1) {
      this.#deliveredEarly++;
      this.#position = seq;
      this.#lastId = update.id;
      this.#deliver(update);
    } else if (seq > this.#position) {
      this.#own.add(seq, update);
    }
  }

  /**
   * One consumer: from the stream's state (a new epoch resets), made from `position + 1`, read
   * until it ends (a lost consumer, a new stream, `restart`, `stop`).
   */
  async follow(history: NatsHistory, nc: NatsConnection): Promise<void> {
    let state = await history.state();
    if (this.#epoch === undefined) {
      this.#newestAtStart = await newestOf(history, state);
      this.#epoch = state.epoch;
      this.#position = state.last;
    } else if (state.epoch !== this.#epoch) {
      this.#newEpoch(state.epoch, state.epochStart);
    } else if (state.last < this.#position) {
      // The stream of this epoch went back (restored from an older copy, or the server
      // restarted on one): its sequences, and so its ids, are being given again to other
      // updates. The epoch is renewed (the messages of the old one are never delivered, its ids
      // answer `earliest`) and the live streams sent back to resume.
      const lost = this.#position;
      state = await history.renew(this.#epoch);
      if (state.epoch !== this.#epoch) {
        this.#host.wentBack(lost, state.epochStart);
        this.#newEpoch(state.epoch, state.epochStart);
      }
    }
    this.#stream = history.stream;
    const { jetstream } = loadJetStream();
    const consumer = await jetstream(nc).consumers.get(history.stream, {
      opt_start_seq: this.#position + 1,
    });
    const messages = await consumer.consume({
      callback: (msg) => this.#take(msg),
      // Idle heartbeats every 5 s: a consumer lost under a live connection is noticed in ~10 s.
      expires: 10_000,
    });
    this.#messages = messages;
    if (this.#stopped) messages.stop();
    this.#host.availability.up();
    this.#host.started();
    void (async () => {
      for await (const status of messages.status()) {
        // The stream or its consumer vanished: end this consumer; the next one checks the epoch.
        if (
          status.type === "stream_not_found" ||
          status.type === "consumer_deleted" ||
          status.type === "heartbeats_missed"
        ) {
          messages.stop();
        } else if (status.type === "ordered_consumer_recreated") {
          void this.checkEpoch(history).catch(() => {});
        }
      }
    })();
    await messages.closed();
  }

  /** Ends the consumer under way; the backplane makes the next one (after a reconnection). */
  restart(): void {
    this.#messages?.stop();
  }

  /** Stops delivering for good (the backplane is closing). */
  stop(): void {
    this.#stopped = true;
    this.#messages?.stop();
  }

  /** Switches to the stream's current epoch if it changed, and ends the consumer then. */
  async checkEpoch(history: NatsHistory): Promise<void> {
    if (this.#epoch === undefined) return;
    const state = await history.state();
    if (this.#stopped) return;
    if (state.epoch !== this.#epoch) {
      this.#newEpoch(state.epoch, state.epochStart);
      this.#messages?.stop(); // the next consumer starts from the new stream's start
    }
  }

  #take(msg: JsMsg): void {
    const epoch = this.#epoch;
    if (this.#stopped || epoch === undefined || msg.seq <= this.#position) return;
    if (!msg.subject.startsWith(`${this.#stream}.${epoch}.`)) {
      // A message of a new stream reached a consumer made for the old one.
      this.#messages?.stop();
      return;
    }
    if (msg.seq !== this.#position + 1) {
      // Trimmed before this node read them: its live subscribers missed those updates.
      this.#host.gap(this.#position + 1, msg.seq - 1);
      this.#reset?.();
    }
    this.#position = msg.seq;
    const own = this.#own.take(msg.seq);
    if (own !== undefined) this.#deliveredKept++;
    const update = own ?? decodeMessage(msg, this.#stream, epoch);
    if (update === undefined) {
      this.#host.skipped(msg.seq);
      return;
    }
    this.#lastId = update.id;
    this.#deliver(update);
  }

  // `position`: where the new epoch's messages start after (0 for a new stream; the old epoch's
  // last sequence for a renewed one, whose earlier messages are the old epoch's).
  #newEpoch(epoch: string, position = 0): void {
    this.#epoch = epoch;
    this.#position = position;
    this.#lastId = undefined;
    this.#newestAtStart = undefined;
    this.#own.clear();
    this.#host.newEpoch(epoch);
    // The stream this node was delivering is gone: its live subscribers may have missed
    // updates, and are told so by being sent back to resume.
    this.#reset?.();
  }
}

// The update at the stream's last sequence, if it is one of this epoch's and still stored. Only
// a hint (the id a fresh stream names): a failed read gives none rather than holding up the start.
async function newestOf(history: NatsHistory, state: StreamState): Promise<Update | undefined> {
  if (state.last <= state.epochStart || state.last < state.first) return undefined;
  try {
    return (await history.range(state.epoch, state.last - 1, state.last))?.[0];
  } catch {
    return undefined;
  }
}
