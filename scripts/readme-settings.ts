/**
 * Writes the README's configuration table from the settings table (`src/cli/settings.ts`), between
 * the `settings` markers. `npm run docs`; `test/settings.test.ts` fails when they disagree.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { settingsTable } from "../src/cli/settings.ts";

export const BEGIN = "<!-- settings: made by npm run docs from src/cli/settings.ts -->";
export const END = "<!-- /settings -->";

/** The README with its table made anew. */
export function withSettingsTable(readme: string): string {
  const start = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (start === -1 || end < start) throw new Error(`README.md needs the markers ${BEGIN} … ${END}`);
  return `${readme.slice(0, start + BEGIN.length)}\n\n${settingsTable()}\n\n${readme.slice(end)}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const path = new URL("../README.md", import.meta.url);
  writeFileSync(path, withSettingsTable(readFileSync(path, "utf8")));
}
