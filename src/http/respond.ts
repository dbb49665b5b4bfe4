/** Plain-text answers: every error is a status and one line a person can act on. */
import type { ServerResponse } from "node:http";
import { CrierError } from "../errors.ts";

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
  if (err.status === 401) extra["WWW-Authenticate"] = 'Bearer error="invalid_token"';
  if (err.status === 403) extra["WWW-Authenticate"] = 'Bearer error="insufficient_scope"';
  sendText(res, err.status, err.message, extra);
}
