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
} as const;
