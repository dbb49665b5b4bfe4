import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { withSettingsTable } from "../scripts/readme-settings.ts";
import { parseServeConfig, Settings } from "../src/cli/config.ts";
import { SETTINGS, settingsHelp } from "../src/cli/settings.ts";

describe("the settings table", () => {
  test("the README's configuration table is the one the settings table makes (npm run docs)", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    assert.equal(readme, withSettingsTable(readme));
  });

  test("names every variable CRIER_ and the flag in upper snake case, and lists each in --help", () => {
    const help = settingsHelp();
    for (const [name, setting] of Object.entries(SETTINGS)) {
      assert.equal(setting.env, `CRIER_${name.toUpperCase().replaceAll("-", "_")}`);
      assert.match(help, new RegExp(`--${name} +${setting.env} `));
      if (setting.type === "integer") assert.ok(setting.min !== undefined, name);
    }
  });

  test("reads a flag before its variable, and the default when both are absent or empty", () => {
    const env = { CRIER_PORT: "9000", CRIER_HISTORY_SIZE: "" };
    assert.equal(new Settings(["--port", "9001"], env).integer("port"), 9001);
    assert.equal(new Settings([], env).integer("port"), 9000);
    assert.equal(new Settings([], env).integer("history-size"), 10_000);
    assert.equal(new Settings([], {}).text("redis-prefix"), "crier:");
  });

  test("refuses an integer out of its range or not a whole number, naming the flag", () => {
    for (const port of ["65536", "-1", "80.5", "0x50", "eighty"]) {
      assert.throws(
        () => parseServeConfig([`--port=${port}`, `--jwt-key=${"k".repeat(32)}`], {}),
        (err: Error) => /--port must be an integer from 0 to 65535/.test(err.message),
        port,
      );
    }
  });

  test("reads a boolean from its documented spellings in any case, and a bare flag as true", () => {
    for (const word of ["1", "true", "YES", "On"]) {
      assert.equal(new Settings([], { CRIER_ANONYMOUS: word }).boolean("anonymous"), true, word);
      assert.equal(new Settings([`--anonymous=${word}`], {}).boolean("anonymous"), true, word);
    }
    for (const word of ["0", "False", "no", "OFF"]) {
      assert.equal(new Settings([], { CRIER_ANONYMOUS: word }).boolean("anonymous"), false, word);
      assert.equal(new Settings([`--anonymous=${word}`], {}).boolean("anonymous"), false, word);
    }
    assert.equal(
      new Settings(["--anonymous"], { CRIER_ANONYMOUS: "no" }).boolean("anonymous"),
      true,
    );
    assert.equal(new Settings([], {}).boolean("anonymous"), false);
    for (const word of ["n", "disabled", "2", " yes"]) {
      assert.throws(
        () => new Settings([], { CRIER_ANONYMOUS: word }).boolean("anonymous"),
        /CRIER_ANONYMOUS must be one of 1\/0, true\/false, yes\/no, on\/off/,
        word,
      );
    }
  });
});
