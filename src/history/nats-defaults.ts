/**
 * Defaults of the NATS JetStream history, apart from it so that the command line can show them
 * without loading a NATS client.
 */
export const NATS_DEFAULTS = {
  /** The JetStream stream's name; hubs sharing a stream share updates. */
  stream: "crier",
  /** Updates the stream keeps (`max_msgs`, exact: JetStream trims one message at a time). */
  maxLen: 10_000,
  /** Milliseconds after which an update is trimmed (`max_age`); 0: no age limit. */
  maxAgeMs: 0,
} as const;

/** JetStream refuses a `max_age` shorter than this (ms); 0 is none. */
export const MIN_MAX_AGE_MS = 100;
