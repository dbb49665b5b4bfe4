/** Plain-text answers: every error is a status and one line a person can act on. */
import type { ServerResponse } from "node:http";
import { CrierError, type CrierErrorCode } from "../../errors.ts";

/** Answers with a one-line `text/plain` body. */
export function sendText(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Readonly<Record<string, string>> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, {
    ...headers,
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": Buffer.byteLength(body) + 1,
    "X-Content-Type-Options": "nosniff",
  });
  res.end(`${body}\n`);
}

/** Answers with the status and reason of a `CrierError`, or 500 for anything else. */
export function sendError(
  res: ServerResponse,
  err: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  if (!(err instanceof CrierError)) {
    sendText(res, 500, "internal error", headers);
    return;
  }
  const extra: Record<string, string> = { ...headers };
  const challenge = CHALLENGES[err.code];
  if (challenge !== undefined) extra["WWW-Authenticate"] = challenge;
  // A full hub (429), and one that is shutting down or has lost its backplane (503), each
  // tell the client when to come back.
  if (err.status === 429 || err.status === 503) extra["Retry-After"] = String(RETRY_AFTER_SECONDS);
  sendText(res, err.status, err.message, extra);
}

/** Seconds a client refused with 429 or 503 is told to wait before it tries again. */
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
