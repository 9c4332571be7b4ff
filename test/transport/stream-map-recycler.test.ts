import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createStreamMapRecycler, type StreamMapRecycler } from "../../src/transport/stream-map-recycler.js";

let server: http2.Http2Server | undefined;
let client: http2.ClientHttp2Session | undefined;
let recycler: StreamMapRecycler | undefined;
let serverSession: http2.ServerHttp2Session | undefined;

afterEach(async () => {
  // Destroyed, not closed: a test that failed with a request open must not leave the server waiting on it.
  client?.destroy();
  recycler?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = client = recycler = serverSession = undefined;
});

/** An h2c echo server whose sessions `recycler` watches; each stream is answered once its request ends. */
async function start(r: StreamMapRecycler): Promise<http2.ClientHttp2Session> {
  server = http2.createServer();
  server.on("session", (session) => {
    serverSession = session;
    r.watch(session);
  });
  server.on("stream", (stream) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => {
      stream.respond({ ":status": 200 });
      stream.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  return client;
}

function finish(request: http2.ClientHttp2Stream, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks).toString()));
    request.on("error", reject);
    request.end(body);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The stream map node:http2 keeps for `session` now, read the way an inspector would, independently of the module. */
function currentStreamMap(session: object): Map<unknown, unknown> {
  for (const symbol of Object.getOwnPropertySymbols(session)) {
    const state = (session as Record<symbol, { streams?: unknown }>)[symbol];
    // By tag, as the module does: vitest's module runner may evaluate this file with another realm's Map.
    if (symbol.description === "state" && Object.prototype.toString.call(state?.streams) === "[object Map]")
      return state!.streams as Map<unknown, unknown>;
  }
  throw new Error("this Node keeps no stream map under the session's state symbol");
}

describe("stream map recycler", () => {
  it("replaces a busy session's stream map while a request is open, and the request still completes", async () => {
    recycler = createStreamMapRecycler(5);
    const session = await start(recycler);
    const request = session.request({ ":method": "POST", ":path": "/" });
    // Polled rather than a fixed sleep: on a loaded machine the request's headers may take a while to arrive.
    await expect.poll(() => recycler!.recycled).toBeGreaterThan(0);
    expect(recycler.watching).toBe(1);
    expect(await finish(request, "still here")).toBe("still here");
    // A request opened after the swaps is found by the server as well.
    expect(await finish(session.request({ ":method": "POST", ":path": "/" }), "again")).toBe("again");
  });

  it("finds a real session's stream map on this Node, and node keeps using the replacement: closed streams leave it", async () => {
    recycler = createStreamMapRecycler(5);
    const session = await start(recycler);
    const request = session.request({ ":method": "POST", ":path": "/" });
    await expect.poll(() => recycler!.recycled).toBeGreaterThan(1);
    expect(recycler.watched).toBe(1);
    expect(recycler.unsupported).toBe(0);
    const original = currentStreamMap(serverSession!);
    expect(original.size).toBe(1);
    await expect.poll(() => currentStreamMap(serverSession!)).not.toBe(original);
    expect(await finish(request, "done")).toBe("done");
    // Were node still writing to a map it held on to, the stream would stay in the replacement forever.
    await expect.poll(() => currentStreamMap(serverSession!).size).toBe(0);
  });

  it("leaves an idle session's map alone, and forgets a session once it closes", async () => {
    recycler = createStreamMapRecycler(5);
    const session = await start(recycler);
    expect(await finish(session.request({ ":method": "POST", ":path": "/" }), "one")).toBe("one");
    const afterRequest = recycler.recycled;
    await sleep(40);
    expect(recycler.recycled).toBe(afterRequest);
    session.close();
    await expect.poll(() => recycler!.watching).toBe(0);
    expect(recycler.watched).toBe(1);
  });

  it("returns false and changes nothing for an object that is not a node:http2 session", () => {
    recycler = createStreamMapRecycler(5);
    const notASession = { streams: new Map([[1, "x"]]) };
    expect(recycler.watch(notASession)).toBe(false);
    expect(recycler.watch({})).toBe(false);
    expect(recycler.unsupported).toBe(2);
    expect(recycler.watching).toBe(0);
  });
});
