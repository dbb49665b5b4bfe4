/**
 * The NATS JetStream backplane: many hub nodes, one history. A publish is acknowledged once the
 * stream stored it; every node tails the stream with an ordered consumer of its own and delivers
 * each message, in sequence order, once.
 *
 *   publish ──js.publish──▶ stream {name} ──ordered consumer from `position + 1`──▶ deliver
 *                                                         (one per node)
 *
 * Invariant: `position` is the sequence of the last message this node delivered, in the stream
 * of `epoch` (both kept by the tail, `nats-tail.ts`). After an outage the consumer is made again
 * from `position + 1` (never from "new"), so no message is skipped; a hole in the sequences
 * (trimmed before this node read them) or a new epoch (the stream was deleted and made again)
 * ends every live stream through `reset`, and each client resumes and is told `earliest`. A
 * replay is cut at `position`: what lies beyond is still on its way to the (already registered)
 * subscriber through the tail.
 *
 * Early delivery: a publish's acknowledgement carries its sequence. When that is `position + 1`,
 * the node delivers its own publish at once, without waiting for its consumer to bring it back:
 * sequences have no holes, so nothing can come between them, and every node still sees the one
 * order of the stream. The consumer then skips what lies at or before `position` without
 * decoding it, and takes the node's other publishes from `own` rather than decoding them again.
 *
 * This file is the `crier-hub/nats` entry point, so that importing `crier-hub` never loads a
 * NATS client:
 *
 *   import { createHub } from "crier-hub";
 *   import { NatsBackplane } from "crier-hub/nats";
 *   const hub = createHub({ backplane: new NatsBackplane({ url: "nats://nats:4222" }) });
 */
import { EventEmitter } from "node:events";
import type { NatsConnection, NodeConnectionOptions } from "@nats-io/transport-node";
import { CrierError } from "../errors.ts";
import {
  checkNatsHistoryOptions,
  generatedId,
  NatsHistory,
  type NatsHistoryOptions,
  parseId,
  StaleEpochError,
} from "../history/nats.ts";
import { durationOption } from "../options.ts";
import { sealUpdate, type Update, type UpdateFields } from "../update.ts";
import { waitAtMost } from "../within.ts";
import { Availability } from "./availability.ts";
import type { Backplane, Replay } from "./backplane.ts";
import { loadJetStream, loadNats, serverOptions } from "./nats-client.ts";
import { NatsTail } from "./nats-tail.ts";

export type { NatsHistoryOptions } from "../history/nats.ts";
export { loadNats } from "./nats-client.ts";

/** Options of a {@link NatsBackplane}: where NATS is, the stream and its bounds. */
export interface NatsBackplaneOptions extends NatsHistoryOptions {
  /** The NATS server, `nats://[user:password@]host[:port]` or `tls://`. Default `nats://127.0.0.1:4222`. */
  readonly url?: string | undefined;
  /** More client options (TLS, credentials, …); reconnecting forever cannot be turned off. */
  readonly nats?: Partial<NodeConnectionOptions> | undefined;
  /** Milliseconds before a request that got no answer fails as unavailable. Default 1,500. */
  readonly commandTimeoutMs?: number | undefined;
}

/** Facts about the connection to NATS; listeners are optional. */
export interface NatsBackplaneEvents {
  /** NATS stopped answering; publishes fail with `CRIER_ERR_UNAVAILABLE` until `up`. */
  down: [error: Error];
  /** NATS answers again; the tail resumed where it stopped. */
  up: [];
  /** The stream is a new one (deleted and made again): older ids answer `earliest`. */
  epoch: [epoch: string];
  /** Sequences trimmed before this node read them: live streams were ended to resume. */
  gap: [from: number, to: number];
  /**
   * The stream went back past `delivered`, the last sequence this node delivered (restored from
   * an older copy): its epoch was renewed after sequence `last`, live streams were ended to
   * resume, and ids of the old epoch answer `earliest`.
   */
  wentBack: [delivered: number, last: number];
  /** A message that is not an update (written by something else) was skipped. */
  skip: [sequence: number];
}

const MAX_BACKOFF_MS = 1000;
/** Most ids a resume may have to skip on a node whose tail is behind the client's cursor. */
const MAX_SKIP = 10_000;

