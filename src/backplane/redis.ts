/**
 * The Redis backplane: many hub nodes, one history. A publish is acknowledged once XADD put it in
 * the shared stream; every node tails the stream on a connection of its own and delivers each
 * entry, in stream order, once.
 *
 *   publish ──crierPublish (XADD)──▶ {prefix}stream ──XREAD BLOCK from `position`──▶ deliver
 *                                                              (one tail per node)
 *
 * Invariant: `position` is the last entry this node delivered, in the stream of `epoch` (both
 * kept by the tail, `redis-tail.ts`). After a lost connection the tail resumes from it (never
 * from `$`), so no entry is skipped; when the stream turns out to be a new one (new epoch) the
 * tail restarts at its beginning. A replay is cut at `position`: what lies beyond it is still on
 * its way to the (already registered) subscriber through the tail, and the subscriber drops from
 * its queue what the replay holds.
 *
 * Early delivery: the publish script also answers the position of the entry just before the new
 * one. When that is `position` (this node has delivered everything before the new entry), the
 * node delivers its own publish at the acknowledgement, without waiting for the tail to read it
 * back: no entry can come between them, so every node still sees the one order of the stream.
 * The tail then skips what lies at or before `position` without decoding it, and takes the
 * node's other publishes from `own` rather than decoding them again.
 *
 * This file is the `crier-hub/redis` entry point, so that importing `crier-hub` never loads a Redis
 * client:
 *
 *   import { createHub } from "crier-hub";
 *   import { RedisBackplane } from "crier-hub/redis";
 *   const hub = createHub({ backplane: new RedisBackplane({ url: "redis://redis:6379" }) });
 */
import { EventEmitter } from "node:events";
import type { Redis } from "ioredis";
import { CrierError } from "../errors.ts";
import {
  decodeEntry,
  generatedId,
  isBefore,
  type Position,
  RedisHistory,
  type RedisHistoryOptions,
} from "../history/redis.ts";
import { REDIS_DEFAULTS } from "../history/redis-defaults.ts";
import { durationOption, integerOption, objectArgument, stringOption } from "../options.ts";
import { sealUpdate, type Update, type UpdateFields } from "../update.ts";
import { waitAtMost } from "../within.ts";
import { Availability } from "./availability.ts";
import type { Backplane, Replay, SharedDirectory } from "./backplane.ts";
import {
  type ConnectionOptions,
  connectRedis,
  parseRedisUrl,
  type RedisClient,
} from "./redis-connect.ts";
import { RedisDirectory } from "./redis-directory.ts";
import { ReplayReader } from "./redis-replay.ts";
import { MAX_BACKOFF_MS, RedisTail } from "./redis-tail.ts";

export type { RedisHistoryOptions } from "../history/redis.ts";
export { type ConnectionOptions, loadIoredis } from "./redis-connect.ts";

/** Options of a {@link RedisBackplane}: where Redis is, the key prefix and the stream bounds. */
export interface RedisBackplaneOptions extends RedisHistoryOptions {
  /**
   * Where Redis is. Default `redis://127.0.0.1:6379`. One server: `redis://[user:password@]host[:port][/db]`
   * (`rediss://` for TLS). Behind Sentinel: `redis+sentinel://host:26379,host2:26379/primary-name[/db]`
   * (the connection follows the primary across failovers). A Redis Cluster:
   * `redis+cluster://host:6379,host2:6379` (seed nodes; the rest are discovered).
   */
  readonly url?: string | undefined;
  /**
   * More ioredis options (TLS, username, …). The ones that make publishes fail fast instead of
   * waiting for Redis to return (no offline queue, no resend, no retries) cannot be overridden.
   */
  readonly redis?: ConnectionOptions | undefined;
  /** Milliseconds before a command that got no answer fails as unavailable. Default 1,500. */
  readonly commandTimeoutMs?: number | undefined;
  /** Milliseconds one tail read waits for new entries (`XREAD BLOCK`). Default 2,000. */
  readonly blockMs?: number | undefined;
  /** Most entries taken by one tail read. Default 512. */
  readonly readCount?: number | undefined;
  /**
   * Replicas that must hold a publish before it is acknowledged (Redis `WAIT`, given two thirds
   * of `commandTimeoutMs`); a publish that fewer replicas confirm in time fails as unavailable
   * (it may still be stored, as any publish that fails in flight). Behind Sentinel, as many as
   * there are replicas puts every acknowledged publish on the replica that gets promoted, so it
   * survives a failover (and publishes are refused while a replica is away). Default 0: an
   * update is acknowledged once the primary holds it, and a failover may lose it. Not with a
   * Cluster (`WAIT` would reach another primary than the one that holds the stream).
   */
  readonly waitReplicas?: number | undefined;
  /**
   * Milliseconds before a read of a resume (on its own connection) that got no answer fails;
   * the client's connection is then dropped and it resumes again. Default 5,000.
   */
  readonly replayTimeoutMs?: number | undefined;
  /**
   * Resume reads in flight at once; beyond it a resume waits its turn (its events come later),
   * it does not fail. Default 16.
   */
  readonly replayConcurrency?: number | undefined;
  /**
   * Most entries in one replay page: a resume reads the next page only once its subscriber has
   * written the last one. Pages are also cut at 256 KiB. Default 256.
   */
  readonly replayPageSize?: number | undefined;
}

