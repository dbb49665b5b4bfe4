/** The package's own version, read once from its package.json (src/ and dist/ sit one level down). */
import { createRequire } from "node:module";

/** Crier's version, as published. */
export const VERSION: string = (
  createRequire(import.meta.url)("../../package.json") as { version: string }
).version;
