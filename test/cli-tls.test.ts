/** `crier --tls-cert --tls-key`: the command serves HTTPS with HTTP/2, or refuses to start. */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { connect, type IncomingHttpHeaders } from "node:http2";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { crier, KEY, serve } from "./cli-harness.ts";
import { type Certificate, selfSigned } from "./tls.ts";

async function refused(args: string[], env: Record<string, string>, reason: RegExp) {
  const run = crier(args, { CRIER_JWT_KEY: KEY, ...env });
  // A hub that starts instead of refusing is stopped, and the test fails on its exit code.
  const timer = setTimeout(() => run.child.kill("SIGKILL"), 15_000);
  const code = await run.exit;
  clearTimeout(timer);
  assert.equal(code, 2, `${run.stdout}${run.stderr}`);
  assert.match(run.stderr.split("\n")[0] ?? "", reason);
}

describe("the crier command over TLS", () => {
  let certificate: Certificate;
  before(() => {
    certificate = selfSigned();
  });
  after(() => certificate.remove());

  test("refuses a certificate without its key, and a key without its certificate", async () => {
    await refused(
      ["--tls-cert", certificate.certPath],
      {},
      /^crier: --tls-cert needs --tls-key \(CRIER_TLS_KEY\) too/,
    );
    await refused(
      [],
      { CRIER_TLS_KEY: certificate.keyPath },
      /^crier: CRIER_TLS_KEY needs --tls-cert \(CRIER_TLS_CERT\) too/,
    );
  });

  test("refuses a file it cannot read, naming the setting and the path", async () => {
    await refused(
      ["--tls-cert", "/nonexistent/cert.pem", "--tls-key", certificate.keyPath],
      {},
      /^crier: --tls-cert: cannot read "\/nonexistent\/cert\.pem" \(ENOENT\)$/,
    );
  });

  test("refuses files that are not a certificate and its key", async () => {
    await refused(
      ["--tls-cert", certificate.keyPath, "--tls-key", certificate.certPath],
      {},
      /^crier: --tls-cert and --tls-key are not a PEM certificate and its private key/,
    );
  });

  test("refuses a key that is not the certificate's, even one of another type", async () => {
    // OpenSSL loads an RSA key beside an EC certificate, and then fails every handshake.
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const rsaPath = join(dirname(certificate.keyPath), "rsa.pem");
    writeFileSync(rsaPath, privateKey.export({ type: "pkcs8", format: "pem" }));
    await refused(
      ["--tls-cert", certificate.certPath, "--tls-key", rsaPath],
      {},
      /^crier: --tls-key is not the private key of --tls-cert's certificate$/,
    );
  });

  test("serves HTTP/2 over HTTPS and stops on SIGTERM", async () => {
    const { run, url } = await serve([], {
      CRIER_JWT_KEY: KEY,
      CRIER_ANONYMOUS: "1",
      CRIER_TLS_CERT: certificate.certPath,
      CRIER_TLS_KEY: certificate.keyPath,
    });
    try {
      assert.match(url, /^https:\/\/127\.0\.0\.1:\d+\/\.well-known\/mercure$/);
      const session = connect(new URL(url).origin, { rejectUnauthorized: false });
      session.on("error", () => {});
      const stream = session.request({ ":path": "/.well-known/mercure?topic=a" });
      const [headers] = (await once(stream, "response")) as [IncomingHttpHeaders];
      assert.equal(headers[":status"], 200);
      const [first] = (await once(stream, "data")) as [Buffer];
      assert.equal(first.toString(), ":\n");
      run.child.kill("SIGTERM");
      assert.equal(await run.exit, 0);
      session.destroy();
    } finally {
      run.child.kill("SIGKILL");
    }
  });
});
