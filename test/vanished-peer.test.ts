/**
 * A subscriber whose peer vanishes without a FIN or RST, made real: the client runs in a
 * network namespace this test creates (a veth pair on a /30 of its own), and its link is then
 * taken down, so the hub's keep-alives go unacknowledged and nothing ever answers.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { createHub, type Hub } from "../src/hub.ts";
import { createHubServer, shutdown } from "../src/mercure/index.ts";
import { SECRET, until } from "./helpers.ts";

const NS = `crier-vp-${process.pid}`;
const HOST_IF = `cvh${process.pid % 100_000}`;
const PEER_IF = `cvp${process.pid % 100_000}`;
// Addresses exist only on this test's own veth pair and namespace.
const HOST_IP = "10.231.7.1";
const PEER_IP = "10.231.7.2";

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: "pipe" });
}

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return "needs root to make a network namespace";
  try {
    ip("netns", "add", `${NS}-check`);
    ip("netns", "del", `${NS}-check`);
    return false;
  } catch (err) {
    return `this kernel or sandbox cannot make a network namespace (ip netns): ${(err as Error).message.split("\n")[0]}`;
  }
}

const skip = skipReason();

describe("a subscriber whose peer vanishes without closing", { skip, timeout: 60_000 }, () => {
  let hub: Hub;
  let server: ReturnType<typeof createHubServer>;
  let client: ChildProcess | undefined;

  before(() => {
    ip("netns", "add", NS);
    ip("link", "add", HOST_IF, "type", "veth", "peer", "name", PEER_IF);
    ip("link", "set", PEER_IF, "netns", NS);
    ip("addr", "add", `${HOST_IP}/30`, "dev", HOST_IF);
    ip("link", "set", HOST_IF, "up");
    ip("netns", "exec", NS, "ip", "addr", "add", `${PEER_IP}/30`, "dev", PEER_IF);
    ip("netns", "exec", NS, "ip", "link", "set", PEER_IF, "up");
  });

  after(async () => {
    client?.kill("SIGKILL");
    if (server !== undefined) await shutdown(server, hub, 1000);
    try {
      ip("link", "del", HOST_IF);
    } catch {
      // Gone with the namespace already.
    }
    ip("netns", "del", NS);
  });

  test("is reaped once its keep-alives stay unacknowledged for two intervals", async () => {
    const keepAliveMs = 500;
    hub = createHub({ keepAliveMs });
    server = createHubServer({ hub, publisherKey: SECRET, subscriberKey: SECRET, anonymous: true });
    server.listen(0, HOST_IP);
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    const reasons: string[] = [];
    hub.on("disconnect", (_, reason) => reasons.push(reason));

    // A client in the namespace that subscribes and reads forever.
    const script = `
      const s = require("node:net").connect(${port}, "${HOST_IP}", () =>
        s.write("GET /.well-known/mercure?topic=t HTTP/1.1\\r\\nHost: hub\\r\\n\\r\\n"));
      s.on("data", () => {}); s.on("error", () => {}); setInterval(() => {}, 1000);`;
    client = spawn("ip", ["netns", "exec", NS, process.execPath, "-e", script], {
      stdio: "ignore",
    });
    await until(() => hub.stats.subscribers === 1, "the subscriber in the namespace", 20_000);

    // The peer's link goes down: no FIN, no RST, the keep-alives are never acknowledged.
    ip("netns", "exec", NS, "ip", "link", "set", PEER_IF, "down");
    // Without the bound the kernel retransmits for about 15 minutes; with it, about 1.5 s here.
    // The deadline is generous for a shared machine.
    await until(() => hub.stats.subscribers === 0, "the vanished subscriber to be reaped", 20_000);
    assert.deepEqual(reasons, ["stalled"]);
  });
});
