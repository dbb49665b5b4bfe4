/**
 * The SSE encoder: the only code in Crier that produces event-stream bytes. Pure; no I/O.
 *
 * Every field is written as `name: value` (with the space), because a parser strips exactly one
 * space after the colon: writing it ourselves keeps a value's own leading spaces intact.
 * `data` is split on CRLF, CR and LF into one `data:` line per line, so a publisher's line breaks
 * survive and cannot start a new field. `id` and `event` are single-line by nature; a line break
 * or NUL in them is refused rather than silently rewritten.
 */
import { CrierError } from "./errors.ts";

/** One event as it goes on the wire. Every field is optional; `data` defaults to the empty string. */
export interface SseEvent {
  /** Event id; the client sends it back as `Last-Event-ID`. No CR, LF or NUL. */
  readonly id?: string | undefined;
  /** Event type (`event:` field); the browser dispatches it under this name. No CR, LF or NUL. */
  readonly type?: string | undefined;
  /** Payload; any text. Line breaks (CR, LF, CRLF) become separate `data:` lines. */
  readonly data?: string | undefined;
  /** Reconnection delay in milliseconds the client should use from now on. */
  readonly retry?: number | undefined;
}

// [spec] "If the field value does not contain U+0000 NULL, then set the last event ID buffer"
// — an id with NUL is ignored by browsers, and a line break would end the field early.
const FORBIDDEN_IN_LINE = /[\r\n\0]/;
const LINE_BREAK = /\r\n|\r|\n/;
const LINE_BREAKS = /\r\n|\r|\n/g;

/** Throws `CRIER_ERR_INVALID_EVENT` unless `value` can be one field line. */
export function assertSingleLine(field: "id" | "type", value: string): void {
  if (FORBIDDEN_IN_LINE.test(value)) {
    throw new CrierError(
      "CRIER_ERR_INVALID_EVENT",
      `event ${field} must not contain CR, LF or NUL`,
    );
  }
  // UTF-8 has no lone surrogate: it would be written as U+FFFD, so two ids would go out the same
  // and neither could be resumed from, a type would never match the client's listener.
  if (LONE_SURROGATE.test(value)) {
    throw new CrierError(
      "CRIER_ERR_INVALID_EVENT",
      `event ${field} must be well-formed Unicode (it holds a lone surrogate)`,
    );
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Throws `CRIER_ERR_INVALID_EVENT` unless `retry` is a non-negative safe integer. */
export function assertRetry(retry: number): void {
  if (!Number.isSafeInteger(retry) || retry < 0) {
    throw new CrierError(
      "CRIER_ERR_INVALID_EVENT",
      "event retry must be a non-negative integer number of milliseconds",
    );
  }
}

/** Encodes one event, validating it. The result ends with the blank line that dispatches it. */
export function encodeEvent(event: SseEvent): Buffer {
  checkFields(event);
  let out = "";
  if (event.id !== undefined) {
    assertSingleLine("id", event.id);
    out += `id: ${event.id}\n`;
  }
  if (event.type !== undefined) {
    assertSingleLine("type", event.type);
    out += `event: ${event.type}\n`;
  }
  if (event.retry !== undefined) {
    assertRetry(event.retry);
    out += `retry: ${event.retry}\n`;
  }
  out += dataLines(event.data ?? "");
  return ownBuffer(`${out}\n`);
}

/**
 * The UTF-8 bytes of `text` in an allocation of their own. An event is kept as long as the
 * history holds it; `Buffer.from` would cut a small one out of Node's shared 8 KiB pool, and a
 * kept slice keeps its whole slab alive (3,000 kept 200-byte events between other small
 * allocations held 7.4 MB instead of 0.6 MB).
 */
function ownBuffer(text: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text, "utf8"));
  bytes.write(text, 0, "utf8");
  return bytes;
}

/**
 * The length in bytes of {@link encodeEvent}'s result, without building it (no validation): how
 * a publish is checked against a subscriber's queue bound before it is stored.
 */
export function encodedLength(event: SseEvent): number {
  let n = 1;
  if (event.id !== undefined) n += "id: \n".length + Buffer.byteLength(event.id);
  if (event.type !== undefined) n += "event: \n".length + Buffer.byteLength(event.type);
  if (event.retry !== undefined) n += "retry: \n".length + String(event.retry).length;
  const data = event.data ?? "";
  let lines = 1;
  let breakBytes = 0;
  for (const match of data.matchAll(LINE_BREAKS)) {
    lines++;
    breakBytes += match[0].length;
  }
  return n + Buffer.byteLength(data) - breakBytes + lines * "data: \n".length;
}

/**
 * A `retry:` field on its own: sets the client's reconnection delay without dispatching an event
 * (there is no data), used to tell clients when to come back before the hub closes them.
 */
export function encodeRetry(retry: number): Buffer {
  assertRetry(retry);
  return Buffer.from(`retry: ${retry}\n\n`, "utf8");
}

/**
 * A comment: ignored by clients, used for keep-alives and to flush headers at connect. Multi-line
 * text becomes one comment line per line. The empty comment is `:\n`.
 */
export function encodeComment(text = ""): Buffer {
  if (typeof text !== "string") {
    throw new CrierError("CRIER_ERR_INVALID_EVENT", "a comment's text must be a string");
  }
  if (text === "") return Buffer.from(":\n", "utf8");
  let out = "";
  for (const line of text.split(LINE_BREAK)) out += line === "" ? ":\n" : `: ${line}\n`;
  return Buffer.from(out, "utf8");
}

// From plain JavaScript anything can arrive: a number id would go out as its digits by luck, an
// object's data would throw a TypeError from deep inside. Each is refused by name instead.
function checkFields(event: SseEvent): void {
  if (typeof event !== "object" || event === null) {
    throw new CrierError(
      "CRIER_ERR_INVALID_EVENT",
      "encodeEvent needs an event object: { id?, type?, data?, retry? }",
    );
  }
  for (const field of ["id", "type", "data"] as const) {
    const value = event[field];
    if (value !== undefined && typeof value !== "string") {
      throw new CrierError(
        "CRIER_ERR_INVALID_EVENT",
        `event ${field} must be a string${field === "data" ? " (JSON.stringify an object first)" : ""}, got ${typeof value}`,
      );
    }
  }
}

function dataLines(data: string): string {
  // Fast path: most payloads are one line (JSON without pretty-printing).
  if (!data.includes("\n") && !data.includes("\r")) return `data: ${data}\n`;
  let out = "";
  for (const line of data.split(LINE_BREAK)) out += `data: ${line}\n`;
  return out;
}
