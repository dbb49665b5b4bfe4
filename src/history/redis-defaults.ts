/**
 * Defaults of the Redis history, apart from it so that the command line can show them without
 * loading a Redis client.
 */
export const REDIS_DEFAULTS = {
  /** Prefix of every key; hubs with the same prefix share updates. */
  prefix: "crier:",
  /** Updates the stream keeps, about (`MAXLEN ~`). */
  maxLen: 10_000,
  /** Milliseconds after which an update is trimmed; 0: no age limit. */
  maxAgeMs: 0,
  /** Resume reads in flight at once; beyond it a resume waits its turn. */
  replayConcurrency: 16,
  /** Most entries in one replay page. */
  replayPageSize: 256,
  /** Milliseconds before a resume's read that got no answer fails. */
  replayTimeoutMs: 5000,
} as const;
