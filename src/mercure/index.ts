/**
 * `crier-hub/mercure`: the Mercure protocol over a Crier hub. The HTTP endpoint (subscribe, publish,
 * the subscriptions API), tokens (verify and mint), discovery, and the registry of active
 * subscriptions.
 *
 *   import { createHub } from "crier-hub";
 *   import { createHubServer } from "crier-hub/mercure";
 *   createHubServer({ hub: createHub(), publisherKey, subscriberKey }).listen(3000);
 *   // or, on any Fetch runtime (Bun, Deno, Hono, Next):
 *   const handler = createFetchHandler({ hub: createHub(), publisherKey, subscriberKey });
 */

export type {
  DashboardOptions,
  DashboardSample,
  DashboardSnapshot,
} from "../ops/dashboard.ts";
export { type ActiveSubscriptions, activeSubscriptionsOf } from "./active.ts";
export { type DiscoveryOptions, discoveryLink } from "./discovery.ts";
export type { HandlerOptions } from "./http/context.ts";
export { DASHBOARD_JSON_PATH } from "./http/dashboard.ts";
export {
  createFetchHandler,
  type FetchHandler,
  type FetchHandlerOptions,
} from "./http/fetch-handler.ts";
export type { HubServerOptions } from "./http/limits.ts";
export { createSecureHubServer, type SecureHubServerOptions } from "./http/secure.ts";
export { createHandler, createHubServer } from "./http/server.ts";
export { shutdown } from "./http/shutdown.ts";
export { MERCURE_PATH, SUBSCRIPTIONS_PATH } from "./paths.ts";
export type { ActiveSubscription, MatchType } from "./subscriptions.ts";
export {
  type AccessTokenOptions,
  mintAccessToken,
  mintToken,
  type TokenOptions,
  type TopicMatcher,
} from "./tokens/mint.ts";
export {
  Authenticator,
  type AuthenticatorOptions,
  type Claims,
  payloadFor,
} from "./tokens/verify.ts";
