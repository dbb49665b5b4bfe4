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
