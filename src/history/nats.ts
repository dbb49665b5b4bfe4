/**
 * The NATS JetStream history: every update is one message of one stream, shared by every node.
 *
 *   stream  {name}   subjects  {name}.{epoch}.>        max_msgs / max_age, discard old
 *     {name}.{epoch}.u            an update with a generated id  "<epoch>:<sequence>"
 *     {name}.{epoch}.p.{hash}     an update with a publisher id   (hash: sha256 of the id)
 *
 * The epoch is a random value chosen by the node that creates the stream and kept in the
 * stream's own subject filter, so it is part of the stream's identity: a deleted and recreated
 * stream has a new one, and a node that has not noticed yet publishes to a subject no stream
 * takes and is refused ("no responders") instead of handing out an id of the dead stream.
 *
 * Invariant: an id resolves to a sequence only while that sequence belongs to the current
 * stream and every message after it is still stored. JetStream sequences have no holes (the
 * hub never deletes from the middle; limits trim the oldest), so "every message after it is
 * stored" is `first_seq - 1 <= seq <= last_seq`. A publisher id is found through its own
 * subject (`last_by_subj`): the lookup is trimmed with the message it points to, so it can never
 * point into a gap. Duplicates are refused by the server, atomically across nodes: a publish
 * with a publisher id expects its subject to hold no message (`Nats-Expected-Last-Subject-
 * Sequence: 0`), and carries `Nats-Msg-Id` so a retried publish is not stored twice.
 */
import { createHash, randomBytes } from "node:crypto";
import type {
  Consumer,
  JetStreamClient,
  JetStreamManager,
  JsMsg,
  StreamInfo,
} from "@nats-io/jetstream";
import { CrierError } from "../errors.ts";
import { integerOption } from "../options.ts";
import { sealUpdate, type Update, type UpdateFields } from "../update.ts";
import { MIN_MAX_AGE_MS, NATS_DEFAULTS } from "./nats-defaults.ts";
import { encodePayload, decodePayload as fieldsOf } from "./payload.ts";
import { SentTogether } from "./sent-together.ts";

/** Where the history lives and how long it is. */
export interface NatsHistoryOptions {
  /** The stream's name (letters, digits, `-`, `_`). Default `crier`. Hubs sharing it share updates. */
  readonly stream?: string | undefined;
  /** Most updates the stream keeps (`max_msgs`). Default 10,000. */
  readonly maxLen?: number | undefined;
  /** Updates older than this many ms are trimmed (`max_age`). Default 0: no age limit. */
  readonly maxAgeMs?: number | undefined;
  /** Copies of the stream in a NATS cluster (`num_replicas`, 1 to 5). Default 1. */
  readonly replicas?: number | undefined;
}

/** What a node needs to know of the stream: its epoch and the sequences it holds. */
export interface StreamState {
  readonly epoch: string;
  /** The oldest stored sequence; `last + 1` when the stream is empty. */
  readonly first: number;
  /** The newest sequence ever stored (0 for a new stream). */
  readonly last: number;
  readonly messages: number;
  /**
   * The last sequence before the epoch's first message: 0 for a stream made with it; for an
   * epoch renewed (see `NatsHistory.renew`), the old epoch's last, whose messages are not its.
   */
  readonly epochStart: number;
}

// JetStream's API error for "the expected last subject sequence does not match".
const WRONG_LAST_SEQUENCE = 10071;
// The server's default; it may not exceed max_age.
const DUPLICATE_WINDOW_MS = 120_000;

/** The shared history, over one NATS connection. */
export class NatsHistory {
  readonly stream: string;
  readonly maxLen: number;
  readonly maxAgeMs: number;
  readonly replicas: number;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #publishes = new SentTogether();
  // This node's limits were set on the stream (or found there): at its start, once.
  #limitsSet = false;

  constructor(js: JetStreamClient, jsm: JetStreamManager, options: NatsHistoryOptions = {}) {
    ({
      stream: this.stream,
      maxLen: this.maxLen,
      maxAgeMs: this.maxAgeMs,
      replicas: this.replicas,
    } = checkNatsHistoryOptions(options));
    this.#js = js;
    this.#jsm = jsm;
  }

