/**
 * Where the Redis engine's keys live. Every key of one prefix carries the same hash tag, so they
 * all hash to one Redis Cluster slot, and a script or MULTI that touches several of them is
 * served by one primary (Cluster refuses anything else with CROSSSLOT):
 *
 *   prefix "crier:"  →  {crier:}stream  {crier:}epoch  {crier:}ids  {crier:}ids-age
 *                       {crier:}dir:subscriptions:nodes  {crier:}dir:subscriptions:node:<id>
 *
 * On a single Redis or behind Sentinel the tag costs nothing, so the keys are the same on every
 * engine and a deployment can move between them without renaming anything.
 */

import { CrierError } from "../errors.ts";

/**
 * The string every key of `prefix` starts with: the prefix as a hash tag, `{prefix}`. A prefix
 * that already holds a tag (`{app}:crier:`) is used as it is, so an operator may choose the
 * slot (and share it with the application's own keys).
 */
export function keyBase(prefix: string): string {
  // Redis hashes the text between the first "{" and the first "}" after it, when not empty.
  const open = prefix.indexOf("{");
  const close = open < 0 ? -1 : prefix.indexOf("}", open + 1);
  if (close > open + 1) return prefix;
  // `{}x}` would be an empty tag: each key hashed whole, to slots of its own (CROSSSLOT).
  if (prefix === "" || prefix.startsWith("}")) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `the Redis key prefix ${JSON.stringify(prefix)} cannot keep its keys in one Cluster slot: it must not be empty or start with "}"`,
    );
  }
  return `{${prefix}}`;
}
