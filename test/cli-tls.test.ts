/** `crier --tls-cert --tls-key`: the command serves HTTPS with HTTP/2, or refuses to start. */
import assert from "node:assert/strict";
import { createPrivateKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type ClientHttp2Session, connect, type IncomingHttpHeaders } from "node:http2";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { mintToken } from "../src/mercure/tokens/mint.ts";
import { crier, KEY, serve, waitFor } from "./cli-harness.ts";
import { sleep } from "./helpers.ts";
import { type Certificate, expiredCertificate, selfSigned } from "./tls.ts";

const fingerprint = (certificate: Certificate) =>
  new X509Certificate(certificate.cert).fingerprint256;

/** The fingerprint of the certificate a new TLS connection to `url` is given. */
async function served(url: string): Promise<string | undefined> {
  const { hostname, port } = new URL(url);
  const socket = tlsConnect({ host: hostname, port: Number(port), rejectUnauthorized: false });
  try {
    await once(socket, "secureConnect");
    return socket.getPeerX509Certificate()?.fingerprint256;
  } finally {
    socket.destroy();
  }
}

/** Publishes `data` to `topic` over an HTTP/2 session; resolves with the status. */
async function publishOver(session: ClientHttp2Session, topic: string, data: string) {
  const token = await mintToken(KEY, { publish: ["*"] });
  const request = session.request({
    ":method": "POST",
    ":path": "/.well-known/mercure",
    authorization: `Bearer ${token}`,
    "content-type": "application/x-www-form-urlencoded",
  });
  request.end(new URLSearchParams({ topic, data }).toString());
  const [headers] = (await once(request, "response")) as [IncomingHttpHeaders];
  request.resume();
  return headers[":status"];
}

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

  test("refuses an encrypted key, saying so instead of OpenSSL's 'interrupted or cancelled'", async () => {
    const encrypted = createPrivateKey(certificate.key).export({
      type: "pkcs8",
      format: "pem",
      cipher: "aes-256-cbc",
      passphrase: "a passphrase",
    });
    const encryptedPath = join(dirname(certificate.keyPath), "encrypted.pem");
    writeFileSync(encryptedPath, encrypted);
    await refused(
      ["--tls-cert", certificate.certPath, "--tls-key", encryptedPath],
      {},
      /^crier: --tls-key is encrypted \(it needs a passphrase\): give its key unencrypted/,
    );
  });

  test("reloads the certificate on SIGHUP, keeping open streams, and keeps it when the new files are wrong", async () => {
    const dir = mkdtempSync(join(tmpdir(), "crier-tls-reload-"));
    const certPath = join(dir, "cert.pem");
    const keyPath = join(dir, "key.pem");
    writeFileSync(certPath, certificate.cert);
    writeFileSync(keyPath, certificate.key);
    const renewed = selfSigned();
    const { run, url } = await serve(["--tls-cert", certPath, "--tls-key", keyPath], {
      CRIER_JWT_KEY: KEY,
      CRIER_ANONYMOUS: "1",
    });
    const session = connect(new URL(url).origin, { rejectUnauthorized: false });
    session.on("error", () => {});
    try {
      assert.equal(await served(url), fingerprint(certificate));
      const stream = session.request({ ":path": "/.well-known/mercure?topic=a" });
      const [headers] = (await once(stream, "response")) as [IncomingHttpHeaders];
      assert.equal(headers[":status"], 200);
      await once(stream, "data");

      writeFileSync(certPath, renewed.cert);
      writeFileSync(keyPath, renewed.key);
      run.child.kill("SIGHUP");
      await waitFor(() => /certificate reloaded/.exec(run.stdout) ?? undefined, "the reload");
      assert.equal(await served(url), fingerprint(renewed));
      // The stream opened before the reload still delivers.
      const received = once(stream, "data");
      assert.equal(await publishOver(session, "a", "after the reload"), 200);
      const [chunk] = (await received) as [Buffer];
      assert.match(chunk.toString(), /data: after the reload\n/);

      // A key that is not the certificate's: logged, and the renewed pair is still served.
      writeFileSync(keyPath, certificate.key);
      run.child.kill("SIGHUP");
      const line = await waitFor(
        () => /.*certificate not reloaded.*/.exec(run.stdout)?.[0],
        "the refused reload",
      );
      assert.match(line, /--tls-key is not the private key of --tls-cert's certificate/);
      assert.equal(await served(url), fingerprint(renewed));
      session.close();
      run.child.kill("SIGTERM");
      assert.equal(await run.exit, 0, `${run.stdout}${run.stderr}`);
    } finally {
      session.destroy();
      run.child.kill("SIGKILL");
      renewed.remove();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("with --workers, SIGHUP to the primary reloads the certificate in every worker", async () => {
    const dir = mkdtempSync(join(tmpdir(), "crier-tls-workers-"));
    const { run } = await serve(
      ["--workers", "2", "--history-file", join(dir, "history"), "--anonymous"],
      {
        CRIER_JWT_KEY: KEY,
        CRIER_REDIS: "",
        CRIER_TLS_CERT: certificate.certPath,
        CRIER_TLS_KEY: certificate.keyPath,
      },
    );
    try {
      await waitFor(
        () => (run.stdout.match(/listening on/g)?.length ?? 0) >= 2 || undefined,
        "workers",
      );
      run.child.kill("SIGHUP");
      await waitFor(
        () => (run.stdout.match(/certificate reloaded/g)?.length ?? 0) >= 2 || undefined,
        `both workers to reload: ${run.stdout}${run.stderr}`,
      );
      assert.equal(run.child.exitCode, null, "the primary is still running");
      run.child.kill("SIGTERM");
      assert.equal(await run.exit, 0);
    } finally {
      run.child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("with --workers, SIGHUPs while the workers start change nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "crier-tls-workers-start-"));
    const run = crier(
      ["--port", "0", "--host", "127.0.0.1", "--workers", "2", "--anonymous"].concat(
        "--history-file",
        join(dir, "history"),
      ),
      {
        CRIER_JWT_KEY: KEY,
        CRIER_REDIS: "",
        CRIER_TLS_CERT: certificate.certPath,
        CRIER_TLS_KEY: certificate.keyPath,
      },
    );
    const pid = run.child.pid as number;
    try {
      // From the moment the primary catches SIGHUP (signal 1: SigCgt's lowest bit), one every
      // 20 ms until both workers serve: each reaches the primary while workers start.
      const catchesHangUp = () =>
        (BigInt(
          `0x${/SigCgt:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "0"}`,
        ) &
          1n) ===
        1n;
      await waitFor(() => catchesHangUp() || undefined, "the primary's SIGHUP handler");
      let sent = 0;
      while ((run.stdout.match(/listening on/g)?.length ?? 0) < 2) {
        assert.equal(run.child.exitCode, null, `${run.stdout}${run.stderr}`);
        run.child.kill("SIGHUP");
        sent++;
        await sleep(20);
      }
      assert.ok(sent > 5, `${sent} SIGHUPs sent while starting`);
      assert.doesNotMatch(run.stdout + run.stderr, /failed to start|died/);
      run.child.kill("SIGTERM");
      assert.equal(await run.exit, 0, `${run.stdout}${run.stderr}`);
    } finally {
      run.child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("serves an expired certificate, and says clients will refuse it", async () => {
    const expired = expiredCertificate();
    const { run, url } = await serve([], {
      CRIER_JWT_KEY: KEY,
      CRIER_TLS_CERT: expired.certPath,
      CRIER_TLS_KEY: expired.keyPath,
    });
    try {
      assert.equal(await served(url), fingerprint(expired));
      assert.match(
        run.stdout,
        /the certificate expired on Jan {2}2 00:00:00 2020 GMT: clients will refuse it/,
      );
      run.child.kill("SIGTERM");
      assert.equal(await run.exit, 0);
    } finally {
      run.child.kill("SIGKILL");
      expired.remove();
    }
  });

  test("without TLS, SIGHUP is logged and changes nothing", async () => {
    const { run, url } = await serve([], { CRIER_JWT_KEY: KEY });
    try {
      run.child.kill("SIGHUP");
      await waitFor(() => /nothing to reload/.exec(run.stdout) ?? undefined, "the SIGHUP log");
      assert.equal((await fetch(`${new URL(url).origin}/healthz`)).status, 200);
      run.child.kill("SIGTERM");
      assert.equal(await run.exit, 0);
    } finally {
      run.child.kill("SIGKILL");
    }
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