  /**
   * The stream's state, creating the stream when there is none. Concurrent nodes agree: the
   * first creation wins and the others adopt its epoch. At the first call only, limits that
   * differ from this node's are set to this node's (the last node started decides, as with
   * `--redis-max-len`): later calls (resumes, scrapes, the tail's restarts) change nothing.
   */
  async state(): Promise<StreamState> {
    let info = await this.#info();
    if (info === undefined) {
      const epoch = randomBytes(6).toString("hex");
      info = await this.#jsm.streams
        .add({ name: this.stream, subjects: [`${this.stream}.${epoch}.>`], ...this.#limits() })
        .catch(async (err: unknown) => {
          // Another node created it first (with another epoch): use theirs.
          const made = await this.#info();
          if (made === undefined) throw err;
          return made;
        });
    } else {
      // A stream Crier did not make is refused before anything of it is changed: setting our
      // limits on another application's stream would trim its messages.
      stateOf(info);
      if (!this.#limitsSet && this.#limitsDiffer(info)) {
        info = await this.#jsm.streams.update(this.stream, { ...info.config, ...this.#limits() });
      }
    }
    this.#limitsSet = true;
    return stateOf(info);
  }

  /**
   * Gives the stream a new epoch if it still has `epoch` (another node may have renewed it
   * first: its epoch is taken then). The stream keeps its messages, under the old epoch's
   * subjects: never delivered again, and their ids answer `earliest`. Publishes to the old
   * epoch are refused from then on ("no responders"). Resolves with the state after.
   */
  async renew(epoch: string): Promise<StreamState> {
    const info = await this.#info();
    if (info === undefined) return this.state();
    if (stateOf(info).epoch !== epoch) return stateOf(info);
    const fresh = randomBytes(6).toString("hex");
    // Where the new epoch starts, for the other nodes to read: the description says it.
    const renewed = await this.#jsm.streams.update(this.stream, {
      ...info.config,
      subjects: [`${this.stream}.${fresh}.>`],
      description: renewedDescription(fresh, info.state.last_seq),
    });
    return stateOf(renewed);
  }

