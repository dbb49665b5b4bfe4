/** Crier: a Server-Sent Events broadcast hub. The whole public API. */

export type { Backplane, Replay } from "./backplane/backplane.ts";
export { encodeComment, encodeEvent, encodeRetry, type SseEvent } from "./encoder.ts";
export { CrierError, type CrierErrorCode, isCrierError } from "./errors.ts";
export type { MemoryHistoryOptions } from "./history/memory.ts";
export {
  createHub,
  Hub,
  type HubEvents,
  type HubOptions,
  type HubStats,
  type SubscribeOptions,
  type Subscription,
} from "./hub.ts";
export { type DiscoveryOptions, discoveryLink } from "./mercure/discovery.ts";
export {
  createHandler,
  createHubServer,
  type HandlerOptions,
  MERCURE_PATH,
  shutdown,
} from "./mercure/http/server.ts";
export {
  type ActiveSubscription,
  type MatchType,
  SUBSCRIPTIONS_PATH,
} from "./mercure/subscriptions.ts";
export { mintToken, type TokenOptions } from "./mercure/tokens/mint.ts";
export {
  Authenticator,
  type AuthenticatorOptions,
  type Claims,
  payloadFor,
} from "./mercure/tokens/verify.ts";
export {
  compileSelector,
  MAX_SELECTOR_LENGTH,
  type Selector,
  type SelectorInput,
} from "./selectors/selector.ts";
export type { CloseReason, OverflowPolicy, QueueOptions, Sink } from "./subscriber.ts";
export type { Update, UpdateInput } from "./update.ts";
