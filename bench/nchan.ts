/**
 * nchan (the nginx module) as a server under test: one nginx worker pinned to the server core,
 * `nchan_pubsub` on `/.well-known/mercure` with one channel for every request, so the generator's
 * subscriptions (`GET`, `Accept: text/event-stream`) and publishes (`POST`, the data itself as
 * the body: `LoadConfig.rawPublish`) reach it at the same URL as crier's. No auth; its message
 * buffer keeps the last 10,000 updates for an hour, as crier's history keeps 10,000.
 *
 * Needs nginx and Debian's `libnginx-mod-nchan` (`.ci/run` does not install them: only the named
 * scenarios that compare with nchan use it). The CPU reported is the worker's.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FD_LIMIT, freePort, type Running, startPinned, stopProcess } from "./servers.ts";

const MODULE = "/usr/lib/nginx/modules/ngx_nchan_module.so";

/** Whether nginx and the nchan module are installed. */
export function haveNchan(): boolean {
  return existsSync(MODULE) && existsSync("/usr/sbin/nginx");
}

function config(dir: string, port: number): string {
  return `load_module ${MODULE};
user root;
worker_processes 1;
worker_rlimit_nofile ${FD_LIMIT};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log error;
events { worker_connections ${FD_LIMIT}; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  nchan_max_reserved_memory 512M;
  server {
    listen 127.0.0.1:${port};
    location = /healthz { return 200 "ok\\n"; }
    location = /.well-known/mercure {
      nchan_pubsub;
      nchan_channel_id updates;
      nchan_message_buffer_length 10000;
      nchan_message_timeout 1h;
    }
  }
}
`;
}

/** Starts nginx with nchan on a free port; stopping it removes its folder. */
export async function startNchan(): Promise<Running> {
  if (!haveNchan())
    throw new Error(`nchan needs nginx and ${MODULE} (apt-get install libnginx-mod-nchan)`);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "crier-bench-nchan-"));
  mkdirSync(join(dir, "body"));
  writeFileSync(join(dir, "nginx.conf"), config(dir, port));
  const argv = ["/usr/sbin/nginx", "-p", dir, "-c", join(dir, "nginx.conf"), "-g", "daemon off;"];
  const { child } = await startPinned("nchan", argv, port);
  // The worker does the work (it answered /healthz, so it is up); its pid is the master's child.
  let worker = 0;
  try {
    worker = Number(
      execFileSync("pgrep", ["-P", String(child.pid)])
        .toString()
        .split("\n")[0],
    );
  } catch {
    // pgrep found none: reported below
  }
  const stop = async (): Promise<void> => {
    await stopProcess(child);
    rmSync(dir, { recursive: true, force: true });
  };
  if (worker === 0) {
    await stop();
    throw new Error("nchan: no nginx worker");
  }
  return { name: "nchan", port, pid: worker, stop };
}
