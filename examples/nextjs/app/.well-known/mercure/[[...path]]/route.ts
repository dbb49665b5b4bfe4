// app/.well-known/mercure/[[...path]]/route.ts: the Mercure endpoint (and its subscriptions
// API below it) as a Next.js App Router route handler, on the Node.js runtime, where the hub
// lives as long as the server process.
import { mercure } from "../../../../lib/mercure";

// Every request is live: never prerendered or cached.
export const dynamic = "force-dynamic";
export const runtime = "nodejs";

export async function GET(request: Request): Promise<Response> {
  return mercure(request);
}

export async function POST(request: Request): Promise<Response> {
  return mercure(request);
}

export async function OPTIONS(request: Request): Promise<Response> {
  return mercure(request);
}
