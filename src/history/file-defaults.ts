/**
 * Defaults of the history file, apart from it so that the command line can show them without
 * loading the store.
 */

/** When a publish is acknowledged, relative to the disk. */
export type HistorySync = "always" | "batch";

/** The sync policies, the default first. */
export const HISTORY_SYNCS: readonly HistorySync[] = ["batch", "always"];

export const FILE_DEFAULTS = {
  /**
   * `batch`: acknowledged once committed (it survives the process being killed), flushed to disk
   * right after, together with whatever else was committed meanwhile.
   */
  sync: "batch",
  /** Milliseconds after which an update is evicted; 0: no age limit. */
  maxAgeMs: 0,
  /** Milliseconds between looks for updates that other processes appended to the same file. */
  pollMs: 20,
} as const;
