/**
 * The HTTPS certificate and key of `crier --tls-cert --tls-key`: read and checked at start, so
 * that a wrong pair is refused then rather than at every handshake, and read again on SIGHUP, so
 * that a renewed certificate is served without a restart (and without ending any stream).
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { CrierError } from "../errors.ts";

/** Where the certificate and key are, and how the messages name each (flag or variable). */
export interface TlsFiles {
  readonly certPath: string;
  readonly keyPath: string;
  readonly certName: string;
  readonly keyName: string;
}

/**
 * Reads the pair; throws `CRIER_ERR_INVALID_OPTION` when a file cannot be read, the two are not a
 * PEM certificate and a private key, or the key is not the certificate's.
 */
export function readTlsPair(files: TlsFiles): { cert: Buffer; key: Buffer } {
  const cert = readTlsFile(files.certName, files.certPath);
  const key = readTlsFile(files.keyName, files.keyPath);
  const notAPair = (err: unknown) =>
    new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${files.certName} and ${files.keyName} are not a PEM certificate and its private key (${(err as Error).message})`,
    );
  let matches: boolean;
  try {
    // Checked here rather than left to OpenSSL, which checks a key against the certificate only
    // when both are of one type: an EC key beside an RSA certificate loads, then fails every
    // handshake.
    matches = new X509Certificate(cert).checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    throw notAPair(err);
  }
  if (!matches) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${files.keyName} is not the private key of ${files.certName}'s certificate`,
    );
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw notAPair(err);
  }
  return { cert, key };
}

/**
 * Why clients will refuse the certificate on its dates (expired, or not valid yet), or undefined
 * when it is valid at `now`. Served anyway: the operator may be about to replace it.
 */
export function certificateDatesProblem(cert: Buffer, now = Date.now()): string | undefined {
  const { validFrom, validTo } = new X509Certificate(cert);
  if (Date.parse(validTo) < now) return `the certificate expired on ${validTo}`;
  if (Date.parse(validFrom) > now) return `the certificate is not valid before ${validFrom}`;
  return undefined;
}

function readTlsFile(name: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${name}: cannot read ${JSON.stringify(path)} (${reason})`,
    );
  }
}
