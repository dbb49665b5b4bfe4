/**
 * The file backplane: a history that survives a restart, in one LMDB file on this machine, with
 * no server to run; several processes (`--workers N`) may share one file, and with it one order.
 *
 *   publish ──append (one write transaction)──▶ file ──▶ commit ──▶ catch up ──▶ deliver
 *                                                 ▲                   ▲
 *             other processes append here too ────┘     poll (pollMs) ┘
 *
 * Invariant: `position` is the seq after the last update this process delivered. Catching up
 * delivers every committed seq from it, in order, once; a seq that is gone before it was
 * delivered here (evicted by another process's appends, or too big to store) ends every live
 * stream, whose clients resume and are told what the history still holds. A replay first
 * catches up, then is cut at `position`, so the (already registered) subscriber gets the rest
 * live and drops what the replay holds.
 *
 * This file is the `crier-hub/file` entry point, so that importing `crier-hub` never loads LMDB:
 *
 *   import { createHub } from "crier-hub";
 *   import { FileBackplane } from "crier-hub/file";
 *   const hub = createHub({ backplane: new FileBackplane({ path: "/var/lib/crier/history" }) });
 */
import { spawnSync } from "node:child_process";
import { EventEmitter } from "node:events";
import { existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { CrierError } from "../errors.ts";
import { FILE_DEFAULTS, HISTORY_SYNCS, type HistorySync } from "../history/file-defaults.ts";
import { LmdbHistory, type LmdbHistoryOptions } from "../history/lmdb.ts";
import { choiceOption, durationOption } from "../options.ts";
import type { Update, UpdateFields } from "../update.ts";
import { waitAtMost } from "../within.ts";
import type { Backplane, Replay } from "./backplane.ts";
import { loadPeer, type Require, requirePeer } from "./peer.ts";

export type { HistorySync } from "../history/file-defaults.ts";
export type { LmdbHistoryOptions } from "../history/lmdb.ts";

/** Options of a {@link FileBackplane}: the file, the bounds and the sync policy. */
export interface FileBackplaneOptions extends LmdbHistoryOptions {
  /** The history file; created (its directory must exist) when missing. Required. */
  readonly path: string;
  /**
   * When a publish is acknowledged. `batch` (default): once committed, so it survives the
   * process being killed; the disk flush follows at once, shared by what was committed meanwhile,
   * and a power loss can take the updates acknowledged since the last finished flush (a few ms).
   * `always`: once flushed to disk, so a power loss loses nothing acknowledged; concurrent
   * publishes share one flush.
   */
  readonly sync?: HistorySync | undefined;
  /**
   * Milliseconds between looks for updates other processes appended to the file. Default 20;
   * `0` turns it off (this process is the file's only writer).
   */
  readonly pollMs?: number | undefined;
}

/** The longest `close()` waits for the file's environment to close, ms. */
const CLOSE_WAIT_MS = 2000;

/** Facts about the file; listeners are optional. */
export interface FileBackplaneEvents {
  /**
   * The path no longer names the file this process has open (removed, or replaced by another):
   * what this process would append from now on would be lost, and processes that opened the path
   * since write elsewhere. Publishes are refused (`CRIER_ERR_UNAVAILABLE`), live streams are sent
   * back to resume, and the backplane is not available: restart the process onto the path's file.
   */
  replaced: [path: string];
}

/** How often, at most, the poll looks whether the path still names the open file, ms. */
const IDENTITY_CHECK_MS = 1000;
/** How long after a failed write the backplane says it is unavailable (readiness), ms. */
const FAILING_MS = 5000;

export class FileBackplane extends EventEmitter<FileBackplaneEvents> implements Backplane {
  readonly history: LmdbHistory;
  readonly sync: HistorySync;
  readonly #env: import("lmdb").RootDatabase;
  readonly #pollMs: number;
  readonly #path: string;
  // The open file, to tell it from another one at the same path later.
  readonly #identity: { readonly dev: number; readonly ino: number };
  #checkedAt = 0;
  #replaced = false;
  // Updates this process appended, by seq, until delivered: not read back from the file.
  readonly #own = new Map<number, Update>();
  #deliver: ((update: Update) => void) | undefined;
  #reset: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #position = 0;
  #lastId: string | undefined;
  #newestAtStart: Update | undefined;
  #closed = false;
  // When the last write failed (a full disk), if it did and none succeeded since.
  #failedAt: number | undefined;

  /** Opens (or creates) the file; throws `CRIER_ERR_INVALID_OPTION` when it cannot be used. */
  constructor(options: FileBackplaneOptions) {
    super();
    if (typeof options?.path !== "string" || options.path === "") {
      throw new CrierError("CRIER_ERR_INVALID_OPTION", "FileBackplane needs a path");
    }
    this.sync = choiceOption("sync", options.sync, FILE_DEFAULTS.sync, HISTORY_SYNCS);
    this.#pollMs = durationOption("pollMs", options.pollMs, FILE_DEFAULTS.pollMs);
    const { open } = loadLmdb();
    const path = options.path;
    // A mistyped directory would otherwise be made, and an empty history started in it.
    if (!existsSync(dirname(path))) {
      throw new CrierError(
        "CRIER_ERR_INVALID_OPTION",
        `history file ${path}: its directory ${dirname(path)} does not exist; create it first`,
      );
    }
    assertReadsCleanly(path);
    try {
      // `always`: each commit is flushed before it resolves. `batch`: commits resolve once
      // visible, and lmdb-js flushes each right after; after a power loss it reopens at the last
      // flushed one (it notices the new boot), so the file is never half-written.
      this.#env = open({ path, noSubdir: true, maxDbs: 4, overlappingSync: this.sync === "batch" });
    } catch (err) {
      throw new CrierError(
        "CRIER_ERR_INVALID_OPTION",
        `history file ${path} cannot be opened (${reasonOf(err)}): give a writable LMDB file, or a new path`,
        { cause: err },
      );
    }
    this.#path = path;
    const { dev, ino } = statSync(path);
    this.#identity = { dev, ino };
    try {
      this.history = new LmdbHistory(this.#env, path, options);
    } catch (err) {
      void this.#env.close();
      if (err instanceof CrierError) throw err;
      throw new CrierError(
        "CRIER_ERR_INVALID_OPTION",
        `history file ${path} cannot be read (${reasonOf(err)}): restore it from a copy, or remove it and start an empty history`,
        { cause: err },
      );
    }
  }

  /** Starts delivering from the newest stored update; polls for other processes' appends. */
  start(deliver: (update: Update) => void, reset?: () => void): void {
    this.#deliver = deliver;
    this.#reset = reset;
    const { next } = this.history.state();
    this.#position = next;
    this.#newestAtStart = this.history.at(next - 1);
    this.#lastId = this.#newestAtStart?.id;
    if (this.#pollMs > 0) {
      this.#timer = setInterval(() => this.#catchUp(), this.#pollMs);
      this.#timer.unref();
    }
  }

  /**
   * Resolves with the stored update once its transaction is committed (`batch`) or flushed
   * (`always`); rejects with `CRIER_ERR_DUPLICATE_ID`, or `CRIER_ERR_UNAVAILABLE` when the file
   * cannot be written (a full disk): nothing is then delivered.
   */
  /**
   * False for a few seconds after a write failed (a publish could not be committed, e.g. a full
   * disk), so that readiness turns publishers away for a while, and for good once the path names
   * another file (`replaced`). A failure does not keep it false: with readiness turning every
   * publisher away, no publish would come to find the disk has room again.
   */
  get available(): boolean {
    const failing = this.#failedAt !== undefined && Date.now() - this.#failedAt < FAILING_MS;
    return !this.#closed && !this.#replaced && !failing;
  }

  async publish(fields: UpdateFields): Promise<Update> {
    if (this.#closed) throw new CrierError("CRIER_ERR_HUB_CLOSED", "the backplane is closed");
    if (this.#replaced) throw this.#replacedError();
    let seq: number | undefined;
    let appended: Awaited<ReturnType<LmdbHistory["append"]>>;
    try {
      appended = await this.history.append(fields, (s, update) => {
        seq = s;
        this.#own.set(s, update);
      });
    } catch (err) {
      if (seq !== undefined) this.#own.delete(seq);
      this.#failedAt = Date.now();
      // lmdb-js puts the cause of a failed commit (ENOSPC, …) in a promise of its own, which
      // would otherwise end the process as an unhandled rejection.
      const cause = await (err as { commitError?: Promise<unknown> }).commitError?.catch(
        (reason: unknown) => reason,
      );
      // A commit into a file replaced meanwhile can fail too (MDB_BAD_TXN): say what happened.
      this.#checkIdentity(true);
      if (this.#replaced) throw this.#replacedError();
      throw new CrierError(
        "CRIER_ERR_UNAVAILABLE",
        `the history file cannot be written (${reasonOf(cause ?? err)}); retry later`,
        { cause: cause ?? err },
      );
    }
    this.#failedAt = undefined;
    // Checked once committed, before the acknowledgement: one acknowledged into a file the path
    // no longer names would be lost.
    this.#checkIdentity(true);
    if (this.#replaced) throw this.#replacedError();
    if ("duplicate" in appended) {
      throw new CrierError(
        "CRIER_ERR_DUPLICATE_ID",
        `an update with id "${appended.duplicate}" already exists`,
      );
    }
    this.#catchUp();
    return appended.update;
  }

  /**
   * Catches up, then the stored updates after `lastEventId` that this process delivered. The
   * catch-up delivers what another process committed to the (already registered) subscriber
   * live: those at or before its cursor (it came from a process that was ahead) are returned as
   * `skip`, so it does not get them again after its replay.
   */
  replay(lastEventId: string): Replay {
    const before = this.#position;
    this.#catchUp();
    const updates = this.history.after(lastEventId, this.#position);
    if (updates === undefined) return undefined;
    const cursor = lastEventId === "earliest" ? undefined : this.history.seqOf(lastEventId);
    if (cursor === undefined || cursor < before) return { updates };
    const skip = new Set<string>();
    for (let seq = before; seq <= cursor; seq++) {
      const update = this.history.at(seq);
      if (update !== undefined) skip.add(update.id);
    }
    return { updates, skip };
  }

  lastEventId(): string | undefined {
    return this.#lastId;
  }

  newestAtStart(): Update | undefined {
    return this.#newestAtStart;
  }

  size(): number {
    return this.history.size;
  }

  /** Stops delivery and closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#deliver = undefined;
    // A file replaced under this process is not closed: lmdb-js's close can then spin for ever
    // (another process has written to a new file beside the same lock file). Its handle goes
    // with the process, which is to be restarted anyway.
    if (this.#replaced) return;
    // lmdb-js's close waits for its writes to end, which never happens after a failed commit
    // (a full disk): bounded, so that a hub closing (a drain) is not held for ever. What was
    // committed is in the file either way.
    await waitAtMost(
      this.#env.close().catch(() => {}),
      CLOSE_WAIT_MS,
    );
  }

  /** True once the path no longer names the file this process has open (`replaced`). */
  get replaced(): boolean {
    return this.#replaced;
  }

  #replacedError(): CrierError {
    return new CrierError(
      "CRIER_ERR_UNAVAILABLE",
      `the history file ${this.#path} was removed or replaced while this process had it open (an update may have been written to the removed file); restart the process`,
    );
  }

  // Does the path still name the file this process opened? (`always`: check now; otherwise at
  // most once a second.) Once it does not, says so once, and sends the live streams back.
  #checkIdentity(always: boolean): void {
    if (this.#replaced || this.#closed) return;
    const now = Date.now();
    if (!always && now - this.#checkedAt < IDENTITY_CHECK_MS) return;
    this.#checkedAt = now;
    let stats: ReturnType<typeof statSync>;
    try {
      stats = statSync(this.#path, { throwIfNoEntry: false });
    } catch {
      return; // cannot tell now (EACCES, EIO): the next check will
    }
    if (
      stats !== undefined &&
      stats.dev === this.#identity.dev &&
      stats.ino === this.#identity.ino
    ) {
      return;
    }
    this.#replaced = true;
    clearInterval(this.#timer);
    this.emit("replaced", this.#path);
    this.#reset?.();
  }

  // Delivers every committed seq from `position`, in order, once.
  #catchUp(): void {
    this.#checkIdentity(false);
    if (this.#closed || this.#replaced || this.#deliver === undefined) return;
    // Another process's commits are seen from a fresh snapshot.
    this.#env.resetReadTxn();
    const { next } = this.history.state();
    let gap = false;
    for (; this.#position < next; this.#position++) {
      const seq = this.#position;
      const update = this.#own.get(seq) ?? this.history.at(seq);
      this.#own.delete(seq);
      if (update === undefined) {
        gap = true;
        continue;
      }
      this.#lastId = update.id;
      this.#deliver?.(update);
    }
    if (gap) this.#reset?.();
  }
}

// LMDB trusts its file: one that is not LMDB, or is damaged, can kill the process that opens it
// (SIGSEGV, SIGBUS) instead of failing, and a supervisor would restart it into the same crash.
// So an existing file is first read whole by a throwaway process, read-only; it is opened here
// only if that process did not die of it. Its other failures are left to the open below.
function assertReadsCleanly(path: string): void {
  if (!existsSync(path)) return;
  const lmdb = createRequire(import.meta.url).resolve("lmdb");
  const script = `const env = require(${JSON.stringify(lmdb)}).open({ path: process.argv[1], noSubdir: true, maxDbs: 4, readOnly: true });
    env.getStats();
    for (const name of ["meta", "updates", "ids"]) for (const _ of env.openDB({ name, encoding: "json" }).getRange({}));`;
  const child = spawnSync(process.execPath, ["-e", script, path], {
    stdio: ["ignore", "ignore", "pipe"],
    timeout: 60_000,
  });
  if (child.signal !== null) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `history file ${path} cannot be opened (reading it crashed with ${child.signal}: it is damaged or not a history file): restore it from a copy, or remove it and start an empty history`,
    );
  }
  // Read without crashing, but not to the end: an entry that is not what Crier writes (a
  // damaged byte in an update, or the databases of another program) would fail every resume
  // that reaches it.
  if (child.status !== 0) {
    const error = /^\w*Error: .*$/m.exec(child.stderr.toString())?.[0] ?? `exit ${child.status}`;
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `history file ${path} cannot be read to the end (${error}: it is damaged or not a history file): restore it from a copy, or remove it and start an empty history`,
    );
  }
}

/**
 * True for lmdb-js's error of a failed commit. Its failure is already answered (a publish
 * rejected with `CRIER_ERR_UNAVAILABLE`), but lmdb-js also rejects an internal promise with it
 * that no caller can handle: an app that exits on unhandled rejections should let these pass.
 */
export function isCommitFailure(reason: unknown): boolean {
  const commitError = (reason as { commitError?: Promise<unknown> } | null)?.commitError;
  if (!(commitError instanceof Promise)) return false;
  commitError.catch(() => {});
  return true;
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Loads lmdb, an optional peer dependency (only `crier-hub/file` needs it), with an error that
 * says how to install it. `load` is for tests.
 */
export function loadLmdb(load: Require = requirePeer): typeof import("lmdb") {
  return loadPeer(
    load,
    "lmdb",
    "crier-hub/file needs the lmdb package, an optional peer dependency: npm install lmdb",
  ) as typeof import("lmdb");
}
