/**
 * The end of a hub server: stop accepting, tell every subscriber to come back, and close within
 * a bound, for the plain and the TLS server alike.
 */
import type { Server } from "node:http";
import type { Http2SecureServer } from "node:http2";
import { CrierError } from "../../errors.ts";
import type { Hub } from "../../hub.ts";
import { durationOption, hubArgument } from "../../options.ts";
import { secureConnections } from "./secure.ts";

/**
 * Stops the hub and its server within `graceMs`: the hub closes (new subscriptions answered 503
 * with Retry-After; open streams ended with a `retry` hint, spread over `spreadMs` when given;
 * publishes in flight stored), then the server stops accepting and resolves once it has closed
 * or the grace has passed, whichever is first; connections still open then are dropped.
 */
export async function shutdown(
  server: Server | Http2SecureServer,
  hub: Hub,
  graceMs = 5000,
  spreadMs = 0,
): Promise<void> {
  if (typeof server?.close !== "function") {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "shutdown needs the server made by createHubServer (or any node:http server) first",
    );
  }
  hubArgument(hub, "shutdown's second argument");
  durationOption("graceMs", graceMs, 5000);
  durationOption("spreadMs", spreadMs, 0);
  const deadline = Date.now() + graceMs;
  // While the streams are being ended the server keeps answering, so that a new subscriber
  // hears 503 and Retry-After instead of a refused connection.
  await hub.close({ spreadMs: Math.min(spreadMs, graceMs) });
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // node:http2's server has it too (for its HTTP/1.1 connections), untyped.
  if ("closeIdleConnections" in server) server.closeIdleConnections();
  const secure = secureConnections.get(server as Http2SecureServer);
  // GOAWAY: each session ends once its streams have.
  for (const session of secure?.sessions ?? []) session.close();
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
    timer.unref();
  });
  await Promise.race([closed, grace]);
  clearTimeout(timer);
  if ("closeAllConnections" in server) server.closeAllConnections();
  for (const socket of secure?.sockets ?? []) socket.destroy();
}
