/**
 * The Redis history: every update is one entry of a Redis Stream, shared by every hub node.
 *
 *   {prefix}stream  XADD … MAXLEN ~ maxLen   entries { e: epoch, p: previous, u: update as JSON }
 *   {prefix}epoch   a random value, SET once  ids are "#<epoch>:<stream position>"
 *   {prefix}ids     hash  publisher id → stream position   (only publisher-supplied ids)
 *   {prefix}ids-age zset  publisher id, scored by the position's milliseconds (for trimming)
 *
 * (`{prefix}` is the prefix as a hash tag, see redis-keys.ts: one Cluster slot for them all.)
 *
 * Invariant: an id resolves to a position only while every entry after that position is still in
 * the stream and belongs to the stream the id was issued by. A stream lost to FLUSHALL or a
 * failover gets a new epoch, so the old ids (and positions trimmed away) answer "unknown", and
 * the subscriber is told `earliest` rather than given a silent partial window. Appends and reads
 * run as Lua scripts, so a check and the read it guards see one state of the stream.
 */
import { randomBytes } from "node:crypto";
import type { Cluster, Redis } from "ioredis";
import { CrierError } from "../errors.ts";
import { integerOption, stringOption } from "../options.ts";
import { sealUpdate, type Update, type UpdateFields } from "../update.ts";
import { decodePayload, encodePayload } from "./payload.ts";
import { REDIS_DEFAULTS } from "./redis-defaults.ts";
import { keyBase } from "./redis-keys.ts";

/** A stream position, `<ms>-<seq>`, as Redis writes it. */
export type Position = string;

/** One entry read from the stream, decoded. */
export interface Entry {
  readonly position: Position;
  readonly epoch: string;
  readonly update: Update;
}

/** Where an update was appended: its stream's epoch, its position, the position before it. */
export interface Appended {
  readonly epoch: string;
  readonly position: Position;
  readonly previous: Position | "";
}

/** The raw form of a stream entry: `[position, [field, value, …]]`. */
export type RawEntry = [string, string[]];

// Lua: shared helpers. Positions are compared as (ms, seq) pairs of numbers (exact below 2^53).
const LUA_POSITION = `
local function parse(p)
  local ms, seq = string.match(p, '^(%d+)%-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function before(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local function first(stream)
  local e = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
  return e and e[1]
end
`;

// KEYS stream epoch ids ids-age; ARGV candidate-epoch payload publisher-id max-len max-age-ms
// Returns { epoch, position, previous }, or the error CRIER_DUPLICATE or CRIER_RESERVED.
// `previous` is the position of the entry just before the new one ('0-0' when the stream did not
// exist, '' when it was empty: entries may have been there and been trimmed).
const PUBLISH = `${LUA_POSITION}
-- Redis 6.2 replicates scripts verbatim unless told otherwise, and TIME below would be refused.
redis.replicate_commands()
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  redis.call('SET', KEYS[2], ARGV[1])
  epoch = ARGV[1]
end
local pid = ARGV[3]
if pid ~= '' then
  if string.sub(pid, 1, 1) == '#' then
    return redis.error_reply('CRIER_RESERVED id of the hub form')
  end
  local held = redis.call('HGET', KEYS[3], pid)
  local kept = first(KEYS[1])
  if held and kept and not before(held, kept) then
    return redis.error_reply('CRIER_DUPLICATE id held')
  end
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
local previous = ''
if last then previous = last[1] elseif redis.call('EXISTS', KEYS[1]) == 0 then previous = '0-0' end
local pos = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'e', epoch, 'p', previous, 'u', ARGV[2])
if tonumber(ARGV[5]) > 0 then
  local t = redis.call('TIME')
  local min = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[5])
  redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%d', min))
end
if pid ~= '' then
  redis.call('HSET', KEYS[3], pid, pos)
  redis.call('ZADD', KEYS[4], string.match(pos, '^(%d+)'), pid)
end
-- Forget publisher ids whose entries were trimmed, a bounded batch per publish.
local oldest = first(KEYS[1])
if oldest and redis.call('ZCARD', KEYS[4]) > 0 then
  local ms = string.match(oldest, '^(%d+)')
  local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. ms, 'LIMIT', 0, 128)
  if #stale > 0 then
    redis.call('HDEL', KEYS[3], unpack(stale))
    redis.call('ZREM', KEYS[4], unpack(stale))
  end
end
return { epoch, pos, previous }
`;

