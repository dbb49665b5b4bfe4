/**
 * Optional peer dependencies: each engine's client (ioredis, lmdb, the NATS client) is installed
 * only by those who use that engine, and loaded only when its backplane is made, never when its
 * entry point is imported.
 */
import { createRequire } from "node:module";
import { CrierError } from "../errors.ts";

/** How a module is loaded: `require`, or a stand-in in tests. */
export type Require = (id: string) => unknown;

/** The `require` of this package, from which the peers resolve. */
export const requirePeer: Require = createRequire(import.meta.url);

/**
 * Loads `name` with `load`; when it is not installed, throws `CRIER_ERR_MISSING_DEPENDENCY`
 * with `howToInstall` (which entry point needs it, and the npm command). Other load errors are
 * thrown as they are.
 */
export function loadPeer(load: Require, name: string, howToInstall: string): unknown {
  try {
    return load(name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "MODULE_NOT_FOUND") throw err;
    throw new CrierError("CRIER_ERR_MISSING_DEPENDENCY", howToInstall, { cause: err });
  }
}
