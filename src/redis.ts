/**
 * `crier/redis`: the Redis backplane, on a path of its own so that importing `crier` never loads
 * a Redis client.
 *
 *   import { createHub } from "crier";
 *   import { RedisBackplane } from "crier/redis";
 *   const hub = createHub({ backplane: new RedisBackplane({ url: "redis://redis:6379" }) });
 */
export {
  RedisBackplane,
  type RedisBackplaneEvents,
  type RedisBackplaneOptions,
} from "./backplane/redis.ts";
export type { RedisHistoryOptions } from "./history/redis.ts";