// KEYS stream epoch ids; ARGV last-event-id parsed-epoch parsed-position
// Returns the position of the id ('0-0' for earliest), or false when the id is unknown, trimmed
// or of another epoch.
const LOCATE = `${LUA_POSITION}
if ARGV[1] == 'earliest' then return '0-0' end
local pos = redis.call('HGET', KEYS[3], ARGV[1])
if not pos then
  if ARGV[3] == '' or redis.call('GET', KEYS[2]) ~= ARGV[2] then return false end
  pos = ARGV[3]
end
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local oldest = first(KEYS[1])
if not oldest then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' and info[i + 1] == pos then return pos end
  end
  return false
end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1][1]
if before(pos, oldest) or before(newest, pos) then return false end
-- A position this stream never held (an entry lost in a failover) is unknown too.
if #redis.call('XRANGE', KEYS[1], pos, pos) == 0 then return false end
return pos
`;

// KEYS stream epoch; ARGV after epoch count max-bytes
// Returns the entries after "after" (at most count, cut after the entry that reaches max-bytes),
// or false when the stream is no longer the epoch's or the entry at "after" was trimmed away
// (entries after it may be gone too: the replay cannot go on without a gap).
const PAGE = `${LUA_POSITION}
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return false end
if ARGV[1] ~= '0-0' then
  local oldest = first(KEYS[1])
  if not oldest or before(ARGV[1], oldest) then return false end
end
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[3])
local limit, bytes = tonumber(ARGV[4]), 0
for i = 1, #entries do
  local fields = entries[i][2]
  for j = 2, #fields, 2 do bytes = bytes + #fields[j] end
  if bytes >= limit and i < #entries then
    local cut = {}
    for k = 1, i do cut[k] = entries[k] end
    return cut
  end
end
return entries
`;

interface Scripts {
  crierPublish(...args: string[]): Promise<[string, string, string]>;
  crierLocate(...args: string[]): Promise<Position | null>;
  crierPage(...args: string[]): Promise<RawEntry[] | null>;
}

/** Where a history lives and how long it is. */
export interface RedisHistoryOptions {
  /** Prefix of every key. Default `crier:`. Hubs sharing a prefix share updates. */
  readonly prefix?: string | undefined;
  /** About how many updates the stream keeps (`MAXLEN ~`). Default 10,000. */
  readonly maxLen?: number | undefined;
  /** Updates older than this many ms are trimmed (`MINID ~`). Default 0: no age limit. */
  readonly maxAgeMs?: number | undefined;
}

/**
 * The shared history, over one command connection (never a blocking one) for appends, and
 * another (the same one unless given) for the reads of resumes, so that a resume storm does not
 * queue up in front of publishes.
 */
export class RedisHistory {
  readonly prefix: string;
  readonly maxLen: number;
  readonly maxAgeMs: number;
  readonly keys: { readonly stream: string; readonly epoch: string; readonly ids: string };
  readonly #idsAge: string;
  readonly #redis: (Redis | Cluster) & Scripts;
  readonly #reads: (Redis | Cluster) & Scripts;

  constructor(
    redis: Redis | Cluster,
    options: RedisHistoryOptions = {},
    reads: Redis | Cluster = redis,
  ) {
    this.prefix = stringOption("redis prefix", options.prefix) ?? REDIS_DEFAULTS.prefix;
    this.maxLen = integerOption("redis maxLen", options.maxLen, REDIS_DEFAULTS.maxLen, 1);
    this.maxAgeMs = integerOption("redis maxAgeMs", options.maxAgeMs, REDIS_DEFAULTS.maxAgeMs);
    const p = keyBase(this.prefix);
    this.keys = { stream: `${p}stream`, epoch: `${p}epoch`, ids: `${p}ids` };
    this.#idsAge = `${p}ids-age`;
    redis.defineCommand("crierPublish", { numberOfKeys: 4, lua: PUBLISH });
    for (const connection of new Set([redis, reads])) {
      connection.defineCommand("crierLocate", { numberOfKeys: 3, lua: LOCATE });
      connection.defineCommand("crierPage", { numberOfKeys: 2, lua: PAGE });
    }
    this.#redis = redis as (Redis | Cluster) & Scripts;
    this.#reads = reads as (Redis | Cluster) & Scripts;
  }

  /**
   * The current epoch, creating it when the stream has none (first start, or after a flush).
   * Concurrent nodes agree: the first SET wins.
   */
  async epoch(): Promise<string> {
    await this.#redis.set(this.keys.epoch, newEpoch(), "NX");
    const epoch = await this.#redis.get(this.keys.epoch);
    if (epoch === null) throw new Error("the epoch key vanished while being read");
    return epoch;
  }

  /** How many entries the stream holds (`XLEN`). */
  async size(): Promise<number> {
    return this.#redis.xlen(this.keys.stream);
  }

