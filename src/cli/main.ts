#!/usr/bin/env node
/**
 * The `crier` command: serves the hub (default), or publishes, subscribes and mints tokens
 * against one. Exit codes: 0 done, 1 failed at run time, 2 bad usage.
 */
import { isCrierError } from "../errors.ts";
import { VERSION } from "../ops/build.ts";
import { publish, subscribe, token } from "./clients.ts";
import { log, UsageError } from "./output.ts";
import { serve } from "./serve.ts";
import { settingsHelp } from "./settings.ts";

const USAGE = `Usage:
  crier [flags]                      serve the hub
  crier publish TOPIC DATA [--url U] [--token T] [--id ID] [--type T] [--private]
  crier subscribe TOPIC... [--url U] [--token T] [--last-event-id ID]
  crier token [--publish SEL]... [--subscribe SEL]... [--ttl SECONDS (default 3600; 0: never)]
  crier token --draft-08 --audience HUB_URL --issuer ISS [--subject SUB] [--ttl SECONDS]
              [--publish TOPIC]... [--subscribe TOPIC]...
              [--publish-urlpattern PATTERN]... [--subscribe-urlpattern PATTERN]...
  crier version                      print the version (also --version)
  crier COMMAND --help               the usage of one command

Flags of the hub (each also an environment variable; flags win):
${settingsHelp()}

publish/subscribe/token sign with --jwt-key or CRIER_JWT_KEY when no --token is given.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "publish":
      return publish(rest);
    case "subscribe":
      return subscribe(rest);
    case "token":
      return token(rest);
    case "version":
    case "--version":
      process.stdout.write(`crier ${VERSION} (Node.js ${process.version})\n`);
      return 0;
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return 0;
    default:
      // `crier --port 8080 --help`: the help, not a refusal of an unknown flag.
      if (argv.includes("--help") || argv.includes("-h")) {
        process.stdout.write(USAGE);
        return 0;
      }
      return serve(argv);
  }
}

// A command line that cannot be read (an unknown flag, a missing argument) gets the usage
// after the reason; a setting with a wrong value gets its reason alone, which names it.
function usage(message: string, withUsage: boolean): number {
  process.stderr.write(withUsage ? `crier: ${message}\n\n${USAGE}` : `crier: ${message}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const parseError = (e: unknown) =>
      (e as { code?: string } | undefined)?.code?.startsWith("ERR_PARSE_ARGS") === true;
    const unreadable =
      err instanceof UsageError || parseError(err) || parseError((err as Error).cause);
    if (unreadable || isCrierError(err, "CRIER_ERR_INVALID_OPTION")) {
      process.exit(usage((err as Error).message, unreadable));
    }
    log(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
