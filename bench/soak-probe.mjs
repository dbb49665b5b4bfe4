/**
 * Loaded into the hub only by the `soak` bench scenario (`node --expose-gc --import
 * ./bench/soak-probe.mjs dist/cli/main.js …`), never by the hub itself: on SIGUSR2 it forces a
 * full GC and writes the process's facts to /tmp/crier-soak-probe-<pid>.json: heap used after
 * the GC, RSS, open file descriptors, and the event-loop delay since the previous probe.
 */
import { readdirSync, writeFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";

const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();

process.on("SIGUSR2", () => {
  const loop = { p99Ms: delay.percentile(99) / 1e6, maxMs: delay.max / 1e6 };
  globalThis.gc?.();
  globalThis.gc?.();
  const memory = process.memoryUsage();
  const facts = {
    at: Date.now(),
    heapUsedAfterGcMB: Math.round(memory.heapUsed / 1e5) / 10,
    rssMB: Math.round(memory.rss / 1e5) / 10,
    arrayBuffersMB: Math.round(memory.arrayBuffers / 1e5) / 10,
    fds: readdirSync("/proc/self/fd").length,
    loopDelayP99Ms: Math.round(loop.p99Ms * 100) / 100,
    loopDelayMaxMs: Math.round(loop.maxMs * 100) / 100,
    gcExposed: typeof globalThis.gc === "function",
  };
  writeFileSync(`/tmp/crier-soak-probe-${process.pid}.json`, JSON.stringify(facts));
  // The GC above is the probe's own pause: not counted in the next window.
  delay.reset();
});
