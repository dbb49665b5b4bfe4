/**
 * The response head of an event stream: what every transport sends before the first byte.
 * Headers are plain name/value pairs here; each adapter writes them its own way.
 */

/** The headers of every event stream. */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  "Content-Type": "text/event-stream",
  // No cache or proxy may store or transform the stream.
  "Cache-Control": "private, no-cache, no-store, must-revalidate, max-age=0",
  // nginx buffers proxied responses unless told not to, which would hold events back.
  "X-Accel-Buffering": "no",
};

/**
 * The head of one stream: the SSE headers, the caller's own (CORS, …), and, when known, the id
 * the stream resumes after, as `Last-Event-ID` for v0.x clients and `Mercure-Last-Event-ID` for
 * draft-08 ones: `earliest` when the history no longer reaches the asked id. Header values are
 * bytes: the id goes out as UTF-8, which is how EventSource reads it back.
 */
export function streamHead(
  extra: Readonly<Record<string, string>> | undefined,
  lastEventId: string | undefined,
): Record<string, string> {
  const head = { ...SSE_HEADERS, ...extra };
  if (lastEventId === undefined) return head;
  const value = Buffer.from(lastEventId, "utf8").toString("latin1");
  head["Last-Event-ID"] = value;
  head["Mercure-Last-Event-ID"] = value;
  return head;
}

/**
 * The `Last-Event-ID` of a request's headers (node:http's shape: lower-case names), decoded by
 * {@link headerText}; `undefined` when absent or empty.
 */
export function lastEventIdOf(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): string | undefined {
  const header = headers["last-event-id"];
  if (typeof header !== "string" || header === "") return undefined;
  return headerText(header);
}

/**
 * A request header's value as text. Header values are bytes, which node:http and the Fetch
 * `Headers` both read as latin1; browsers send `Last-Event-ID` as UTF-8, so the bytes are
 * decoded back, and an id with non-ASCII characters resumes exactly. A value that is not valid
 * UTF-8 (it does not encode back to the same bytes) is kept as it came.
 */
export function headerText(header: string): string {
  const utf8 = Buffer.from(header, "latin1").toString("utf8");
  return Buffer.from(utf8, "utf8").toString("latin1") === header ? utf8 : header;
}