export class NatsBackplane extends EventEmitter<NatsBackplaneEvents> implements Backplane {
  readonly #options: NatsBackplaneOptions;
  readonly #commandTimeout: number;
  #nc: NatsConnection | undefined;
  #history: NatsHistory | undefined;
  // A connection made and not kept yet (JetStream has not answered on it).
  #connecting: NatsConnection | undefined;
  // Delivers and knows what this node delivered (nats-tail.ts); made by `start`.
  #tail: NatsTail | undefined;
  #started: Promise<void> | undefined;
  #resolveStarted: (() => void) | undefined;
  #running: Promise<void> | undefined;
  #closed = false;
  readonly #availability = new Availability(
    { down: (err) => this.emit("down", err), up: () => this.emit("up") },
    () => this.#closed,
  );

  constructor(options: NatsBackplaneOptions = {}) {
    super();
    this.#options = options;
    this.#commandTimeout = durationOption("commandTimeoutMs", options.commandTimeoutMs, 1500, 1);
    // Loaded now, so a missing package is reported when the backplane is made, not later.
    loadNats();
    // Checks the options now (URL, stream name, limits) rather than at the first connection.
    serverOptions(options.url ?? "nats://127.0.0.1:4222");
    checkNatsHistoryOptions(options);
  }

  /** The history, once connected. */
  get history(): NatsHistory | undefined {
    return this.#history;
  }

  /** Connects and starts tailing; resolves once the tail knows where it starts. */
  start(deliver: (update: Update) => void, reset?: () => void): Promise<void> {
    if (this.#started !== undefined) return this.#started;
    this.#started = new Promise((resolve) => {
      this.#resolveStarted = resolve;
    });
    this.#tail = new NatsTail(
      {
        availability: this.#availability,
        started: () => this.#resolveStarted?.(),
        newEpoch: (epoch) => this.emit("epoch", epoch),
        gap: (from, to) => this.emit("gap", from, to),
        wentBack: (delivered, last) => this.emit("wentBack", delivered, last),
        skipped: (sequence) => this.emit("skip", sequence),
      },
      deliver,
      reset,
    );
    this.#running = this.#run(this.#tail);
    return this.#started;
  }

  async publish(fields: UpdateFields): Promise<Update> {
    if (this.#closed) throw new CrierError("CRIER_ERR_HUB_CLOSED", "the backplane is closed");
    const history = this.#history;
    const tail = this.#tail;
    const epoch = tail?.epoch;
    // Fail fast while NATS is away: the client would buffer the publish until it reconnects.
    if (
      history === undefined ||
      tail === undefined ||
      epoch === undefined ||
      this.#availability.isDown
    ) {
      throw unavailable(new Error("not connected"));
    }
    try {
      const seq = await history.append(epoch, fields, this.#commandTimeout);
      const update = sealUpdate(fields, fields.id ?? generatedId(epoch, seq));
      tail.acknowledged(epoch, seq, update);
      return update;
    } catch (err) {
      // No stream takes this epoch's subjects any more: find the new one.
      if (err instanceof StaleEpochError) void tail.checkEpoch(history).catch(() => {});
      throw unavailable(err);
    }
  }

  /**
   * How this node delivered its own publishes: `early`, at their acknowledgement; `kept`, by the
   * consumer, from the update kept in memory rather than decoded again. (The rest were decoded: the
   * consumer got them before their acknowledgement came back.)
   */
  get ownDelivered(): { readonly early: number; readonly kept: number } {
    return this.#tail?.ownDelivered ?? { early: 0, kept: 0 };
  }

  async replay(lastEventId: string): Promise<Replay> {
    // Where this node's tail stood when the subscriber was registered (the hub asks for the
    // replay in the same tick): everything after it reaches the subscriber live.
    const tail = this.#tail;
    const registeredAt = tail?.position ?? 0;
    const epoch = tail?.epoch;
    if (epoch === undefined) await waitAtMost(this.#started, this.#commandTimeout);
    const history = this.#history;
    if (tail?.epoch === undefined || history === undefined || this.#availability.isDown) {
      throw unavailable(new Error("not connected"));
    }
    try {
      const state = await history.state();
      if (state.epoch !== tail.epoch || epoch !== tail.epoch) {
        void tail.checkEpoch(history).catch(() => {});
        throw new Error("the stream was replaced; retry");
      }
      // The epoch's oldest message still stored follows this (a renewed epoch's messages start
      // after the old one's).
      const before = Math.max(state.first - 1, state.epochStart);
      let cursor: number | undefined;
      if (lastEventId === "earliest") cursor = before;
      else {
        const parsed = parseId(lastEventId);
        cursor =
          parsed === undefined
            ? await history.sequenceOf(state.epoch, lastEventId)
            : parsed.epoch === state.epoch
              ? parsed.seq
              : undefined;
      }
      // Every message after the cursor must still be stored (sequences have no holes).
      if (cursor === undefined || cursor < before || cursor > state.last) return undefined;
      if (cursor > registeredAt) {
        // The client comes from a node whose tail is ahead of ours: what lies between our tail
        // and its cursor will still arrive here live, and must not be delivered again.
        if (cursor - registeredAt > MAX_SKIP) {
          throw new Error(`this node's reader is more than ${MAX_SKIP} updates behind; retry`);
        }
        const between = await history.range(state.epoch, registeredAt, cursor);
        if (between === undefined) return undefined;
        return { updates: [], skip: new Set(between.map((u) => u.id)) };
      }
      const updates = await history.range(state.epoch, cursor, registeredAt);
      return updates === undefined ? undefined : { updates };
    } catch (err) {
      throw unavailable(err);
    }
  }

  lastEventId(): string | undefined {
    return this.#tail?.lastId ?? this.#tail?.newestAtStart?.id;
  }

  newestAtStart(): Update | undefined {
    return this.#tail?.newestAtStart;
  }

  /** How many messages the stream holds; rejects while NATS is unavailable. */
  async size(): Promise<number> {
    if (this.#history === undefined) throw unavailable(new Error("not connected"));
    return (await this.#history.state()).messages;
  }

  /** False between `down` and `up`, and before the first connection. */
  get available(): boolean {
    return this.#tail?.epoch !== undefined && !this.#availability.isDown;
  }

  /** Stops the tail and closes the connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#tail?.stop();
    this.#resolveStarted?.();
    await Promise.all([this.#nc, this.#connecting].map((nc) => nc?.close().catch(() => {})));
    // The tail loop ends once it sees the connection closed; a connect or a consumer still being
    // made when close() came must not hold the hub's shutdown for longer than a command.
    await waitAtMost(this.#running, this.#commandTimeout);
  }

  // Connect until JetStream answers (the client then reconnects by itself; a connection it gave
  // up on is made again here), and keep a tail running: made from the stream's state, ended by
  // a lost consumer or a new epoch, made again.
  async #run(tail: NatsTail): Promise<void> {
    let backoff = 0;
    while (!this.#closed) {
      try {
        if (this.#nc?.isClosed()) [this.#nc, this.#history] = [undefined, undefined];
        if (this.#nc === undefined) await this.#connect();
        const [history, nc] = [this.#history, this.#nc];
        if (history === undefined || nc === undefined) throw new Error("not connected");
        await tail.follow(history, nc);
        // The tail was ended on purpose (reconnect, new epoch, lost consumer): make it again.
        backoff = 0;
        await new Promise((resolve) => setTimeout(resolve, 10));
      } catch (err) {
        if (this.#closed) return;
        this.#availability.down(err as Error);
        backoff = Math.min(backoff + 100, MAX_BACKOFF_MS);
        await new Promise((resolve) => setTimeout(resolve, backoff));
      }
    }
  }

  async #connect(): Promise<void> {
    const { connect } = loadNats();
    const { jetstream, jetstreamManager } = loadJetStream();
    const nc = await connect({
      ...serverOptions(this.#options.url ?? "nats://127.0.0.1:4222"),
      timeout: 2000,
      // A silent (half-open) connection is dropped after two unanswered pings.
      pingInterval: 5000,
      maxPingOut: 2,
      // The client would otherwise make two Errors with stacks per request (the caller's place,
      // for a failure that rarely comes): about 2% of a node's time under a publish flood. An
      // error keeps its name, message and cause either way.
      noAsyncTraces: true,
      ...this.#options.nats,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    // Kept only once JetStream answered (otherwise the next attempt connects again), and only
    // while the backplane is open (each await may see it closed).
    this.#connecting = nc;
    try {
      if (this.#closed) throw new Error("closed");
      const jsm = await jetstreamManager(nc, { timeout: this.#commandTimeout });
      if (this.#closed) throw new Error("closed");
      const js = jetstream(nc, { timeout: this.#commandTimeout });
      [this.#nc, this.#history] = [nc, new NatsHistory(js, jsm, this.#options)];
    } catch (err) {
      await nc.close().catch(() => {});
      if (this.#closed) return;
      throw err;
    } finally {
      this.#connecting = undefined;
    }
    void this.#watch(nc);
  }

  // Connection facts: down on a disconnect, and on a reconnect the stream may be a new one.
  async #watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === "disconnect" || status.type === "staleConnection") {
        this.#availability.down(new Error(`NATS connection lost (${status.type})`));
      } else if (status.type === "reconnect") {
        // The server may have restarted and lost the tail's consumer (it lives in memory):
        // end the tail; the next one starts from the last delivered sequence, on the stream of
        // the current epoch.
        this.#tail?.restart();
      }
    }
  }
}

function unavailable(err: unknown): CrierError {
  if (err instanceof CrierError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new CrierError("CRIER_ERR_UNAVAILABLE", `NATS is unavailable (${reason}); retry later`, {
    cause: err,
  });
}
