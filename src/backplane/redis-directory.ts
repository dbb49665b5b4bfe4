/**
 * A {@link SharedDirectory} in Redis: each node keeps its entries in a hash of its own, and
 * announces itself in a sorted set scored by the time its entries stop counting.
 *
 *   {prefix}dir:{name}:nodes         zset  node id → expiry (ms since the epoch)
 *   {prefix}dir:{name}:node:{node}   hash  key → value      (PEXPIREd with the same bound)
 *
 * (`{prefix}` is the prefix as a hash tag, history/redis-keys.ts: the MULTI below and the
 * pipeline that reads the hashes stay in one Cluster slot.)
 *
 * Invariant: a node's entries are read only while its expiry lies in the future, and each node
 * pushes its expiry forward every third of the bound. A node that stops (crash, partition, lost
 * Redis) is forgotten within the bound; its hash expires by itself. A write that failed (Redis
 * away) or a hash that vanished (Redis flushed or failed over) is rewritten whole at the next
 * refresh, so the directory converges on what the node holds.
 */
import { randomUUID } from "node:crypto";
import type { Cluster, Redis } from "ioredis";
import { keyBase } from "../history/redis-keys.ts";
import type { SharedDirectory } from "./backplane.ts";

/** Most hashes read in one pipeline when listing. */
const READ_BATCH = 64;

export class RedisDirectory implements SharedDirectory {
  readonly #redis: Redis | Cluster;
  readonly #ttlMs: number;
  readonly #nodes: string;
  readonly #hashOf: (node: string) => string;
  readonly #node = randomUUID();
  readonly #entries = new Map<string, string>();
  readonly #timer: NodeJS.Timeout;
  // A write failed or the hash vanished: the next refresh writes every entry again.
  #stale = false;
  #closed = false;

  constructor(redis: Redis | Cluster, prefix: string, name: string, ttlMs: number) {
    this.#redis = redis;
    this.#ttlMs = ttlMs;
    const base = keyBase(prefix);
    this.#nodes = `${base}dir:${name}:nodes`;
    this.#hashOf = (node) => `${base}dir:${name}:node:${node}`;
    this.#timer = setInterval(() => void this.#refresh(), Math.max(100, Math.floor(ttlMs / 3)));
    this.#timer.unref();
    // At once when the connection is (again) ready: a node appears as soon as it can, and one
    // whose writes failed while Redis was away converges as soon as Redis is back.
    redis.on("ready", this.#onReady);
    if (redis.status === "ready") void this.#refresh();
  }

  readonly #onReady = () => void this.#refresh();

  set(key: string, value: string): void {
    this.#entries.set(key, value);
    this.#write(this.#redis.hset(this.#hashOf(this.#node), key, value));
  }

  delete(key: string): void {
    if (!this.#entries.delete(key)) return;
    this.#write(this.#redis.hdel(this.#hashOf(this.#node), key));
  }

  async values(): Promise<string[]> {
    const now = Date.now();
    const nodes = await this.#redis.zrangebyscore(this.#nodes, now, "+inf");
    const values: string[] = [];
    for (let i = 0; i < nodes.length; i += READ_BATCH) {
      const pipeline = this.#redis.pipeline();
      for (const node of nodes.slice(i, i + READ_BATCH)) {
        // This node's own entries are known here, whatever Redis holds of them right now.
        if (node !== this.#node) pipeline.hvals(this.#hashOf(node));
      }
      for (const [err, reply] of (await pipeline.exec()) ?? []) {
        if (err) throw err;
        values.push(...(reply as string[]));
      }
    }
    values.push(...this.#entries.values());
    return values;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#redis.off("ready", this.#onReady);
    this.#entries.clear();
    await this.#redis
      .multi()
      .zrem(this.#nodes, this.#node)
      .del(this.#hashOf(this.#node))
      .exec()
      .catch(() => {});
  }

  #write(reply: Promise<unknown>): void {
    reply.catch(() => {
      this.#stale = true;
    });
  }

  async #refresh(): Promise<void> {
    if (this.#closed) return;
    const hash = this.#hashOf(this.#node);
    const expiry = Date.now() + this.#ttlMs;
    try {
      const multi = this.#redis.multi();
      if (this.#stale) {
        this.#stale = false;
        multi.del(hash);
        if (this.#entries.size > 0) multi.hset(hash, this.#entries);
      }
      // Forgotten nodes leave; this one stays until `expiry`.
      multi.zremrangebyscore(this.#nodes, "-inf", `(${Date.now()}`);
      multi.zadd(this.#nodes, expiry, this.#node);
      multi.pexpire(hash, this.#ttlMs);
      multi.pexpire(this.#nodes, this.#ttlMs * 2);
      const replies = (await multi.exec()) ?? [];
      const expired = replies.at(-2);
      // PEXPIRE answers 0 when the hash is gone (Redis flushed, failed over): write it again.
      if (expired !== undefined && expired[1] === 0 && this.#entries.size > 0) this.#stale = true;
      if (replies.some(([err]) => err)) this.#stale = true;
    } catch {
      this.#stale = true;
    }
  }
}
