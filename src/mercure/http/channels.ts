/**
 * What the Mercure routes report to observers (metrics, logs), through `node:diagnostics_channel`:
 * the routes know nothing of who listens, and publish nothing when nobody does.
 *
 *   crier:mercure:publish   every publish answered: status, error code, event id, topic count
 *   crier:mercure:refused   every request answered with an error: route, status, code, reason
 *
 * Messages never hold a token, a cookie or a query string: only the client's address.
 */
import diagnostics from "node:diagnostics_channel";
import { CrierError } from "../../errors.ts";
import type { Exchange } from "./exchange.ts";

/** A publish request's outcome. */
export interface PublishMessage {
  /** The status answered: 200 accepted, 4xx refused, 503 unavailable. */
  readonly status: number;
  /** The error's code when refused (`CRIER_ERR_FORBIDDEN`, …). */
  readonly code: string | undefined;
  /** The stored event's id, when accepted. */
  readonly id: string | undefined;
  readonly topics: number;
}

/** A request answered with an error. */
export interface RefusedMessage {
  readonly route: "publish" | "subscribe" | "subscriptions" | "dashboard";
  readonly status: number;
  readonly code: string | undefined;
  /** The one-line reason the client was given. */
  readonly reason: string;
  /** The client's address (the socket's peer; no forwarded header is trusted). */
  readonly address: string | undefined;
}

export const PUBLISH_CHANNEL = "crier:mercure:publish";
export const REFUSED_CHANNEL = "crier:mercure:refused";
const publishChannel = diagnostics.channel(PUBLISH_CHANNEL);
const refusedChannel = diagnostics.channel(REFUSED_CHANNEL);

/** Reports a publish outcome, if anyone listens. */
export function reportPublish(message: PublishMessage): void {
  if (publishChannel.hasSubscribers) publishChannel.publish(message);
}

/** Reports an error answer, if anyone listens. */
export function reportRefused(route: RefusedMessage["route"], ex: Exchange, err: unknown): void {
  if (!refusedChannel.hasSubscribers) return;
  const known = err instanceof CrierError;
  const message: RefusedMessage = {
    route,
    status: known ? err.status : 500,
    code: known ? err.code : undefined,
    reason: known ? err.message : "internal error",
    address: ex.remoteAddress,
  };
  refusedChannel.publish(message);
}
