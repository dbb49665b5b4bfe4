/**
 * The NATS client, loaded when a backplane is made (never when `crier-hub/nats` is imported),
 * and the connection options a URL stands for.
 */
import type { NodeConnectionOptions } from "@nats-io/transport-node";
import { CrierError } from "../errors.ts";
import { loadPeer, type Require, requirePeer } from "./peer.ts";
import { redactUrl } from "./redis-connect.ts";

/** The client options `text` (a `nats://` or `tls://` URL) stands for: host and port, TLS, credentials. */
export function serverOptions(text: string): Partial<NodeConnectionOptions> {
  const refuse = (why: string) =>
    new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `the NATS URL ${JSON.stringify(redactUrl(text))} ${why}`,
    );
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw refuse("is not a URL");
  }
  const decode = (part: string, what: string): string => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw refuse(`has a ${what} that is not percent-encoded UTF-8`);
    }
  };
  const options: Partial<NodeConnectionOptions> = {
    servers: `${url.hostname}:${url.port || "4222"}`,
  };
  if (url.protocol === "tls:") options.tls = {};
  if (url.username !== "" && url.password !== "") {
    options.user = decode(url.username, "user");
    options.pass = decode(url.password, "password");
  } else if (url.username !== "") {
    options.token = decode(url.username, "token");
  } else if (url.password !== "") {
    // `nats://:secret@host` would be sent as no credentials at all.
    throw refuse("has a password and no user: give user:password@, or a token as TOKEN@");
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
