/** A self-signed certificate for localhost and 127.0.0.1, made by openssl, and a TLS hub. */
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

/** Makes a self-signed P-256 certificate that was valid for one day of 2020 only. */
export function expiredCertificate(): Certificate {
  const dir = mkdtempSync(join(tmpdir(), "crier-tls-expired-"));
  const at = (name: string) => join(dir, name);
  writeFileSync(at("index.txt"), "");
  writeFileSync(at("serial"), "01\n");
  // `openssl ca` is the one openssl 3.0 command that takes dates in the past.
  writeFileSync(
    at("ca.cnf"),
    [
      "[ ca ]",
      "default_ca = d",
      "[ d ]",
      "database = index.txt",
      "new_certs_dir = .",
      "serial = serial",
      "default_md = sha256",
      "policy = p",
      "[ p ]",
      "commonName = supplied",
      "",
    ].join("\n"),
  );
  const openssl = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  openssl([
    ...["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
    ...["-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "csr.pem"],
  ]);
  openssl([
    ...["ca", "-batch", "-selfsign", "-config", "ca.cnf", "-keyfile", "key.pem", "-in", "csr.pem"],
    ...["-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-notext"],
    ...["-out", "cert.pem"],
  ]);
  return {
    cert: readFileSync(at("cert.pem")),
    key: readFileSync(at("key.pem")),
    certPath: at("cert.pem"),
    keyPath: at("key.pem"),
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