/** Facts about the connection to Redis; listeners are optional. */
export interface RedisBackplaneEvents {
  /** Redis stopped answering; publishes fail with `CRIER_ERR_UNAVAILABLE` until `up`. */
  down: [error: Error];
  /** Redis answers again; the tail resumed where it stopped. */
  up: [];
  /** The stream is a new one (flushed, failed over, recreated): older ids answer `earliest`. */
  epoch: [epoch: string];
  /** An entry that is not an update (written by something else) was skipped. */
  skip: [position: Position];
  /**
   * After a reconnection, the last entry this node delivered is no longer in the stream (a
   * failover to a replica that had not received it): live streams were sent back to resume,
   * and resumes from ids of the lost entries answer `earliest`.
   */
  lost: [position: Position];
  /**
   * Entries after `after` (the last one this node delivered) and before `next` were trimmed
   * (`--redis-max-len`, `--redis-max-age`) before this node read them: its reader fell that far
   * behind. Live streams were sent back to resume; their ids answer `earliest`.
   */
  gap: [after: Position, next: Position];
}

/** Most ids a resume may have to skip on a node whose tail is behind the client's cursor. */
const MAX_SKIP = 10_000;
/** A replay page is cut after the entry that brings it to this many bytes. */
const REPLAY_PAGE_BYTES = 256 * 1024;
/** Decoded replay pages kept for other replays of the same range (at most 16 MiB of them). */
const CACHED_PAGES = 64;

