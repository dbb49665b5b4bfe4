/**
 * `POST /.well-known/mercure`: the publish endpoint. Form-encoded fields `topic` (repeatable,
 * the first canonical), `data`, `id`, `type`, `retry`, `private`; the publisher's token must
 * cover every topic. Answers 200 with the event id as `text/plain`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { CrierError } from "../../errors.ts";
import { ANY_TOPIC, coversAll } from "../../selectors/selector.ts";
import type { UpdateInput } from "../../update.ts";
import { RESERVED_PREFIX } from "../paths.ts";
import { readBody } from "./body.ts";
import { reportPublish, reportRefused } from "./channels.ts";
import type { HttpContext } from "./context.ts";
import { isTrustedOrigin } from "./origin.ts";
import { sendError, sendText } from "./respond.ts";
import { verifyRequest } from "./token.ts";

export async function handlePublish(
  ctx: HttpContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  cors: Readonly<Record<string, string>>,
): Promise<void> {
  let topics = 0;
  try {
    const verified = await verifyRequest(ctx, req, url, "publisher");
    if (verified === undefined) {
      throw new CrierError("CRIER_ERR_UNAUTHORIZED", "a publisher token is required");
    }
    const { claims } = verified;
    // A cookie is sent by the browser whichever site made the request (CSRF): a publish that
    // authenticates with one must come from the hub's own origin or an allowed CORS origin.
    if (verified.via === "cookie" && !isTrustedOrigin(req, ctx.corsOrigins)) {
      throw new CrierError(
        "CRIER_ERR_FORBIDDEN",
        "a publish authenticated by cookie needs an Origin (or Referer) the hub allows",
      );
    }
    const type = req.headers["content-type"] ?? "";
    if (!/^application\/x-www-form-urlencoded\s*(;|$)/i.test(type)) {
      throw new CrierError(
        "CRIER_ERR_UNSUPPORTED_MEDIA_TYPE",
        "the body must be application/x-www-form-urlencoded",
      );
    }
    const form = new URLSearchParams((await readBody(req, ctx.maxBodyBytes)).toString("utf8"));
    const update = parseForm(form, ctx.maxTopics);
    // The hub alone speaks on its reserved topics (subscription events): a publisher could
    // otherwise forge them.
    if ((update.topics as string[]).some(isReserved)) {
      throw new CrierError(
        "CRIER_ERR_FORBIDDEN",
        `topics under ${RESERVED_PREFIX} are reserved for the hub`,
      );
    }
    if (!coversAll(claims.publish, update.topics as string[])) {
      throw new CrierError(
        "CRIER_ERR_FORBIDDEN",
        "the token does not allow publishing to these topics",
      );
    }
    topics = update.topics.length;
    const stored = await ctx.hub.publish(update);
    sendText(res, 200, stored.id, cors);
    reportPublish({ status: 200, code: undefined, id: stored.id, topics });
  } catch (err) {
    const status = err instanceof CrierError ? err.status : 500;
    const code = err instanceof CrierError ? err.code : undefined;
    reportPublish({ status, code, id: undefined, topics });
    reportRefused("publish", req, err);
    // An oversized body is refused before it is read; close so the rest is not parsed as a request.
    if (err instanceof CrierError && err.status === 413) res.shouldKeepAlive = false;
    sendError(res, err, cors);
  }
}

function isReserved(topic: string): boolean {
  if (topic.startsWith(RESERVED_PREFIX)) return true;
  try {
    return new URL(topic).pathname.startsWith(RESERVED_PREFIX);
  } catch {
    return false;
  }
}

/** Reads the Mercure publish form; throws `CRIER_ERR_BAD_REQUEST` for a missing or bad field. */
export function parseForm(form: URLSearchParams, maxTopics: number): UpdateInput {
  const topics = form.getAll("topic");
  if (topics.length === 0) throw new CrierError("CRIER_ERR_BAD_REQUEST", "missing topic field");
  if (topics.length > maxTopics) {
    throw new CrierError("CRIER_ERR_BAD_REQUEST", `at most ${maxTopics} topics per update`);
  }
  if (topics.includes(ANY_TOPIC)) {
    throw new CrierError("CRIER_ERR_BAD_REQUEST", 'topic "*" is a selector; publish to a topic');
  }
  const retry = form.get("retry");
  if (retry !== null && !/^\d{1,15}$/.test(retry)) {
    throw new CrierError("CRIER_ERR_BAD_REQUEST", "retry must be a whole number of milliseconds");
  }
  return {
    topics,
    data: form.get("data") ?? undefined,
    id: form.get("id") ?? undefined,
    type: form.get("type") ?? undefined,
    retry: retry === null ? undefined : Number(retry),
    private: form.has("private"),
  };
}
