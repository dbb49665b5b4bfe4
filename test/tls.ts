/** A self-signed certificate for localhost and 127.0.0.1, made by openssl, and a TLS hub. */
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { Http2SecureServer } from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHub, type Hub, type HubOptions } from "../src/hub.ts";
import {
  createSecureHubServer,
  MERCURE_PATH,
  type SecureHubServerOptions,
  shutdown,
} from "../src/mercure/index.ts";
import { mintToken } from "../src/mercure/tokens/mint.ts";
import { SECRET } from "./helpers.ts";

export interface Certificate {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Where the files are, for the command line. */
  readonly certPath: string;
  readonly keyPath: string;
  remove(): void;
}

/** Makes a self-signed P-256 certificate valid for a day. */
export function selfSigned(): Certificate {
  const dir = mkdtempSync(join(tmpdir(), "crier-tls-"));
  const certPath = join(dir, "cert.pem");
  const keyPath = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-keyout",
      keyPath,
      "-out",
      certPath,
    ],
    { stdio: "ignore" },
  );
  return {
    cert: readFileSync(certPath),
    key: readFileSync(keyPath),
    certPath,
    keyPath,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface SecureTestHub {
  readonly hub: Hub;
  readonly server: Http2SecureServer;
  /** `https://127.0.0.1:<port>` */
  readonly origin: string;
  /** The Mercure endpoint. */
  readonly url: string;
  readonly publisherToken: string;
  close(): Promise<void>;
}

/** Starts a hub serving HTTPS (HTTP/2 and HTTP/1.1) on 127.0.0.1:0. */
export async function startSecureHub(
  certificate: Certificate,
  hubOptions: HubOptions = {},
  handler: Partial<Omit<SecureHubServerOptions, "cert" | "key">> = {},
): Promise<SecureTestHub> {
  const hub = createHub(hubOptions);
  const server = createSecureHubServer({
    hub,
    publisherKey: SECRET,
    subscriberKey: SECRET,
    anonymous: true,
    ...handler,
    cert: certificate.cert,
    key: certificate.key,
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const origin = `https://127.0.0.1:${port}`;
  return {
    hub,
    server,
    origin,
    url: `${origin}${MERCURE_PATH}`,
    publisherToken: await mintToken(SECRET, { publish: ["*"] }),
    close: () => shutdown(server, hub, 1000),
  };
}
