/**
 * What a Mercure publish may carry, beyond what the SSE wire itself needs (`update.ts` refuses
 * line breaks and NUL): the draft-08 character rules of topics, ids and types, the ids and types
 * the protocol reserves, the hub's reserved namespace, and the range of `retry`. Pure: no I/O.
 * Each rule answers 400 with a reason (`CRIER_ERR_BAD_REQUEST`).
 */
import { CrierError } from "../errors.ts";
import { MERCURE_PATH } from "./paths.ts";

/** Smallest `retry` accepted, in milliseconds: below it, clients would hammer the hub. */
export const MIN_RETRY_MS = 100;
/** Largest `retry` accepted, in milliseconds (24 hours): above it, clients would never return. */
export const MAX_RETRY_MS = 24 * 60 * 60 * 1000;

// [spec, draft-08] MUST NOT contain C0 (U+0000–U+001F) or C1 (U+0080–U+009F) control
// characters, U+007F (DEL), or Unicode format characters (general category `Cf`).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point: they are refused.
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\p{Cf}]/u;

/** True when `value` holds a C0 or C1 control character, DEL, or a format (`Cf`) character. */
export function hasForbiddenCharacter(value: string): boolean {
  return FORBIDDEN.test(value);
}

/** Checks one `topic` field against the hub's URL `hubUrl`; throws the 400 that refuses it. */
export function checkTopic(topic: string, hubUrl: string): void {
  // [spec, draft-08] Each topic value MUST conform to the constraints defined in (#terminology).
  if (hasForbiddenCharacter(topic)) {
    throw bad("a topic must not contain control or format characters");
  }
  // [spec, draft-08] Every topic value (canonical or alternate) MUST NOT address the reserved
  // hub namespace. […] hubs MUST reject publish requests violating them, for any topic value,
  // with a 400 "Bad Request" HTTP status code.
  if (topic === "") throw bad("a topic must not be empty");
  if (addressesHub(topic, hubUrl)) {
    throw bad(`topics under ${MERCURE_PATH} are reserved for the hub's own events`);
  }
  // A dot segment names another topic once resolved (URL-pattern selectors resolve topics as
  // URLs), while a publish grant is matched against the topic as written: a publisher allowed
  // `https://ex/users/{id}/profile` would reach subscribers of `https://ex/profile` with
  // `https://ex/users/../profile`. No canonical topic holds one.
  if (DOT_SEGMENT.test(topic)) {
    throw bad('a topic must not hold a dot segment ("." or ".." between slashes)');
  }
}

// `.` or `..`, plain or percent-encoded, as a whole path segment (`\` is `/` to the URL parser).
const DOT_SEGMENT = /(?:^|[/\\])(?:\.|%2e){1,2}(?=[/\\?#]|$)/i;

/**
 * [spec, draft-08] each topic MUST be resolved against the hub's URL using the URL parser […] A
 * topic addresses the reserved namespace when the resolved path component equals the path of
 * the hub's URL or begins with that path followed by `/` […] regardless of scheme or authority.
 * Before this comparison, the path MUST have its dot-segments removed and its percent-encoded
 * octets that correspond to unreserved characters decoded. […] A topic that cannot be parsed as
 * a URL reference against the hub's URL does not address the reserved namespace.
 */
export function addressesHub(topic: string, hubUrl: string): boolean {
  // Outside the `try`: a hub URL that does not parse (never one made from a checked Host) must
  // refuse the publish, not let it through as "not reserved".
  const hub = new URL(hubUrl).pathname;
  let path: string;
  try {
    const resolved = new URL(topic, hubUrl).pathname;
    // An opaque path (`urn:…`, `mailto:…`) is no hierarchical path: it names no hub path.
    if (!resolved.startsWith("/")) return false;
    // Decoding may make new dot segments (`%2E%2E`); parsing again removes them.
    path = new URL(`http://h${decodeUnreserved(resolved)}`).pathname;
  } catch {
    return false;
  }
  return path === hub || path.startsWith(`${hub}/`);
}

// RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~".
function decodeUnreserved(path: string): string {
  return path.replace(/%([0-9A-Fa-f]{2})/g, (encoded, hex: string) => {
    const c = String.fromCharCode(Number.parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(c) ? c : encoded;
  });
}

/** Checks a publisher's `id`; throws the 400 that refuses it. */
export function checkId(id: string): void {
  // [spec, draft-08] The provided ID MUST NOT start with the `#` character, MUST NOT be the
  // reserved value `earliest` […], and MUST NOT contain control characters […] or Unicode format
  // characters […] The hub MUST reject client-supplied IDs violating the character constraints
  // above with a 400 HTTP status code.
  if (id.startsWith("#")) throw bad('an id must not start with "#"');
  if (id === "earliest") throw bad('"earliest" is reserved: it asks for the whole history');
  if (hasForbiddenCharacter(id)) throw bad("an id must not contain control or format characters");
}

/** Checks a publisher's `type`; throws the 400 that refuses it. */
export function checkType(type: string): void {
  // [spec, draft-08] hubs MUST reject a publish request whose `type` is `mercure` with a 400
  // HTTP status code, so that a publisher cannot forge such events.
  if (type === "mercure") throw bad('type "mercure" is reserved for the hub\'s own events');
  // [spec, draft-08] The value MUST NOT contain control characters […] or Unicode format
  // characters […]; hubs MUST reject violating values with a 400 HTTP status code.
  if (hasForbiddenCharacter(type)) {
    throw bad("a type must not contain control or format characters");
  }
}

/** Reads a publisher's `retry`; throws the 400 that refuses it. */
export function readRetry(retry: string): number {
  // [spec, draft-08] The value MUST consist solely of ASCII digits (U+0030–U+0039); hubs MUST
  // reject violating values with a 400 HTTP status code.
  if (!/^\d{1,15}$/.test(retry)) throw bad("retry must be a whole number of milliseconds");
  const ms = Number(retry);
  // Beyond the spec: a value outside the range is refused rather than clamped, so the publisher
  // learns that its clients would not get what it asked for.
  if (ms < MIN_RETRY_MS || ms > MAX_RETRY_MS) {
    throw bad(`retry must be between ${MIN_RETRY_MS} and ${MAX_RETRY_MS} milliseconds`);
  }
  return ms;
}

function bad(message: string): CrierError {
  return new CrierError("CRIER_ERR_BAD_REQUEST", message);
}
