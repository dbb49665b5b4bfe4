/**
 * An update is what a publisher sends and every matching subscriber receives: one SSE event
 * addressed to one or more topics. It is validated and encoded exactly once, when it is stored,
 * and the same bytes are then written to every subscriber.
 */
import { assertRetry, assertSingleLine, encodedLength, encodeEvent } from "./encoder.ts";
import { CrierError } from "./errors.ts";

/** What a publisher gives to {@link Hub.publish}. */
export interface UpdateInput {
  /** One topic or several; the first is the canonical one. At least one, none empty. */
  readonly topics: string | readonly string[];
  /** The payload. Defaults to the empty string. */
  readonly data?: string | undefined;
  /** An id of the publisher's choosing (honoured, as Mercure requires); generated when absent. */
  readonly id?: string | undefined;
  /** The SSE event type. */
  readonly type?: string | undefined;
  /** The reconnection delay, in milliseconds, sent with the event. */
  readonly retry?: number | undefined;
  /** Deliver only to subscribers authorized for one of the topics. Default false. */
  readonly private?: boolean | undefined;
}

/** A validated update before it has an id. */
export interface UpdateFields {
  readonly topics: readonly string[];
  readonly data: string;
  readonly id?: string | undefined;
  readonly type?: string | undefined;
  readonly retry?: number | undefined;
  readonly private: boolean;
}

/** A stored update: it has its final id and its encoded bytes. Immutable once made. */
export interface Update extends UpdateFields {
  readonly id: string;
  /** The encoded SSE event, shared by every subscriber that receives it. */
  readonly bytes: Buffer;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point: they are refused.
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** Longest id a publisher may give, in UTF-8 bytes. */
export const MAX_ID_BYTES = 1024;

/** Validates a publisher's input; throws `CRIER_ERR_INVALID_EVENT` or `CRIER_ERR_BAD_REQUEST`. */
export function validateUpdate(input: UpdateInput): UpdateFields {
  // Callers in plain JavaScript get the same typed refusal as a bad HTTP form, never a TypeError.
  if (typeof input !== "object" || input === null) {
    throw new CrierError("CRIER_ERR_BAD_REQUEST", "an update must be an object with topics");
  }
  if (typeof input.topics !== "string" && !Array.isArray(input.topics)) {
    throw new CrierError(
      "CRIER_ERR_BAD_REQUEST",
      "an update's topics must be a string or an array of strings",
    );
  }
  for (const field of ["data", "id", "type"] as const) {
    if (input[field] !== undefined && typeof input[field] !== "string") {
      throw new CrierError(
        "CRIER_ERR_INVALID_EVENT",
        `an update's ${field} must be a string, got ${typeof input[field]}; serialize it first (e.g. JSON.stringify)`,
      );
    }
  }
  if (input.private !== undefined && typeof input.private !== "boolean") {
    throw new CrierError("CRIER_ERR_INVALID_EVENT", "an update's private must be a boolean");
  }
  const topics = typeof input.topics === "string" ? [input.topics] : [...input.topics];
  if (topics.length === 0) {
    throw new CrierError("CRIER_ERR_BAD_REQUEST", "an update needs at least one topic");
  }
  for (const topic of topics) {
    if (typeof topic !== "string" || topic === "") {
      throw new CrierError("CRIER_ERR_BAD_REQUEST", "a topic must be a non-empty string");
    }
  }
  if (input.id !== undefined) {
    if (input.id === "") throw new CrierError("CRIER_ERR_INVALID_EVENT", "event id is empty");
    // The hub's own ids are fragments, and `earliest` asks a resume for everything held: a
    // publisher's id may be neither, or a resume could not tell what it names.
    if (input.id.startsWith("#")) {
      throw new CrierError(
        "CRIER_ERR_INVALID_EVENT",
        'an id must not start with "#": such ids are the hub\'s own',
      );
    }
    if (input.id === "earliest") {
      throw new CrierError(
        "CRIER_ERR_INVALID_EVENT",
        'the id "earliest" is reserved: it asks a resume for every update held',
      );
    }
    assertSingleLine("id", input.id);
    // A client sends the id back in a Last-Event-ID request header: one longer than a server or
    // proxy takes in a header (431), or that the header's parsing trims, could never resume.
    if (Buffer.byteLength(input.id, "utf8") > MAX_ID_BYTES) {
      throw new CrierError(
        "CRIER_ERR_INVALID_EVENT",
        `an id is at most ${MAX_ID_BYTES} bytes: a client sends it back in a Last-Event-ID header`,
      );
    }
    if (/^[ \t]|[ \t]$/.test(input.id)) {
      throw new CrierError(
        "CRIER_ERR_INVALID_EVENT",
        "an id must not start or end with a space or a tab: a Last-Event-ID header drops them",
      );
    }
    // The id also travels in the Last-Event-ID response header, where control characters are
    // invalid: refused here rather than failing every later subscription.
    if (CONTROL.test(input.id)) {
      throw new CrierError(
        "CRIER_ERR_INVALID_EVENT",
        "event id must not contain control characters",
      );
    }
  }
  if (input.type !== undefined) assertSingleLine("type", input.type);
  if (input.retry !== undefined) assertRetry(input.retry);
  return {
    topics,
    data: input.data ?? "",
    id: input.id,
    type: input.type,
    retry: input.retry,
    private: input.private === true,
  };
}

/** Gives validated fields their final id and encodes them, once. */
export function sealUpdate(fields: UpdateFields, id: string): Update {
  const bytes = encodeEvent({ id, type: fields.type, data: fields.data, retry: fields.retry });
  return { ...fields, id, bytes };
}

// Longer than any id a history generates (`<epoch>:<ms>-<seq>` on Redis).
const LONGEST_GENERATED_ID = "x".repeat(64);

/**
 * Throws `CRIER_ERR_PAYLOAD_TOO_LARGE` when the update's frame is larger than `maxBytes`, a
 * subscriber's queue bound: it could reach no subscriber, each would be evicted the moment it was
 * offered, however empty its queue. Checked before it is stored; a generated id is counted at
 * its longest.
 */
export function assertFits(fields: UpdateFields, maxBytes: number): void {
  const size = encodedLength({ ...fields, id: fields.id ?? LONGEST_GENERATED_ID });
  if (size > maxBytes) {
    throw new CrierError(
      "CRIER_ERR_PAYLOAD_TOO_LARGE",
      `the update encodes to ${size} bytes (each line break adds a "data: " line), more than a subscriber's queue holds (${maxBytes} bytes)`,
    );
  }
}