export class RedisBackplane extends EventEmitter<RedisBackplaneEvents> implements Backplane {
  readonly history: RedisHistory;
  readonly #commands: RedisClient;
  readonly #tail: RedisClient;
  // Resumes read the history on a connection of their own, so publishes never wait behind them.
  readonly #reads: RedisClient;
  readonly #replays: ReplayReader;
  // Reads the stream and knows what this node delivered (redis-tail.ts).
  readonly #reader: RedisTail;
  readonly #commandTimeout: number;
  readonly #waitReplicas: number;
  #started: Promise<void> | undefined;
  #resolveStarted: (() => void) | undefined;
  #tailing: Promise<void> | undefined;
  #closed = false;
  readonly #availability = new Availability(
    { down: (err) => this.emit("down", err), up: () => this.emit("up") },
    () => this.#closed,
  );
  readonly #directories: RedisDirectory[] = [];

  constructor(options: RedisBackplaneOptions = {}) {
    super();
    objectArgument(options, "new RedisBackplane takes options: { url?, prefix?, maxLen?, … }");
    const target = parseRedisUrl(
      stringOption("url", options.url, true) ?? "redis://127.0.0.1:6379",
    );
    if (options.redis !== undefined) objectArgument(options.redis, "redis must be ioredis options");
    const commandTimeout = durationOption("commandTimeoutMs", options.commandTimeoutMs, 1500, 1);
    this.#commandTimeout = commandTimeout;
    const blockMs = durationOption("blockMs", options.blockMs, 2000, 1);
    const readCount = integerOption("readCount", options.readCount, 512, 1);
    this.#waitReplicas = integerOption("waitReplicas", options.waitReplicas, 0);
    if (this.#waitReplicas > 0 && target.kind === "cluster") {
      throw new CrierError(
        "CRIER_ERR_INVALID_OPTION",
        "waitReplicas cannot be used with a Redis Cluster; leave it at 0",
      );
    }
    const base: ConnectionOptions = {
      connectTimeout: 2000,
      ...options.redis,
      lazyConnect: true,
      // Fail fast while Redis is away: a queued publish would be acknowledged late or twice.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
    };
    const retryStrategy = (times: number) => Math.min(100 * times, MAX_BACKOFF_MS);
    // A silent (half-open) connection is dropped and reconnected after these timeouts.
    this.#commands = connectRedis(target, {
      base: { ...base, commandTimeout, socketTimeout: 5000 },
      retryStrategy,
    });
    this.#tail = connectRedis(target, {
      base: { ...base, socketTimeout: blockMs + 3000 },
      retryStrategy,
    });
    const replayTimeout = durationOption(
      "replayTimeoutMs",
      options.replayTimeoutMs,
      REDIS_DEFAULTS.replayTimeoutMs,
      1,
    );
    this.#reads = connectRedis(target, {
      base: { ...base, commandTimeout: replayTimeout, socketTimeout: replayTimeout + 3000 },
      retryStrategy,
    });
    for (const connection of [this.#commands, this.#tail]) {
      connection.on("error", (err: Error) => this.#availability.down(err));
    }
    // Publishes do not depend on this connection, so its failures do not make the backplane
    // `down`: they fail the resumes reading on it, which the hub reports.
    this.#reads.on("error", () => {});
    this.#commands.on("ready", () => this.#availability.up());
    this.history = new RedisHistory(this.#commands, options, this.#reads);
    this.#replays = new ReplayReader(this.history, {
      concurrency: integerOption(
        "replayConcurrency",
        options.replayConcurrency,
        REDIS_DEFAULTS.replayConcurrency,
        1,
      ),
      pageSize: integerOption(
        "replayPageSize",
        options.replayPageSize,
        REDIS_DEFAULTS.replayPageSize,
        1,
      ),
      pageBytes: REPLAY_PAGE_BYTES,
      cachedPages: CACHED_PAGES,
    });
    this.#reader = new RedisTail(
      {
        history: this.history,
        tail: this.#tail,
        commands: this.#commands,
        availability: this.#availability,
        closed: () => this.#closed,
        skipped: (position) => this.emit("skip", position),
        newEpoch: (epoch) => this.emit("epoch", epoch),
        lost: (position) => this.emit("lost", position),
        gap: (after, next) => this.emit("gap", after, next),
      },
      blockMs,
      readCount,
    );
  }

  /** Connects and starts tailing; resolves once the tail knows where it starts. */
  start(deliver: (update: Update) => void, reset?: () => void): Promise<void> {
    if (this.#started !== undefined) return this.#started;
    this.#commands.connect().catch(() => {});
    this.#tail.connect().catch(() => {});
    // The resumes' connection is made beside the others; on a Cluster it may still be loading
    // the slots when the tail has started, and a resume then would be refused (no offline
    // queue). Started waits for it too, for a command's time at most.
    const reads = this.#reads.connect().catch(() => {});
    this.#started = new Promise((resolve) => {
      this.#resolveStarted = resolve;
    });
    this.#tailing = this.#reader.run(deliver, reset, () => {
      void waitAtMost(reads, this.#commandTimeout).then(() => this.#resolveStarted?.());
    });
    return this.#started;
  }

  async publish(fields: UpdateFields): Promise<Update> {
    if (this.#closed) throw new CrierError("CRIER_ERR_HUB_CLOSED", "the backplane is closed");
    try {
      const appended = await this.history.append(fields);
      if (this.#waitReplicas > 0) await this.#replicated();
      const update = sealUpdate(
        fields,
        fields.id ?? generatedId(appended.epoch, appended.position),
      );
      this.#reader.acknowledged(appended, update);
      return update;
    } catch (err) {
      throw unavailable(err, this.#commands.status);
    }
  }

  /**
   * How this node delivered its own publishes: `early`, at their acknowledgement; `kept`, by the
   * tail, from the update kept in memory rather than decoded again. (The rest were decoded: the
   * tail got them before their acknowledgement came back.)
   */
  get ownDelivered(): { readonly early: number; readonly kept: number } {
    return this.#reader.ownDelivered;
  }

  async replay(lastEventId: string): Promise<Replay> {
    // Where this node's tail stood when the subscriber was registered (the hub asks for the
    // replay in the same tick): everything after it reaches the subscriber live.
    const reader = this.#reader;
    let registeredAt = reader.position;
    const epochAtStart = reader.epoch;
    if (epochAtStart === undefined) {
      await waitAtMost(this.#started, this.#commandTimeout);
      // Registered before the tail started: it delivers what comes after where it starts.
      registeredAt = reader.position;
    }
    const epoch = reader.epoch;
    if (epoch === undefined) throw unavailable(new Error("not connected yet"));
    try {
      const cursor = await this.#replays.read(() => this.history.locate(lastEventId));
      if (cursor === undefined) return undefined;
      if (epochAtStart !== undefined && isBefore(registeredAt, cursor)) {
        // The client comes from a node whose tail is ahead of ours: what lies between our tail
        // and its cursor will still arrive here live, and must not be delivered again.
        return { updates: [], skip: await this.#idsBetween(registeredAt, cursor) };
      }
      // Only what the tail had delivered here, page by page as the subscriber writes them
      // (the first one too, so that it is sized to the subscriber's free bytes); the rest
      // reaches the subscriber live, queued behind the replay.
      if (!isBefore(cursor, registeredAt)) return { updates: [] };
      return { updates: [], more: this.#replays.pages(epoch, cursor, registeredAt) };
    } catch (err) {
      throw unavailable(err, this.#reads.status);
    }
  }

  // The ids of the entries in (after, upTo]; refused past MAX_SKIP (a tail that far behind
  // serves no resume until it catches up: the client retries).
  async #idsBetween(after: Position, upTo: Position): Promise<Set<string>> {
    const raw = await this.#replays.read(() => this.history.range(after, upTo, MAX_SKIP + 1));
    if (raw.length > MAX_SKIP) {
      throw new Error(`this node's reader is more than ${MAX_SKIP} updates behind; retry`);
    }
    const ids = new Set<string>();
    for (const item of raw) {
      const entry = decodeEntry(item);
      if (entry !== undefined && entry.epoch === this.#reader.epoch) ids.add(entry.update.id);
    }
    return ids;
  }

  // Waits until enough replicas hold every write this connection made (WAIT cannot run in a
  // script, and covers the append just made as well as those of concurrent publishes).
  async #replicated(): Promise<void> {
    const timeout = Math.max(1, Math.floor((this.#commandTimeout * 2) / 3));
    const acked = await (this.#commands as Redis).wait(this.#waitReplicas, timeout);
    if (acked < this.#waitReplicas) {
      throw new Error(`${acked} of ${this.#waitReplicas} replicas confirmed the write in time`);
    }
  }

  lastEventId(): string | undefined {
    return this.#reader.lastId ?? this.#reader.newestAtStart?.id;
  }

  newestAtStart(): Update | undefined {
    return this.#reader.newestAtStart;
  }

  /** How many entries the stream holds; rejects while Redis is unavailable. */
  size(): Promise<number> {
    return this.history.size();
  }

  /** False between `down` and `up`, and before the first connection. */
  get available(): boolean {
    return (
      this.#started !== undefined && !this.#availability.isDown && this.#commands.status === "ready"
    );
  }

  /** A directory shared by every node on this prefix, on the command connection. */
  directory(name: string, ttlMs: number): SharedDirectory {
    const directory = new RedisDirectory(this.#commands, this.history.prefix, name, ttlMs);
    this.#directories.push(directory);
    return directory;
  }

  /** Stops the tail and closes the connections. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // This node's entries leave before its connection does.
    await Promise.all(this.#directories.map((directory) => directory.close()));
    this.#reader.stop();
    this.#resolveStarted?.();
    this.#tail.disconnect();
    this.#reads.disconnect();
    await this.#tailing;
    await this.#commands.quit().catch(() => this.#commands.disconnect());
  }
}

function unavailable(err: unknown, status = "ready"): CrierError {
  if (err instanceof CrierError) return err;
  const reason =
    status !== "ready"
      ? `not connected: ${status}`
      : err instanceof Error
        ? err.message
        : String(err);
  return new CrierError("CRIER_ERR_UNAVAILABLE", `Redis is unavailable (${reason}); retry later`, {
    cause: err,
  });
}
