/**
 * Mercure discovery: the `Link` header an application sends with a resource so that clients find
 * the hub (`rel="mercure"`) and the topic to subscribe to (`rel="self"`).
 */
import { CrierError } from "../errors.ts";
import { kindOf, objectArgument, stringOption } from "../options.ts";

/** What {@link discoveryLink} advertises besides the hub. Every field is optional. */
export interface DiscoveryOptions {
  /** The topic's canonical URL, as `rel="self"`. Default: omitted (clients use the resource URL). */
  readonly self?: string | undefined;
  /**
   * The id of the newest update when the resource was generated (`last-event-id` attribute);
   * the client passes it back as `lastEventID` so it misses nothing in between. Default: omitted.
   */
  readonly lastEventId?: string | undefined;
  /** Content type of the updates (`content-type` attribute), e.g. JSON Patch. Default: omitted. */
  readonly contentType?: string | undefined;
}

/**
 * The value of a `Link` header advertising one or more hubs, and optionally the topic:
 *
 * ```ts
 * res.setHeader("Link", discoveryLink("https://example.com/.well-known/mercure", { self: "/books/foo" }));
 * // </books/foo>; rel="self", <https://example.com/.well-known/mercure>; rel="mercure"
 * ```
 *
 * Throws `CRIER_ERR_INVALID_OPTION` for a URL or attribute that would break the header
 * (control characters, `<`, `>`, or a URL with a space).
 */
export function discoveryLink(
  hubs: string | readonly string[],
  options: DiscoveryOptions = {},
): string {
  objectArgument(options, "discoveryLink's options are { self?, lastEventId?, contentType? }");
  for (const name of ["self", "lastEventId", "contentType"] as const) {
    stringOption(name, options[name]);
  }
  const links: string[] = [];
  // [spec] The publisher MAY include one Link Header with `rel=self` (the self link header). It
  // SHOULD contain the canonical URL for the topic.
  if (options.self !== undefined) links.push(`<${target(options.self)}>; rel="self"`);
  // [spec] The publisher SHOULD include at least one Link Header with `rel=mercure` (a hub link
  // header). The target URL of such links MUST be a hub implementing the Mercure protocol.
  const list = typeof hubs === "string" ? [hubs] : hubs;
  if (!Array.isArray(list) || !list.every((hub) => typeof hub === "string")) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `discoveryLink needs the hub URL, or an array of them, as strings; got ${kindOf(hubs)}`,
    );
  }
  if (list.length === 0) {
    throw new CrierError("CRIER_ERR_INVALID_OPTION", "discoveryLink needs at least one hub URL");
  }
  for (const hub of list) {
    let link = `<${target(hub)}>; rel="mercure"`;
    // [spec] `last-event-id`: the identifier of the last event dispatched by the publisher at
    // the time the resource was generated. `content-type`: the content type of the updates.
    if (options.lastEventId !== undefined) {
      link += `; last-event-id=${quoted(options.lastEventId)}`;
    }
    if (options.contentType !== undefined) {
      link += `; content-type=${quoted(options.contentType)}`;
    }
    links.push(link);
  }
  return links.join(", ");
}

function target(url: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point: they are refused.
  if (url === "" || /[\u0000-\u0020<>\u007f]/.test(url)) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${JSON.stringify(url)} cannot be a Link target: percent-encode spaces, <, > and controls`,
    );
  }
  return url;
}

// RFC 8288 attribute values as RFC 7230 quoted-strings: `"` and `\` escaped, no controls.
function quoted(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point: they are refused.
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "a Link attribute cannot hold a control character",
    );
  }
  return `"${value.replace(/["\\]/g, "\\$&")}"`;
}
