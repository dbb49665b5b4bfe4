/**
 * The Mercure endpoint as a Fetch handler, `(request: Request) => Promise<Response>`, for Bun,
 * Deno, Hono, Next route handlers and any runtime that answers a `Request`: the same routes as
 * the node:http listener (`createHandler`), run by the same handlers through a Fetch exchange.
 *
 *   import { createHub } from "crier-hub";
 *   import { createFetchHandler } from "crier-hub/mercure";
 *   const handler = createFetchHandler({ hub: createHub(), publisherKey, subscriberKey });
 *   Bun.serve({ fetch: handler });
 */
import { CrierError } from "../../errors.ts";
import { type HandlerOptions, resolveContext } from "./context.ts";
import { FetchExchange } from "./fetch-exchange.ts";
import { serve } from "./router.ts";

/** Options of {@link createFetchHandler}: the node:http handler's, less its `routes`. */
export interface FetchHandlerOptions extends Omit<HandlerOptions, "routes"> {
  /**
   * The client's address of a request (the Fetch API does not carry one): in Bun,
   * `(request) => server.requestIP(request)?.address`; in Deno, the handler's
   * `info.remoteAddr.hostname`, kept by request (a WeakMap) for this function to find. Used by `maxSubscribersPerIp` (required with it) and reported
   * with refused requests. Default none: the address is unknown.
   */
  readonly clientAddress?: ((request: Request) => string | undefined) | undefined;
}

/** A Fetch handler of the Mercure endpoint. */
export type FetchHandler = (request: Request) => Promise<Response>;

/**
 * The hub's routes (Mercure endpoint, subscriptions API, protected resource metadata, `/healthz`,
 * `/readyz`, home page) as a Fetch handler. Every request is answered: an event stream (a
 * `Response` whose body is a `ReadableStream`, ended when `request.signal` aborts or the body is
 * cancelled), or a status with a one-line reason. Routes match the request URL's full path
 * (`/.well-known/mercure`), so mount it where that path reaches it unchanged. Throws
 * `CRIER_ERR_INVALID_OPTION` for bad options; the handler rejects with it for a call without a
 * Fetch `Request`.
 */
export function createFetchHandler(options: FetchHandlerOptions): FetchHandler {
  if (typeof options !== "object" || options === null) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "createFetchHandler needs options: { hub, publisherKey?, subscriberKey?, … }",
    );
  }
  if ((options as HandlerOptions).routes !== undefined) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "routes takes node:http listeners: serve other paths from your framework, beside this handler",
    );
  }
  const { clientAddress } = options;
  if (clientAddress !== undefined && typeof clientAddress !== "function") {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "clientAddress must be a function (request) => the client's address",
    );
  }
  if ((options.maxSubscribersPerIp ?? 0) > 0 && clientAddress === undefined) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "maxSubscribersPerIp needs clientAddress: the Fetch API does not say who the client is",
    );
  }
  const ctx = resolveContext(options);
  return async (request) => {
    if (typeof request?.url !== "string" || typeof request.headers?.get !== "function") {
      throw new CrierError(
        "CRIER_ERR_INVALID_OPTION",
        "the Mercure Fetch handler takes a Fetch Request (with url, headers and signal)",
      );
    }
    // Outside the `try`: an app's clientAddress that throws is the app's error (the handler
    // rejects with it), not a client's bad Host.
    const address = clientAddress?.(request);
    let ex: FetchExchange;
    try {
      ex = new FetchExchange(request, address);
    } catch {
      // Its URL does not parse: the authority the runtime built it from (the Host) is no host.
      return new Response("the Host header is not a valid host[:port]\n", {
        status: 400,
        headers: { "Content-Type": "text/plain; charset=utf-8" },
      });
    }
    serve(ctx, ex);
    return ex.response;
  };
}
