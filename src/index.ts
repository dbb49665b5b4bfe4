/**
 * `crier-hub`: the core. A hub that stores and fans out updates, its SSE encoder, its errors, and the
 * node:http binding. Loads no protocol, token or engine code: the Mercure endpoint is
 * `crier-hub/mercure`, the Redis backplane `crier-hub/redis`.
 */

export { type NodeRequest, type NodeResponse, subscribeNode } from "./adapters/node.ts";
export type { Backplane, Replay } from "./backplane/backplane.ts";
export { encodeComment, encodeEvent, encodeRetry, type SseEvent } from "./encoder.ts";
export { CrierError, type CrierErrorCode, isCrierError } from "./errors.ts";
export type { FanOutBacklog } from "./flush-queue.ts";
export { SSE_HEADERS } from "./head.ts";
export type { MemoryHistoryOptions } from "./history/memory.ts";
export {
  type CloseOptions,
  createHub,
  Hub,
  type HubEvents,
  type HubOptions,
  type HubStats,
  type SubscribeOptions,
} from "./hub.ts";
export { PUSHBACK_DEFAULTS, type PushbackOptions, type PushbackStats } from "./pushback.ts";
export {
  compileSelector,
  MAX_SELECTOR_LENGTH,
  type Selector,
  type SelectorInput,
} from "./selectors/selector.ts";
export type {
  CloseReason,
  Connection,
  OverflowPolicy,
  QueueOptions,
  Sink,
  Subscription,
} from "./subscriber.ts";
export type { Update, UpdateInput } from "./update.ts";
export type { Updates, UpdatesOptions } from "./updates.ts";
