import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createStreamMapRecycler, type StreamMapRecycler } from "../../src/transport/stream-map-recycler.js";

let server: http2.Http2Server | undefined;
let client: http2.ClientHttp2Session | undefined;
let recycler: StreamMapRecycler | undefined;

afterEach(async () => {
  client?.close();
  recycler?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = client = recycler = undefined;
});

/** An h2c echo server whose sessions `recycler` watches; each stream is answered once its request ends. */
async function start(r: StreamMapRecycler): Promise<http2.ClientHttp2Session> {
  server = http2.createServer();
  server.on("session", (session) => r.watch(session));
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

describe("stream map recycler", () => {
  it("replaces a busy session's stream map while a request is open, and the request still completes", async () => {
    recycler = createStreamMapRecycler(5);
    const session = await start(recycler);
    const request = session.request({ ":method": "POST", ":path": "/" });
    await sleep(40);
    expect(recycler.watching).toBe(1);
    expect(recycler.recycled).toBeGreaterThan(0);
    expect(await finish(request, "still here")).toBe("still here");
    // A request opened after the swaps is found by the server as well.
    expect(await finish(session.request({ ":method": "POST", ":path": "/" }), "again")).toBe("again");
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
