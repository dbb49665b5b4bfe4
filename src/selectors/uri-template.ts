/**
 * RFC 6570 URI templates as topic selectors (Mercure v0.x). A topic matches a template when the
 * template could expand to it. Like the reference hub (which turns a template into a Go RE2
 * regexp), each template becomes one regular expression, run by re2js, a port of RE2: matching
 * is linear in the topic's length whatever the template, so no selector can make a publish
 * backtrack.
 *
 * Each variable matches the characters its operator lets through unencoded plus
 * percent-encoded triplets; every variable may be undefined (omitted with its separator); a
 * prefix modifier (`{var:3}`) is matched like the whole value (a superset, never a miss).
 */
import { createRequire } from "node:module";
import type { RE2JS as RE2JSClass } from "re2js";
import { CrierError } from "../errors.ts";

/** Most variables in one template. */
// re2js is loaded on the first template, so that a hub with exact topics only never loads it.
let RE2JS: typeof RE2JSClass | undefined;
function re2(): typeof RE2JSClass {
  RE2JS ??= (createRequire(import.meta.url)("re2js") as { RE2JS: typeof RE2JSClass }).RE2JS;
  return RE2JS;
}

export const MAX_TEMPLATE_VARIABLES = 32;

interface Operator {
  readonly prefix: string;
  readonly separator: string;
  readonly named: boolean;
  readonly reserved: boolean;
}

// RFC 6570 appendix A: first, sep, named, allow (U: unreserved, U+R: unreserved and reserved).
const OPERATORS: Readonly<Record<string, Operator>> = {
  "": { prefix: "", separator: ",", named: false, reserved: false },
  "+": { prefix: "", separator: ",", named: false, reserved: true },
  "#": { prefix: "#", separator: ",", named: false, reserved: true },
  ".": { prefix: ".", separator: ".", named: false, reserved: false },
  "/": { prefix: "/", separator: "/", named: false, reserved: false },
  ";": { prefix: ";", separator: ";", named: true, reserved: false },
  "?": { prefix: "?", separator: "&", named: true, reserved: false },
  "&": { prefix: "&", separator: "&", named: true, reserved: false },
};

const PCT = "%[0-9A-Fa-f]{2}";
const UNRESERVED = "A-Za-z0-9\\-._~";
const RESERVED = ":/?#\\[\\]@!$&'()*+,;=";
// varchar = ALPHA / DIGIT / "_" / pct-encoded; varname = varchar *( ["."] varchar )
const VARNAME = /^(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})(?:\.?(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2}))*$/;
const VARSPEC = /^([^:*]+)(?::([1-9][0-9]{0,3})|(\*))?$/;

/** Compiles a template to a full-match test; throws `CRIER_ERR_BAD_REQUEST` when invalid. */
export function compileTemplate(template: string): (topic: string) => boolean {
  let source = "";
  let variables = 0;
  let at = 0;
  while (at < template.length) {
    const open = template.indexOf("{", at);
    const literal = template.slice(at, open === -1 ? template.length : open);
    if (literal.includes("}")) invalid(template, "a '}' has no matching '{'");
    source += escapeLiteral(literal);
    if (open === -1) break;
    const close = template.indexOf("}", open + 1);
    if (close === -1) invalid(template, "a '{' is not closed");
    const body = template.slice(open + 1, close);
    if (body.includes("{")) invalid(template, "expressions cannot nest");
    const [expression, count] = compileExpression(template, body);
    source += expression;
    variables += count;
    if (variables > MAX_TEMPLATE_VARIABLES) {
      invalid(template, `more than ${MAX_TEMPLATE_VARIABLES} variables`);
    }
    at = close + 1;
  }
  const re = re2().compile(source);
  return (topic) => re.matches(topic);
}

function compileExpression(template: string, body: string): [source: string, variables: number] {
  const first = body.charAt(0);
  const operator = OPERATORS[first] ?? OPERATORS[""];
  const list = first in OPERATORS && first !== "" ? body.slice(1) : body;
  if (operator === undefined || list === "") invalid(template, `empty expression {${body}}`);
  const chars = operator.reserved ? `[${UNRESERVED}${RESERVED}]` : `[${UNRESERVED},]`;
  const value = `(?:${chars}|${PCT})*`;
  const alternatives = list.split(",").map((spec) => {
    const parts = VARSPEC.exec(spec);
    const name = parts?.[1];
    if (name === undefined || !VARNAME.test(name)) invalid(template, `bad variable "${spec}"`);
    const explode = parts?.[3] !== undefined;
    // Exploded lists and maps repeat `name=value` (named) or `value` (`k=v` for maps).
    const item = operator.named
      ? explode
        ? `(?:[${UNRESERVED}]|${PCT})+(?:=${value})?`
        : `${escapeLiteral(name)}${operator.prefix === ";" ? `(?:=${value})?` : `=${value}`}`
      : explode
        ? `(?:${chars}|${PCT}|=)*`
        : value;
    return explode ? `${item}(?:${escapeLiteral(operator.separator)}${item})*` : item;
  });
  const one = `(?:${alternatives.join("|")})`;
  const more = alternatives.length > 1 ? `(?:${escapeLiteral(operator.separator)}${one})*` : "";
  return [`(?:${escapeLiteral(operator.prefix)}${one}${more})?`, alternatives.length];
}

function escapeLiteral(text: string): string {
  return text.replace(/[\\^$.|?*+()[\]{}]/g, "\\$&");
}

function invalid(template: string, why: string): never {
  throw new CrierError(
    "CRIER_ERR_BAD_REQUEST",
    `"${template}" is not a valid URI template (RFC 6570): ${why}`,
  );
}
