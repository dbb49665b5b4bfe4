import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parseServeConfig } from "../src/cli/config.ts";

const SECRET = "auth-config-secret-of-at-least-32-bytes";

describe("token configuration of the standalone hub", () => {
  const jwksFile = join(tmpdir(), `crier-jwks-${process.pid}.json`);
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ kty: "EC", crv: "P-256", x: "a", y: "b" }] }));

  test("reads issuer, audience, query tokens and the subscriber cap from flags", () => {
    const config = parseServeConfig(
      [
        `--jwt-key=${SECRET}`,
        "--jwt-issuer=https://issuer.example",
        "--jwt-audience=https://hub.example/.well-known/mercure",
        "--authorization-query",
        "--max-subscribers=5",
      ],
      {},
    );
    assert.equal(config.handler.jwtIssuer, "https://issuer.example");
    assert.equal(config.handler.jwtAudience, "https://hub.example/.well-known/mercure");
    assert.equal(config.handler.authorizationQuery, true);
    assert.equal(config.handler.maxSubscribers, 5);
  });

  test("reads the same settings from CRIER_* variables, with safe defaults", () => {
    const defaults = parseServeConfig([`--jwt-key=${SECRET}`], {});
    assert.equal(defaults.handler.authorizationQuery, false);
    assert.equal(defaults.handler.maxSubscribers, 100_000);
    assert.equal(defaults.handler.jwtAudience, undefined);
    const config = parseServeConfig([], {
      CRIER_JWKS: jwksFile,
      CRIER_JWT_ISSUER: "https://issuer.example",
      CRIER_JWT_AUDIENCE: "urn:hub",
      CRIER_AUTHORIZATION_QUERY: "1",
      CRIER_MAX_SUBSCRIBERS: "7",
    });
    assert.equal(config.devMode, false);
    assert.equal(config.handler.publisherKey, undefined);
    assert.equal(config.handler.jwks?.keys.length, 1);
    assert.equal(config.handler.jwtAudience, "urn:hub");
    assert.equal(config.handler.authorizationQuery, true);
    assert.equal(config.handler.maxSubscribers, 7);
  });

  // A deployment template whose key value defaults to "" while the JWK Set verifies.
  test("reads an empty key variable as unset when another key or a JWK Set is given, and a default named without its engine as nothing", () => {
    const config = parseServeConfig([], {
      CRIER_JWKS: jwksFile,
      CRIER_JWT_KEY: "",
      CRIER_SUBSCRIBER_JWT_KEY: "",
      CRIER_REDIS_PREFIX: "crier:",
      CRIER_HISTORY_SYNC: "batch",
    });
    assert.equal(config.devMode, false);
    assert.equal(config.handler.publisherKey, undefined);
    assert.equal(config.redis, undefined);
  });

  test("refuses a JWK Set that is not one, one that would be ignored, and a zero cap", () => {
    const notJwks = join(tmpdir(), `crier-not-jwks-${process.pid}.json`);
    writeFileSync(notJwks, "{}");
    assert.throws(() => parseServeConfig([`--jwks=${notJwks}`], {}), /keys/);
    // A secret key file given by mistake: not JSON, and none of it is quoted.
    writeFileSync(notJwks, "hunter2supersecretvalue-of-at-least-32-bytes");
    assert.throws(
      () => parseServeConfig([], { CRIER_JWKS: notJwks }),
      (err: Error) =>
        /^CRIER_JWKS: \S+ is not JSON; give the path of a JSON file holding a JWK Set$/.test(
          err.message,
        ) && !err.message.includes("hunter2"),
    );
    assert.throws(
      () => parseServeConfig(["--jwks=/no/such/jwks.json"], {}),
      /^CrierError: --jwks: \/no\/such\/jwks\.json does not exist;/,
    );
    assert.throws(
      () => parseServeConfig([`--jwks=${jwksFile}`, `--jwt-key=${SECRET}`], {}),
      /ignored/,
    );
    assert.throws(
      () => parseServeConfig([`--jwt-key=${SECRET}`, "--max-subscribers=0"], {}),
      /max-subscribers/,
    );
  });

  test("reads a key from the file a path-like value names, and never uses the path as the key", () => {
    const keyFile = join(tmpdir(), `crier-key-${process.pid}.key`);
    writeFileSync(keyFile, "k".repeat(40));
    const config = parseServeConfig([`--jwt-key=${keyFile}`], {});
    assert.equal(config.handler.publisherKey, "k".repeat(40));
    assert.throws(
      () => parseServeConfig(["--jwt-key=~/crier/missing.pem"], {}),
      /--jwt-key: ~\/crier\/missing\.pem does not exist/,
    );
  });

  test("refuses an HMAC secret shorter than 32 bytes unless --allow-weak-key is given", () => {
    assert.throws(
      () => parseServeConfig(["--publisher-jwt-key=short", `--subscriber-jwt-key=${SECRET}`], {}),
      /^CrierError: --publisher-jwt-key is an HMAC secret of 5 bytes; use at least 32 random bytes/,
    );
    const weak = parseServeConfig(["--jwt-key=short"], { CRIER_ALLOW_WEAK_KEY: "yes" });
    assert.equal(weak.handler.publisherKey, "short");
    assert.equal(parseServeConfig([], {}).devMode, true); // its generated key is strong
  });
});
