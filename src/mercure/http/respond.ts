/** Plain-text answers: every error is a status and one line a person can act on. */
import { encodeRetry } from "../../encoder.ts";
import { CrierError, type CrierErrorCode } from "../../errors.ts";
import { SSE_HEADERS } from "../../head.ts";
import type { Exchange } from "./exchange.ts";

/**
 * Answers with a `text/plain` body: one line ending in a newline, or exactly `body` when
 * `newline` is false (the publish answer, whose body is the event id and nothing else).
 */
export function sendText(
  ex: Exchange,
  status: number,
  body: string,
  headers: Readonly<Record<string, string>> = {},
  newline = true,
): void {
  const text = newline ? `${body}\n` : body;
  ex.reply(
    status,
    {
      ...headers,
      "Content-Type": "text/plain; charset=utf-8",
      "Content-Length": String(Buffer.byteLength(text)),
      "X-Content-Type-Options": "nosniff",
    },
    text,
  );
}

/**
 * Answers with the status and reason of a `CrierError`, or 500 for anything else. A 401 or 403
 * challenge names `resourceMetadata`, the URL of the hub's protected resource metadata, if any.
 */
export function sendError(
  ex: Exchange,
  err: unknown,
  headers: Readonly<Record<string, string>> = {},
  resourceMetadata?: string,
): void {
  if (!(err instanceof CrierError)) {
    sendText(ex, 500, "internal error", headers);
    return;
  }
  const extra: Record<string, string> = { ...headers };
  const challenge = CHALLENGES[err.code];
  if (challenge !== undefined) {
    // [spec, draft-08] every such 401 or 403 carries that header, and the challenge SHOULD
    // include the `resource_metadata` parameter […] not only when no token is presented.
    extra["WWW-Authenticate"] =
      resourceMetadata === undefined || (err.status !== 401 && err.status !== 403)
        ? challenge
        : `${challenge}${challenge === "Bearer" ? " " : ", "}resource_metadata="${resourceMetadata}"`;
  }
  // A full hub (429), and one that is shutting down or has lost its backplane (503), each
  // tell the client when to come back, unless the refusal names its own delay.
  const retryAfter =
    err.retryAfterSeconds ??
    (err.status === 429 || err.status === 503 ? RETRY_AFTER_SECONDS : undefined);
  if (retryAfter !== undefined) extra["Retry-After"] = String(retryAfter);
  sendText(ex, err.status, err.message, extra);
}

/**
 * Answers a request for an event stream that failed: as {@link sendError}, except a 503 to a
 * client that asks for `text/event-stream`. An EventSource (browser or `eventsource`) gives up
 * for good on any answer but a 200 event stream: refused with a 503 (the hub draining, past the
 * subscribe rate in a reconnect storm, a key set out of reach) it would never come back, and a
 * client whose stream ended early in a drain and that returned while the drain went on would
 * miss everything after. It gets an event stream holding only a `retry` hint of `retryMs` (at
 * least the refusal's Retry-After, and half a second) plus up to as much again of jitter (as the
 * drain's own), and ended: it comes back after it and resumes with its Last-Event-ID. Other
 * clients get the 503 and Retry-After.
 */
export function sendStreamError(
  ex: Exchange,
  err: unknown,
  headers: Readonly<Record<string, string>>,
  retryMs: number,
  resourceMetadata?: string,
): void {
  if (!(acceptsEventStream(ex) && err instanceof CrierError && err.status === 503)) {
    sendError(ex, err, headers, resourceMetadata);
    return;
  }
  // Never sooner than the refusal's own Retry-After, nor than half a second (a `closeRetryMs` of
  // 0 would make every refused client come straight back), nor later than an hour.
  const base = Math.min(
    Math.max(retryMs, (err.retryAfterSeconds ?? 0) * 1000, MIN_RETRY_HINT_MS),
    MAX_RETRY_HINT_MS,
  );
  const retry = base + Math.floor(Math.random() * (base + 1));
  ex.reply(200, { ...SSE_HEADERS, ...headers }, encodeRetry(retry).toString());
}

/** True when the request asks for an event stream (`Accept: text/event-stream`, any case). */
export function acceptsEventStream(ex: Exchange): boolean {
  const accept = ex.headers.accept;
  return typeof accept === "string" && /\btext\/event-stream\b/i.test(accept);
}

const MIN_RETRY_HINT_MS = 500;
const MAX_RETRY_HINT_MS = 3_600_000;

/** Seconds a client refused with 429 or 503 is told to wait, unless the refusal names its own. */
export const RETRY_AFTER_SECONDS = 5;

// [spec, draft-08] If no access token is presented and the requested operation requires one, the
// hub MUST return a 401 "Unauthorized" status code with a `WWW-Authenticate: Bearer` challenge and
// MUST NOT include an error code. […] If a token is presented but fails validation […] the hub
// MUST return a 401 status code with `error="invalid_token"`. If a valid token does not authorize
// the requested operation, the hub MUST return a 403 "Forbidden" status code with
// `error="insufficient_scope"`. If the request is malformed, the hub MUST return a 400 "Bad
// Request" status code with `error="invalid_request"`. (RFC 6750 section 3)
const CHALLENGES: Partial<Record<CrierErrorCode, string>> = {
  CRIER_ERR_UNAUTHORIZED: "Bearer",
  CRIER_ERR_INVALID_TOKEN: 'Bearer error="invalid_token"',
  CRIER_ERR_FORBIDDEN: 'Bearer error="insufficient_scope"',
  CRIER_ERR_BAD_REQUEST: 'Bearer error="invalid_request"',
};