  /**
   * Appends an update to the stream of `epoch`; resolves with its sequence. Rejects with
   * `CRIER_ERR_DUPLICATE_ID` for a publisher id the stream holds (or held within the duplicate
   * window), and with the client's error when the stream of `epoch` is gone.
   */
  async append(epoch: string, fields: UpdateFields, timeoutMs: number): Promise<number> {
    const id = fields.id;
    if (id?.startsWith("#")) {
      throw new CrierError(
        "CRIER_ERR_DUPLICATE_ID",
        `ids starting with "#" are the hub's own; choose another id`,
      );
    }
    const body = encodePayload(fields);
    try {
      // The publishes of one loop turn leave in one write (sent-together.ts).
      const ack = await this.#publishes.send(() =>
        id === undefined
          ? this.#js.publish(`${this.stream}.${epoch}.u`, body, { timeout: timeoutMs })
          : this.#js.publish(this.#idSubject(epoch, id), body, {
              timeout: timeoutMs,
              msgID: id,
              expect: { lastSubjectSequence: 0 },
            }),
      );
      if (ack.duplicate) throw duplicate(id);
      return ack.seq;
    } catch (err) {
      if ((err as { code?: unknown }).code === WRONG_LAST_SEQUENCE) throw duplicate(id);
      // Never storable, however often it is retried: the update as the stream holds it (JSON,
      // escapes and all) is larger than the NATS server takes in one message.
      if (/max_payload/i.test((err as Error).message ?? "")) {
        throw new CrierError(
          "CRIER_ERR_PAYLOAD_TOO_LARGE",
          `the update is ${body.length} bytes as NATS stores it, more than the server's max_payload`,
          { cause: err },
        );
      }
      // No stream takes this epoch's subjects: the client reports "no responders" as JetStream
      // not being enabled, which would send the operator looking in the wrong place.
      if ((err as Error).name === "JetStreamNotEnabled") {
        throw new StaleEpochError(
          `no stream takes the updates of epoch ${epoch}: the stream "${this.stream}" was deleted or made anew`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** The sequence of a publisher id still stored in the stream of `epoch`, if any. */
  async sequenceOf(epoch: string, id: string): Promise<number | undefined> {
    const msg = await this.#jsm.streams.getMessage(this.stream, {
      last_by_subj: this.#idSubject(epoch, id),
    });
    if (msg === null) return undefined;
    // A hash collision would need a second preimage of sha256; checked anyway.
    return decodePayload(msg.data, epoch, msg.seq)?.id === id ? msg.seq : undefined;
  }

  /**
   * The updates stored at sequences `from + 1` to `to`, in order, read by an ordered consumer;
   * `undefined` when the stream no longer holds all of them (trimmed while read).
   */
  async range(epoch: string, from: number, to: number): Promise<Update[] | undefined> {
    const updates: Update[] = [];
    if (to <= from) return updates;
    const consumer = await this.#js.consumers.get(this.stream, { opt_start_seq: from + 1 });
    try {
      return await readRange(consumer, epoch, this.stream, from, to);
    } finally {
      // An ordered consumer outlives its reader by minutes on the server unless deleted.
      void consumer.delete().catch(() => {});
    }
  }

  /** Deletes the stream (tests and operators starting over); ids it issued answer `earliest`. */
  async destroy(): Promise<void> {
    await this.#jsm.streams.delete(this.stream).catch(() => {});
  }

  #idSubject(epoch: string, id: string): string {
    // Subjects allow few characters and a bounded length: the id's digest stands for it.
    const hash = createHash("sha256").update(id).digest("base64url");
    return `${this.stream}.${epoch}.p.${hash}`;
  }

  async #info(): Promise<StreamInfo | undefined> {
    try {
      return await this.#jsm.streams.info(this.stream);
    } catch (err) {
      if ((err as Error).name === "StreamNotFoundError") return undefined;
      throw err;
    }
  }

  #limits() {
    const ms = 1_000_000; // JetStream durations are nanoseconds
    const window =
      this.maxAgeMs > 0 ? Math.min(DUPLICATE_WINDOW_MS, this.maxAgeMs) : DUPLICATE_WINDOW_MS;
    return {
      max_msgs: this.maxLen,
      max_age: this.maxAgeMs * ms,
      duplicate_window: window * ms,
      num_replicas: this.replicas,
      discard: "old" as const,
      storage: "file" as const,
    };
  }

  #limitsDiffer(info: StreamInfo): boolean {
    const want = this.#limits();
    const have = info.config;
    return (
      have.max_msgs !== want.max_msgs ||
      have.max_age !== want.max_age ||
      have.duplicate_window !== want.duplicate_window
    );
  }
}

// The description of a stream whose epoch was renewed: `crier epoch <epoch> after <sequence>`.
const renewedDescription = (epoch: string, after: number) => `crier epoch ${epoch} after ${after}`;
const RENEWED_DESCRIPTION = /^crier epoch ([0-9a-f]{12}) after (\d+)$/;

/** A publish to the subjects of a stream that is gone (deleted, or made anew with another epoch). */
export class StaleEpochError extends Error {
  override readonly name = "StaleEpochError";
}

/** The options with their defaults; throws `CRIER_ERR_INVALID_OPTION` for one out of range. */
export function checkNatsHistoryOptions(options: NatsHistoryOptions): Required<{
  [K in keyof NatsHistoryOptions]: NonNullable<NatsHistoryOptions[K]>;
}> {
  const stream = options.stream ?? NATS_DEFAULTS.stream;
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(stream)) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `nats stream must be 1 to 128 letters, digits, "-" or "_", got ${JSON.stringify(stream)}`,
    );
  }
  return {
    stream,
    maxLen: integerOption("nats maxLen", options.maxLen, NATS_DEFAULTS.maxLen, 1),
    maxAgeMs: maxAgeOf(options.maxAgeMs),
    replicas: integerOption("nats replicas", options.replicas, 1, 1, 5),
  };
}

