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
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { CrierError } from "../errors.ts";
import { FILE_DEFAULTS, HISTORY_SYNCS, type HistorySync } from "../history/file-defaults.ts";
import { LmdbHistory, type LmdbHistoryOptions } from "../history/lmdb.ts";
import { choiceOption, durationOption } from "../options.ts";
import type { Update, UpdateFields } from "../update.ts";
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

export class FileBackplane implements Backplane {
  readonly history: LmdbHistory;
  readonly sync: HistorySync;
  readonly #env: import("lmdb").RootDatabase;
  readonly #pollMs: number;
  // Updates this process appended, by seq, until delivered: not read back from the file.
  readonly #own = new Map<number, Update>();
  #deliver: ((update: Update) => void) | undefined;
  #reset: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #position = 0;
  #lastId: string | undefined;
  #closed = false;
  // The last write failed (a full disk): not ready until one succeeds again.
  #failing = false;

  /** Opens (or creates) the file; throws `CRIER_ERR_INVALID_OPTION` when it cannot be used. */
  constructor(options: FileBackplaneOptions) {
    if (typeof options?.path !== "string" || options.path === "") {
      throw new CrierError("CRIER_ERR_INVALID_OPTION", "FileBackplane needs a path");
    }
    this.sync = choiceOption("sync", options.sync, FILE_DEFAULTS.sync, HISTORY_SYNCS);
    this.#pollMs = durationOption("pollMs", options.pollMs, FILE_DEFAULTS.pollMs);
    const { open } = loadLmdb();
    const path = options.path;
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
    this.#lastId = this.history.at(next - 1)?.id;
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
   * False while writes fail (the last publish could not be committed, e.g. a full disk), so that
   * readiness turns away publishers; true again after the next write that succeeds.
   */
  get available(): boolean {
    return !this.#closed && !this.#failing;
  }

  async publish(fields: UpdateFields): Promise<Update> {
    if (this.#closed) throw new CrierError("CRIER_ERR_HUB_CLOSED", "the backplane is closed");
    let seq: number | undefined;
    let appended: Awaited<ReturnType<LmdbHistory["append"]>>;
    try {
      appended = await this.history.append(fields, (s, update) => {
        seq = s;
        this.#own.set(s, update);
      });
    } catch (err) {
      if (seq !== undefined) this.#own.delete(seq);
      this.#failing = true;
      // lmdb-js puts the cause of a failed commit (ENOSPC, …) in a promise of its own, which
      // would otherwise end the process as an unhandled rejection.
      const cause = await (err as { commitError?: Promise<unknown> }).commitError?.catch(
        (reason: unknown) => reason,
      );
      throw new CrierError(
        "CRIER_ERR_UNAVAILABLE",
        `the history file cannot be written (${reasonOf(cause ?? err)}); retry later`,
        { cause: cause ?? err },
      );
    }
    this.#failing = false;
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

  size(): number {
    return this.history.size;
  }

  /** Stops delivery and closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#deliver = undefined;
    await this.#env.close();
  }

  // Delivers every committed seq from `position`, in order, once.
  #catchUp(): void {
    if (this.#closed || this.#deliver === undefined) return;
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
    stdio: "ignore",
    timeout: 60_000,
  });
  if (child.signal !== null) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `history file ${path} cannot be opened (reading it crashed with ${child.signal}: it is damaged or not a history file): restore it from a copy, or remove it and start an empty history`,
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
