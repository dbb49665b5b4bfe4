/**
 * The standalone hub's token keys, from its settings: one key for both roles (`--jwt-key`), a
 * key per role, and/or a JWK Set; or none at all, which is dev mode (a throwaway key, anonymous
 * subscribers). A key that names a file must name a readable one (see `readKey`), and an HMAC
 * secret must be 32 bytes or more unless `--allow-weak-key` says otherwise.
 */
import { randomBytes } from "node:crypto";
import type { JSONWebKeySet } from "jose";
import { CrierError } from "../errors.ts";
import { checkSecretStrength, prepareKey, readJwks, readKey } from "../mercure/tokens/keys.ts";
import { SETTINGS, type SettingName } from "./settings.ts";

const KEY_SETTINGS = ["jwt-key", "publisher-jwt-key", "subscriber-jwt-key", "jwks"] as const;

/** What is read of the settings (`Settings` in `config.ts`). */
export interface GivenSettings {
  text(name: SettingName): string | undefined;
  boolean(name: SettingName): boolean;
  /** The flag or variable a setting was given by, for messages. */
  origin(name: SettingName): string;
  /** Whether the setting's variable is set but empty. */
  isEmptyVariable(name: SettingName): boolean;
}

/** The keys the hub verifies tokens with. */
export interface HubKeys {
  readonly publisherKey: string | undefined;
  readonly subscriberKey: string | undefined;
  readonly jwks: JSONWebKeySet | undefined;
  /** No key was configured: a throwaway secret was generated. */
  readonly devMode: boolean;
}

/** Reads and checks the keys; throws `CRIER_ERR_INVALID_OPTION` naming the setting at fault. */
export function keysOf(s: GivenSettings): HubKeys {
  const jwksFile = s.text("jwks");
  const jwks = jwksFile === undefined ? undefined : readJwks(jwksFile, s.origin("jwks"));
  let publisherKey = roleKey(s, "publisher-jwt-key");
  let subscriberKey = roleKey(s, "subscriber-jwt-key");
  const devMode = publisherKey === undefined && subscriberKey === undefined && jwks === undefined;
  // `CRIER_JWT_KEY=${KEY}` with KEY missing must not open the hub: an empty key variable is
  // unset like any other, unless it would leave the hub with no key at all.
  const empty = KEY_SETTINGS.find((name) => s.isEmptyVariable(name));
  if (devMode && empty !== undefined) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      `${SETTINGS[empty].env} is set but empty and no other key is given: the hub would start in dev mode (anonymous subscribers, an open dashboard); give the key, or unset the variable for dev mode`,
    );
  }
  if (devMode) {
    publisherKey = subscriberKey = randomBytes(32).toString("base64url");
  } else if ((publisherKey === undefined || subscriberKey === undefined) && jwks === undefined) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "give --jwt-key, or both --publisher-jwt-key and --subscriber-jwt-key, or --jwks",
    );
  }
  if (jwks !== undefined && publisherKey !== undefined && subscriberKey !== undefined) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "--jwks verifies the roles without a key of their own; with keys for both it would be ignored",
    );
  }
  return { publisherKey, subscriberKey, jwks, devMode };
}

// A role's own key, else the shared `--jwt-key`, read (from its file, if it names one).
function roleKey(
  s: GivenSettings,
  name: "publisher-jwt-key" | "subscriber-jwt-key",
): string | undefined {
  const setting = s.text(name) === undefined ? "jwt-key" : name;
  const value = s.text(setting);
  if (value === undefined) return undefined;
  const key = readKey(value, s.origin(setting));
  if (!s.boolean("allow-weak-key"))
    checkSecretStrength(key, s.origin(setting), "pass --allow-weak-key");
  // A PEM block that is no key is refused here, naming the setting, not at the first token.
  prepareKey(key, s.origin(setting));
  return key;
}
