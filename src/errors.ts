/**
 * Every error Crier throws or answers with carries a stable `code` that programs can switch on;
 * the message is for people and names the fix. HTTP-facing errors also carry the status the hub
 * answers with, so one value travels from the check that failed to the response that reports it.
 */
export type CrierErrorCode =
  /** An event field that cannot be put on the wire (a line break or NUL in `id`/`type`, a bad `retry`). */
  | "CRIER_ERR_INVALID_EVENT"
  /**
   * An option or argument given to a public function is missing, out of range or of the wrong
   * type (from plain JavaScript): the message names it and what it takes.
   */
  | "CRIER_ERR_INVALID_OPTION"
  /** The hub was closed; it accepts no more publishes or subscriptions. */
  | "CRIER_ERR_HUB_CLOSED"
  /** A publisher-supplied id is already in the history. */
  | "CRIER_ERR_DUPLICATE_ID"
  /** A request field is missing or malformed (HTTP 400). */
  | "CRIER_ERR_BAD_REQUEST"
  /** No token was presented and the operation needs one (HTTP 401, a plain `Bearer` challenge). */
  | "CRIER_ERR_UNAUTHORIZED"
  /** A token was presented and does not verify, has expired or is malformed (HTTP 401). */
  | "CRIER_ERR_INVALID_TOKEN"
  /** The token is valid but does not cover what was asked (HTTP 403). */
  | "CRIER_ERR_FORBIDDEN"
  /** The request body is larger than the configured limit (HTTP 413). */
  | "CRIER_ERR_PAYLOAD_TOO_LARGE"
  /** The request body is not form-encoded (HTTP 415). */
  | "CRIER_ERR_UNSUPPORTED_MEDIA_TYPE"
  /** The history or backplane cannot take the update right now (HTTP 503). */
  | "CRIER_ERR_UNAVAILABLE"
  /** A limit on concurrent use was reached, e.g. `maxSubscribers`; retry later (HTTP 429). */
  | "CRIER_ERR_TOO_MANY"
  /**
   * The hub's fan-out backlog is past `pushback.refuseMs`/`refuseBytes`: the publish was refused
   * before anything was stored; retry after `retryAfterSeconds` (HTTP 503 with `Retry-After`).
   */
  | "CRIER_ERR_OVERLOADED"
  /** An optional peer dependency is not installed (`ioredis` for `crier-hub/redis`). */
  | "CRIER_ERR_MISSING_DEPENDENCY"
  /**
   * An in-process consumer (`hub.updates()`) fell behind: its queue reached its bound, or it did
   * not take an update for several keep-alive intervals. Resume with the last id it handled.
   */
  | "CRIER_ERR_OVERFLOW";

const STATUS: Record<CrierErrorCode, number> = {
  CRIER_ERR_INVALID_EVENT: 400,
  CRIER_ERR_INVALID_OPTION: 500,
  CRIER_ERR_HUB_CLOSED: 503,
  CRIER_ERR_DUPLICATE_ID: 409,
  CRIER_ERR_BAD_REQUEST: 400,
  CRIER_ERR_UNAUTHORIZED: 401,
  CRIER_ERR_INVALID_TOKEN: 401,
  CRIER_ERR_FORBIDDEN: 403,
  CRIER_ERR_PAYLOAD_TOO_LARGE: 413,
  CRIER_ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  CRIER_ERR_UNAVAILABLE: 503,
  CRIER_ERR_TOO_MANY: 429,
  CRIER_ERR_OVERLOADED: 503,
  CRIER_ERR_MISSING_DEPENDENCY: 500,
  CRIER_ERR_OVERFLOW: 503,
};

/** The one error class of Crier. `status` is the HTTP status the hub answers this error with. */
export class CrierError extends Error {
  override readonly name = "CrierError";
  readonly code: CrierErrorCode;
  readonly status: number;
  /**
   * Seconds after which a refused client may try again (sent as `Retry-After`); `undefined`:
   * the status's own default (5 s for 429, none otherwise).
   */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    code: CrierErrorCode,
    message: string,
    options?: ErrorOptions & { retryAfterSeconds?: number | undefined },
  ) {
    super(message, options);
    this.code = code;
    this.status = STATUS[code];
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

/** True for a {@link CrierError}, optionally of one code. */
export function isCrierError(err: unknown, code?: CrierErrorCode): err is CrierError {
  return err instanceof CrierError && (code === undefined || err.code === code);
}
