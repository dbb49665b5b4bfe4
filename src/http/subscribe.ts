/**
 * `GET /.well-known/mercure?topic=…`: the subscription endpoint. Topics are repeatable; the
 * token (optional when anonymous subscribers are allowed) decides which private updates reach the
 * subscriber; a resume point comes from `Last-Event-ID`, or the `lastEventID` / `last_event_id`
 * query parameters when the client cannot set headers (the header wins).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { tokenOf } from "../auth.ts";
import { CrierError } from "../errors.ts";
import { sendError } from "./respond.ts";
import type { HttpContext } from "./server.ts";

export async function handleSubscribe(
  ctx: HttpContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  cors: Readonly<Record<string, string>>,
): Promise<void> {
  try {
    const topics = url.searchParams.getAll("topic");
    if (topics.length === 0) {
      throw new CrierError("CRIER_ERR_BAD_REQUEST", "at least one topic parameter is required");
    }
    if (topics.length > ctx.maxTopics) {
      throw new CrierError(
        "CRIER_ERR_BAD_REQUEST",
        `at most ${ctx.maxTopics} topics per subscription`,
      );
    }
    if (topics.includes(""))
      throw new CrierError("CRIER_ERR_BAD_REQUEST", "a topic parameter is empty");
    const token = tokenOf(req);
    let authorized: readonly string[] = [];
    if (token !== undefined) {
      authorized = (await ctx.auth.verify(token, "subscriber")).subscribe;
    } else if (!ctx.anonymous) {
      throw new CrierError("CRIER_ERR_UNAUTHORIZED", "a subscriber token is required");
    }
    if (res.destroyed) return;
    const header = req.headers["last-event-id"];
    const lastEventId =
      (typeof header === "string" && header !== "" ? header : undefined) ??
      url.searchParams.get("lastEventID") ??
      url.searchParams.get("last_event_id") ??
      undefined;
    ctx.hub.subscribe(req, res, { topics, authorized, lastEventId, headers: cors });
  } catch (err) {
    sendError(res, err, cors);
  }
}