// 0 (none), or at least MIN_MAX_AGE_MS.
function maxAgeOf(value: number | undefined): number {
  const ms = integerOption("nats maxAgeMs", value, NATS_DEFAULTS.maxAgeMs);
  if (ms > 0 && ms < MIN_MAX_AGE_MS) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `nats maxAgeMs must be 0 (none) or at least ${MIN_MAX_AGE_MS} ms (JetStream's least max_age), got ${ms}`,
    );
  }
  return ms;
}

/** The epoch and sequences of a stream made by {@link NatsHistory}. */
export function stateOf(info: StreamInfo): StreamState {
  // Exactly what `state` makes: `<stream name>.<12 hex digits>.>`, and nothing else.
  const subject = info.config.subjects?.[0] ?? "";
  const match = /^([^.]+)\.([0-9a-f]{12})\.>$/.exec(subject);
  if (match === null || match[1] !== info.config.name || info.config.subjects?.length !== 1) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `the NATS stream "${info.config.name}" was not made by Crier (subjects ${JSON.stringify(info.config.subjects)}); give Crier a stream of its own`,
    );
  }
  const { first_seq, last_seq, messages } = info.state;
  const epoch = match[2] as string;
  const renewed = RENEWED_DESCRIPTION.exec(info.config.description ?? "");
  return {
    epoch,
    first: messages === 0 ? last_seq + 1 : first_seq,
    last: last_seq,
    messages,
    // Only a description of this epoch's renewal says where it starts.
    epochStart: renewed?.[1] === epoch ? Number(renewed[2]) : 0,
  };
}

/** The update a stream message carries, with its final id; `undefined` when malformed. */
export function decodeMessage(msg: JsMsg, stream: string, epoch: string): Update | undefined {
  // A message of another epoch cannot be in this stream (its subjects carry the epoch).
  if (!msg.subject.startsWith(`${stream}.${epoch}.`)) return undefined;
  return decodePayload(msg.data, epoch, msg.seq);
}

async function readRange(
  consumer: Consumer,
  epoch: string,
  stream: string,
  from: number,
  to: number,
): Promise<Update[] | undefined> {
  const updates: Update[] = [];
  let expected = from + 1;
  while (expected <= to) {
    const batch = await consumer.fetch({
      max_messages: Math.min(to - expected + 1, 1024),
      // Only sequences the tail has delivered are asked for: they are there unless trimmed.
      expires: 5000,
    });
    let got = 0;
    for await (const msg of batch) {
      got++;
      if (msg.seq !== expected) return undefined;
      const update = decodeMessage(msg, stream, epoch);
      if (update !== undefined) updates.push(update);
      if (expected++ === to) break;
    }
    if (got === 0) return undefined;
  }
  return updates;
}

function decodePayload(data: Uint8Array, epoch: string, seq: number): Update | undefined {
  try {
    const fields = fieldsOf(
      Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8"),
    );
    return sealUpdate(fields, fields.id ?? generatedId(epoch, seq));
  } catch {
    return undefined;
  }
}

/**
 * The id the hub gives an update stored without one: a fragment (`#`), as Mercure asks of a
 * hub's own ids, naming the stream's epoch and the message's sequence.
 */
export function generatedId(epoch: string, seq: number): string {
  return `#${epoch}:${seq}`;
}

/** A generated id's parts, or `undefined` when the id is not of the form `#<epoch>:<sequence>`. */
export function parseId(id: string): { epoch: string; seq: number } | undefined {
  const match = /^#([0-9a-f]+):(\d{1,15})$/.exec(id);
  return match === null ? undefined : { epoch: match[1] as string, seq: Number(match[2]) };
}

function duplicate(id: string | undefined): CrierError {
  return new CrierError("CRIER_ERR_DUPLICATE_ID", `an update with id "${id}" exists`);
}