  /** The newest entry, or `undefined` when the stream is empty or missing. */
  async newest(): Promise<RawEntry | undefined> {
    const [newest] = (await this.#redis.xrevrange(
      this.keys.stream,
      "+",
      "-",
      "COUNT",
      1,
    )) as RawEntry[];
    return newest;
  }

  /**
   * Appends an update; resolves with the epoch, the position Redis gave it, and the position of
   * the entry just before it in the stream (`0-0`: none ever; `""`: unknown, the stream was
   * empty). A node that had delivered `previous` may deliver this update next (see
   * RedisBackplane).
   */
  async append(fields: UpdateFields): Promise<Appended> {
    const { stream, epoch, ids } = this.keys;
    try {
      const [e, position, previous] = await this.#redis.crierPublish(
        stream,
        epoch,
        ids,
        this.#idsAge,
        newEpoch(),
        encodePayload(fields),
        fields.id ?? "",
        String(this.maxLen),
        String(this.maxAgeMs),
      );
      return { epoch: e, position, previous };
    } catch (err) {
      const message = (err as Error).message;
      if (message.includes("CRIER_DUPLICATE")) {
        throw new CrierError("CRIER_ERR_DUPLICATE_ID", `an update with id "${fields.id}" exists`);
      }
      if (message.includes("CRIER_RESERVED")) {
        throw new CrierError(
          "CRIER_ERR_DUPLICATE_ID",
          `ids starting with "#" are the hub's own; choose another id`,
        );
      }
      throw err;
    }
  }

  /** The position of `lastEventId` (`0-0` for `earliest`), or `undefined` when it is unknown. */
  async locate(lastEventId: string): Promise<Position | undefined> {
    const parsed = parseId(lastEventId);
    const { stream, epoch, ids } = this.keys;
    const found = await this.#reads.crierLocate(
      stream,
      epoch,
      ids,
      lastEventId,
      parsed?.epoch ?? "",
      parsed?.position ?? "",
    );
    return found ?? undefined;
  }

  /**
   * The raw entries after position `after` in the stream of `epoch`: at most `count`, and cut
   * after the entry that reaches `maxBytes` (always at least one). One command, so a long
   * replay never holds Redis (single-threaded) long enough to time out the publishes waiting
   * behind it. `undefined` when the epoch changed or the entry at `after` was trimmed away:
   * the entries after it may be gone too.
   */
  async page(
    after: Position,
    epoch: string,
    count: number,
    maxBytes: number,
  ): Promise<RawEntry[] | undefined> {
    const { stream } = this.keys;
    const args = [after, epoch, String(count), String(maxBytes)];
    return (await this.#reads.crierPage(stream, this.keys.epoch, ...args)) ?? undefined;
  }

  /** The raw entries in (after, upTo], at most `count` (on the read connection). */
  async range(after: Position, upTo: Position, count: number): Promise<RawEntry[]> {
    return (await this.#reads.xrange(
      this.keys.stream,
      `(${after}`,
      upTo,
      "COUNT",
      count,
    )) as RawEntry[];
  }
}

/** Decodes a stream entry into an update with its final id; `undefined` when malformed. */
export function decodeEntry([position, fields]: RawEntry): Entry | undefined {
  let epoch: string | undefined;
  let payload: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === "e") epoch = fields[i + 1];
    else if (fields[i] === "u") payload = fields[i + 1];
  }
  if (epoch === undefined || payload === undefined) return undefined;
  try {
    const update = decodePayload(payload);
    return {
      position,
      epoch,
      update: sealUpdate(update, update.id ?? generatedId(epoch, position)),
    };
  } catch {
    return undefined;
  }
}

/**
 * The position of the entry just before `raw` when it was appended (its `p` field: '0-0' for a
 * stream's first, '' when the stream was empty then); `undefined` for an entry without one
 * (written by an older version, or by something else).
 */
export function previousOf([, fields]: RawEntry): Position | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === "p") return fields[i + 1];
  return undefined;
}

/** True when position `a` comes before `b` in a stream. */
export function isBefore(a: Position, b: Position): boolean {
  const [am = 0, as = 0] = a.split("-").map(Number);
  const [bm = 0, bs = 0] = b.split("-").map(Number);
  return am < bm || (am === bm && as < bs);
}

/**
 * The id the hub gives an update stored without one: a fragment (`#`), as Mercure asks of a
 * hub's own ids, naming the stream's epoch and the entry's position in it.
 */
export function generatedId(epoch: string, position: Position): string {
  return `#${epoch}:${position}`;
}

/** A generated id's parts, or `undefined` when the id is not of the form `#<epoch>:<ms>-<seq>`. */
export function parseId(id: string): { epoch: string; position: Position } | undefined {
  const match = /^#([0-9a-z]+):(\d+-\d+)$/.exec(id);
  return match === null ? undefined : { epoch: match[1] as string, position: match[2] as string };
}

// 48 random bits: two streams never share an epoch by chance.
function newEpoch(): string {
  return randomBytes(6).toString("hex");
}
