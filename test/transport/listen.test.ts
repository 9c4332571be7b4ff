import http2 from "node:http2";
import net from "node:net";
import { createClient } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { file_grpc_health_v1_health, Health } from "../../gen/grpc/health/v1/health_pb.js";
import { createHealthRoutes } from "../../src/transport/connect/health.js";
import { createReflectionRoutes } from "../../src/transport/connect/reflection.js";
import { type HttpHandler, type HttpListener, listenHttp } from "../../src/transport/listen.js";
import { createReflector } from "../../src/transport/reflection-index.js";
import { healthWithSwitchableDatabase } from "../support/health.js";
import { healthClient, reflectionClient } from "./connect/grpc-clients.js";

const echo: HttpHandler = (req, res) => {
  let size = 0;
  req.on("data", (chunk: Buffer) => {
    size += chunk.length;
  });
  req.on("end", () => {
    // Not writeHead: @types/node 24 gives the two response classes overloads that no call satisfies for the union.
    res.statusCode = 200;
    res.setHeader("content-type", "text/plain");
    res.end(`${req.httpVersion} ${req.method} ${req.url} ${size}`);
  });
};

const open: HttpListener[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.close()));
});

async function listen(handler: HttpHandler, closeGraceMs?: number): Promise<HttpListener> {
  const listener = await listenHttp(handler, { host: "127.0.0.1", port: 0, closeGraceMs });
  open.push(listener);
  return listener;
}

function h2Request(port: number, path: string, body?: string): Promise<string> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  return new Promise<string>((resolve, reject) => {
    session.on("error", reject);
    const stream = session.request({ ":path": path, ":method": body === undefined ? "GET" : "POST" });
    let text = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      text += chunk;
    });
    stream.on("end", () => resolve(text));
    stream.on("error", reject);
    stream.end(body);
  }).finally(() => session.close());
}

/** Sends `parts` on a raw socket with pauses between them and returns the first bytes the server answers. */
function rawExchange(port: number, parts: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("error", reject);
    socket.once("data", (chunk: Buffer) => {
      socket.destroy();
      resolve(chunk);
    });
    socket.once("connect", async () => {
      for (const part of parts) {
        socket.write(part);
        await new Promise((r) => setTimeout(r, 20));
      }
    });
  });
}

describe("listenHttp: HTTP/1.1 and h2c on one port", () => {
  it("serves HTTP/1.1 (fetch) and HTTP/2 prior knowledge (http2.connect) on the same port", async () => {
    const { port } = await listen(echo);
    expect(await (await fetch(`http://127.0.0.1:${port}/one`)).text()).toBe("1.1 GET /one 0");
    const big = "x".repeat(300_000);
    expect(await (await fetch(`http://127.0.0.1:${port}/big`, { method: "POST", body: big })).text()).toBe(
      "1.1 POST /big 300000",
    );
    expect(await h2Request(port, "/two")).toBe("2.0 GET /two 0");
    expect(await h2Request(port, "/big", big)).toBe("2.0 POST /big 300000");
  });

  it("waits for enough bytes when the first packet is only part of the preface or request line", async () => {
    const { port } = await listen(echo);
    const h2 = await rawExchange(port, ["PRI * HT", "TP/2.0\r\n\r\nSM\r\n\r\n", "\0\0\0\x04\0\0\0\0\0"]);
    // The server's first HTTP/2 frame is SETTINGS (type 4).
    expect(h2[3]).toBe(4);
    const h1 = await rawExchange(port, [
      "P",
      "OST /split HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n",
      "hi",
    ]);
    expect(h1.toString("latin1")).toMatch(/^HTTP\/1\.1 200/);
  });

  it("serves Connect over HTTP/1.1 and gRPC (reflection, bidi) over h2c from one adapter", async () => {
    const handler = connectNodeAdapter({
      routes: (router) => {
        createHealthRoutes(healthWithSwitchableDatabase().health)(router);
        createReflectionRoutes(createReflector([file_grpc_health_v1_health], [Health.typeName]))(router);
      },
    });
    const { port } = await listen(handler);
    const connect = createClient(
      Health,
      createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" }),
    );
    expect((await connect.check({})).status).toBe(1);
    const reflection = reflectionClient(`127.0.0.1:${port}`);
    const health = healthClient(`127.0.0.1:${port}`);
    try {
      const [list] = await reflection.ask({ list_services: "" });
      expect(list?.list_services_response?.service.map((s) => s.name)).toEqual([Health.typeName]);
      expect((await health.check("")).status).toBe("SERVING");
    } finally {
      reflection.close();
      health.close();
    }
  });

  it("closes with keep-alive connections and open streams, then refuses connections", async () => {
    const listener = await listenHttp(
      connectNodeAdapter({ routes: createHealthRoutes(healthWithSwitchableDatabase().health) }),
      {
        host: "127.0.0.1",
        port: 0,
        closeGraceMs: 200,
      },
    );
    const { port } = listener;
    const connect = createClient(
      Health,
      createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" }),
    );
    await connect.check({}); // leaves an idle keep-alive connection behind
    const health = healthClient(`127.0.0.1:${port}`);
    const watch = health.watch("");
    await new Promise((resolve) => watch.once("data", resolve)); // a stream that never ends by itself
    const ended = new Promise((resolve) => watch.once("error", resolve));
    await listener.close();
    expect(await ended).toMatchObject({ code: expect.any(Number) });
    health.close();
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });
});
