/**
 * The gRPC server's idle closing (session-guard.ts): a connection is closed once no call has been open on it for the
 * idle timeout, counted from when its last call ended, never while a call runs. No Postgres, no Redis.
 */
import http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envelope } from "../../../src/transport/grpc-h2/protocol.js";
import { CHECK, checkRequestBytes } from "./h2-call.js";
import { HANG_PATH, startTestServer, type TestServer } from "./serve.js";

const IDLE_MS = 300;
// Timers on a busy CI machine fire late; the bounds only need to tell "after the idle timeout" from "never".
const SLACK_MS = 1500;

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ idleTimeoutMs: IDLE_MS, closeGraceMs: 200, keepaliveTimeMs: 0 });
});

afterAll(async () => {
  await server?.close();
});

/** Resolves with the time (performance.now()) at which the server told the session to go away or closed it. */
function goneAt(session: http2.ClientHttp2Session): Promise<number> {
  return new Promise((resolve) => {
    const done = () => resolve(performance.now());
    session.once("goaway", done);
    session.once("close", done);
  });
}

/** Sends one unary call on `session` and resolves when its stream has closed. */
function call(session: http2.ClientHttp2Session, path: string, body: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
    });
    stream.on("error", () => {});
    stream.resume();
    stream.on("close", () => resolve());
    stream.end(envelope(body));
  });
}

describe("idle closing of gRPC connections", () => {
  it("closes a connection once its calls have all ended and it has stayed idle for the idle timeout", async () => {
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    session.on("error", () => {});
    const gone = goneAt(session);
    // Calls keep it open past the first idle timeout; the count must come back to zero after every one of them.
    for (let i = 0; i < 4; i++) {
      await Promise.all(Array.from({ length: 8 }, () => call(session, CHECK, checkRequestBytes("k"))));
      await new Promise((resolve) => setTimeout(resolve, IDLE_MS / 3));
    }
    const lastCallEnded = performance.now();
    const at = await gone;
    expect(at - lastCallEnded).toBeGreaterThanOrEqual(IDLE_MS - IDLE_MS / 3 - 20);
    expect(at - lastCallEnded).toBeLessThan(IDLE_MS + SLACK_MS);
    session.destroy();
  });

  it("keeps a connection open while a call runs past the idle timeout, and closes it after that call ends", async () => {
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    session.on("error", () => {});
    let goneEarly = false;
    const gone = goneAt(session).then((at) => {
      goneEarly = server.hung.length > 0 && !answered;
      return at;
    });
    let answered = false;
    const hung = call(session, HANG_PATH, Buffer.from("x"));
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS * 3));
    expect(goneEarly).toBe(false);
    expect(session.closed || session.destroyed).toBe(false);
    const pending = server.hung.at(-1)!;
    answered = true;
    pending.done({ kind: "response", bytes: new Uint8Array() });
    await hung;
    const ended = performance.now();
    const at = await gone;
    expect(goneEarly).toBe(false);
    expect(at - ended).toBeLessThan(IDLE_MS + SLACK_MS);
    session.destroy();
  });
});
