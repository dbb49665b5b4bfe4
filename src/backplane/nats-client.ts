/**
 * The NATS client, loaded when a backplane is made (never when `crier-hub/nats` is imported),
 * and the connection options a URL stands for.
 */
import type { NodeConnectionOptions } from "@nats-io/transport-node";
import { loadPeer, type Require, requirePeer } from "./peer.ts";

/** The client options `text` (a `nats://` or `tls://` URL) stands for: host and port, TLS, credentials. */
export function serverOptions(text: string): Partial<NodeConnectionOptions> {
  const url = new URL(text);
  const options: Partial<NodeConnectionOptions> = {
    servers: `${url.hostname}:${url.port || "4222"}`,
  };
  if (url.protocol === "tls:") options.tls = {};
  if (url.username !== "" && url.password !== "") {
    options.user = decodeURIComponent(url.username);
    options.pass = decodeURIComponent(url.password);
  } else if (url.username !== "") {
    options.token = decodeURIComponent(url.username);
  }
  return options;
}

const NATS_PEERS =
  "crier-hub/nats needs @nats-io/transport-node and @nats-io/jetstream, optional peer dependencies: npm install @nats-io/transport-node @nats-io/jetstream";

/**
 * Loads `@nats-io/transport-node`, an optional peer dependency (only `crier-hub/nats` needs
 * it), with an error that says how to install it. `load` is for tests.
 */
export function loadNats(load: Require = requirePeer): typeof import("@nats-io/transport-node") {
  return loadPeer(
    load,
    "@nats-io/transport-node",
    NATS_PEERS,
  ) as typeof import("@nats-io/transport-node");
}

/** Loads `@nats-io/jetstream`, as {@link loadNats} loads the client. */
export function loadJetStream(): typeof import("@nats-io/jetstream") {
  return loadPeer(
    requirePeer,
    "@nats-io/jetstream",
    NATS_PEERS,
  ) as typeof import("@nats-io/jetstream");
}
