/**
 * The one validator of options, for the library's factories and the command line alike: a value
 * that is out of range or of the wrong type is a `CRIER_ERR_INVALID_OPTION` naming the option and
 * what it accepts, never a silent default.
 */
import { CrierError } from "./errors.ts";

/** An integer option: `value`, or `fallback` when undefined; throws when out of `[min, max]`. */
export function integerOption(
  name: string,
  value: unknown,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const n = value ?? fallback;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${name} must be an integer ${range}, got ${describe(value)}`,
    );
  }
  return n;
}

/** The longest delay a Node.js timer takes (about 24.8 days); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A duration in ms that becomes a timer: as {@link integerOption}, at most {@link MAX_TIMER_MS}
 * (Node.js would turn a longer one into 1 ms, with only a warning).
 */
export function durationOption(name: string, value: unknown, fallback: number, min = 0): number {
  return integerOption(name, value, fallback, min, MAX_TIMER_MS);
}

/** One of a fixed set of strings: `value`, or `fallback` when undefined. */
export function choiceOption<T extends string>(
  name: string,
  value: unknown,
  fallback: T,
  choices: readonly T[],
): T {
  const v = value ?? fallback;
  if (!choices.includes(v as T)) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${name} must be one of ${choices.join(", ")}, got ${describe(value)}`,
    );
  }
  return v as T;
}

function describe(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/**
 * Throws unless `value` is an object (not null, not an array): for the options object or the
 * argument of a public function called from plain JavaScript. `usage` names the call and the
 * shape it takes, e.g. `createHandler needs options: { hub, publisherKey?, … }`.
 */
export function objectArgument(value: unknown, usage: string): void {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new CrierError("CRIER_ERR_INVALID_OPTION", `${usage}; got ${kindOf(value)}`);
  }
}

/**
 * Throws unless every own key of `options` is one of `known`: a misspelt option (`keepAlive`
 * for `keepAliveMs`) would otherwise be a silent default. The message names the closest known
 * key when one is close.
 */
export function knownKeys(options: object, known: readonly string[], where: string): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const close = known.find((k) => k.toLowerCase().startsWith(key.toLowerCase().slice(0, 4)));
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${where} has no option ${JSON.stringify(key)}${close === undefined ? "" : ` (did you mean ${close}?)`}; it takes ${known.join(", ")}`,
    );
  }
}

/** Throws unless `value` looks like a hub made by `createHub()` (duck-typed: two copies of the package may meet). */
export function hubArgument(value: unknown, where: string): void {
  const hub = value as { connect?: unknown; publish?: unknown; on?: unknown } | null;
  if (
    typeof hub !== "object" ||
    hub === null ||
    typeof hub.connect !== "function" ||
    typeof hub.publish !== "function" ||
    typeof hub.on !== "function"
  ) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${where} needs a hub made by createHub(); got ${kindOf(value)}`,
    );
  }
}

/** A string option, or `undefined` when absent; `nonEmpty` also refuses `""`. */
export function stringOption(name: string, value: unknown, nonEmpty = false): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || (nonEmpty && value === "")) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${name} must be a${nonEmpty ? " non-empty" : ""} string, got ${kindOf(value)}`,
    );
  }
  return value;
}

/**
 * A boolean option: `value`, or `fallback` when undefined. Only `true` and `false` are accepted:
 * `"false"` from an environment variable would otherwise count as true and open the hub.
 */
export function booleanOption(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${name} must be true or false, got ${kindOf(value)}`,
    );
  }
  return value;
}

/** An array of strings, or `undefined` when absent. */
export function stringListOption(name: string, value: unknown): readonly string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${name} must be an array of strings, got ${kindOf(value)}`,
    );
  }
  return value;
}

/** A function option, or `undefined` when absent. */
export function functionOption<T>(name: string, value: unknown): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "function") {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${name} must be a function, got ${kindOf(value)}`,
    );
  }
  return value as T;
}

/** What a wrong value is, for a message: its type, and the value itself when short. */
export function kindOf(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return value.length <= 40 ? JSON.stringify(value) : "a string";
  if (typeof value === "object") return "an object";
  if (typeof value === "function") return "a function";
  return `${typeof value} ${String(value)}`;
}
