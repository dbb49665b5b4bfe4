/** Debian's Chromium for the browser tests: where it is, when to skip, and how to launch it. */
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
/** Under CI a missing browser is a failure, never a silent skip. */
export const CI = process.env.CI === "true";

/** True when Chromium is not installed. */
export const chromiumMissing = !existsSync(CHROMIUM);
/** The skip reason outside CI when Chromium is missing; under CI a missing browser fails. */
export const chromiumSkip =
  chromiumMissing && !CI
    ? `${CHROMIUM} not found: apt-get install -y chromium to run these tests`
    : false;

/** Launches headless Chromium with the flags this machine needs, plus `extraArgs`. */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  if (chromiumMissing) throw new Error(`CI needs ${CHROMIUM}: apt-get install -y chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
      ...extraArgs,
    ],
  });
}
