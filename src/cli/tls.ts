/**
 * The HTTPS certificate and key of `crier --tls-cert --tls-key`: read and checked at start, so
 * that a wrong pair is refused then rather than at every handshake, and read again on SIGHUP, so
 * that a renewed certificate is served without a restart (and without ending any stream).
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { CrierError } from "../errors.ts";
import { checkTlsPair } from "../mercure/http/secure.ts";

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
  checkTlsPair(cert, key, { cert: files.certName, key: files.keyName });
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
