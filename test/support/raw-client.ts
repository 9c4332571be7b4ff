import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { codeToString } from "@connectrpc/connect/protocol-connect";

/** A request body: bytes, or `size` bytes of `chunk` repeated, produced as they are sent. */
export type RawBody = Buffer | { chunk: Buffer; size: number };

/** A request sent on a fresh connection, with the body it streams. */
export interface RawRequest {
  path: string;
  headers: Record<string, string>;
  body: RawBody;
  /** Keep the request open after the body instead of ending it (a client that stalls). */
  stall?: boolean;
}

/** How a raw request ended, from the client's side. */
export interface RawOutcome {
  /** HTTP status when a response arrived. */
  status?: number;
  headers: Record<string, string>;
  /** HTTP/2 or chunked HTTP/1.1 trailers. */
  trailers: Record<string, string>;
  /** The first 64 KiB of the response body. */
  body: Buffer;
  /** Body bytes the client handed to the connection before it ended. */
  bytesWritten: number;
  /** "response": the response completed; "reset"/"closed": the stream or connection ended first. */
  end: "response" | "reset" | "closed";
  /** The HTTP/2 RST_STREAM code when the stream was reset. */
  rstCode?: number;
  elapsedMs: number;
}

function bodySize(body: RawBody): number {
  return Buffer.isBuffer(body) ? body.length : body.size;
}

/** Writes `body` to `out` with backpressure until it is sent or `stopped()` says the exchange is over. */
async function pump(
  out: { write(chunk: Buffer): boolean; once(event: "drain", listener: () => void): unknown },
  body: RawBody,
  stopped: () => boolean,
  counted: (n: number) => void,
): Promise<void> {
  const total = bodySize(body);
  let sent = 0;
  while (sent < total && !stopped()) {
    const chunk = Buffer.isBuffer(body)
      ? body.subarray(sent, sent + 64 * 1024)
      : body.chunk.subarray(0, Math.min(body.chunk.length, total - sent));
    sent += chunk.length;
    counted(chunk.length);
    if (!out.write(chunk)) {
      await new Promise<void>((resolve) => {
        out.once("drain", resolve);
        const poll = setInterval(() => {
          if (stopped()) {
            clearInterval(poll);
            resolve();
          }
        }, 20);
        out.once("drain", () => clearInterval(poll));
      });
    }
  }
}

function flat(headers: http.IncomingHttpHeaders | http2.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return out;
}

/** Sends `request` over HTTP/1.1 on a new connection and reports how the exchange ended within `timeoutMs`. */
export function sendH1(port: number, request: RawRequest, timeoutMs: number): Promise<RawOutcome> {
  const started = performance.now();
  return new Promise<RawOutcome>((resolve, reject) => {
    const outcome: RawOutcome = {
      headers: {},
      trailers: {},
      body: Buffer.alloc(0),
      bytesWritten: 0,
      end: "closed",
      elapsedMs: 0,
    };
    let over = false;
    const finish = (end: RawOutcome["end"]) => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      outcome.end = end;
      outcome.elapsedMs = performance.now() - started;
      req.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      over = true;
      req.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms (HTTP/1.1 ${request.path})`));
    }, timeoutMs);
    const req = http.request({
      host: "127.0.0.1",
      port,
      method: "POST",
      path: request.path,
      headers: request.headers,
      agent: false,
    });
    req.on("response", (res) => {
      outcome.status = res.statusCode;
      outcome.headers = flat(res.headers);
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on("data", (chunk: Buffer) => {
        if (kept < 64 * 1024) chunks.push(chunk);
        kept += chunk.length;
      });
      res.on("end", () => {
        outcome.body = Buffer.concat(chunks);
        outcome.trailers = flat(res.trailers);
        finish("response");
      });
      res.on("error", () => finish(outcome.status === undefined ? "closed" : "response"));
    });
    req.on("error", () => {
      // A write error while the response is still arriving is not the end of the exchange.
      if (outcome.status === undefined) finish("closed");
    });
    req.on("close", () => {
      if (outcome.status === undefined) finish("closed");
    });
    // Node holds the headers back until the first body chunk; a request with no body bytes must still go out.
    req.flushHeaders();
    void pump(
      req,
      request.body,
      () => over || req.destroyed,
      (n) => {
        outcome.bytesWritten += n;
      },
    ).then(() => {
      if (!request.stall && !over && !req.destroyed) req.end();
    });
  });
}

/** Sends `request` over HTTP/2 (h2c) on a new session and reports how the exchange ended within `timeoutMs`. */
export function sendH2(port: number, request: RawRequest, timeoutMs: number): Promise<RawOutcome> {
  const started = performance.now();
  return new Promise<RawOutcome>((resolve, reject) => {
    const outcome: RawOutcome = {
      headers: {},
      trailers: {},
      body: Buffer.alloc(0),
      bytesWritten: 0,
      end: "closed",
      elapsedMs: 0,
    };
    let over = false;
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", () => {});
    const finish = (end: RawOutcome["end"]) => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      outcome.end = end;
      outcome.elapsedMs = performance.now() - started;
      session.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      over = true;
      session.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms (HTTP/2 ${request.path})`));
    }, timeoutMs);
    const stream = session.request({ ":method": "POST", ":path": request.path, ...request.headers });
    const chunks: Buffer[] = [];
    let kept = 0;
    stream.on("response", (headers) => {
      outcome.status = Number(headers[":status"]);
      outcome.headers = flat(headers);
    });
    stream.on("trailers", (trailers) => {
      outcome.trailers = flat(trailers);
    });
    stream.on("data", (chunk: Buffer) => {
      if (kept < 64 * 1024) chunks.push(chunk);
      kept += chunk.length;
    });
    stream.on("end", () => {
      outcome.body = Buffer.concat(chunks);
      finish("response");
    });
    stream.on("error", () => {});
    stream.on("close", () => {
      outcome.body = Buffer.concat(chunks);
      outcome.rstCode = stream.rstCode;
      // A reset with NO_ERROR after a complete response is the server declining the rest of the upload.
      finish(
        stream.rstCode === http2.constants.NGHTTP2_NO_ERROR && outcome.status !== undefined
          ? "response"
          : "reset",
      );
    });
    session.on("close", () => finish("closed"));
    void pump(
      stream,
      request.body,
      () => over || stream.destroyed || stream.closed,
      (n) => {
        outcome.bytesWritten += n;
      },
    ).then(() => {
      if (!request.stall && !over && !stream.destroyed) stream.end();
    });
  });
}

/**
 * Declares `size` bytes of body over HTTP/1.1 on a raw connection and sends them as fast as the server takes them,
 * until the server closes the connection; reports the response and when the close came.
 */
export function uploadUntilClosed(
  port: number,
  path: string,
  headers: Record<string, string>,
  size: number,
): Promise<{ response: string; closedAfterResponseMs: number; bytesWritten: number }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let response = "";
    let answeredAt = 0;
    let bytesWritten = 0;
    const chunk = Buffer.alloc(64 * 1024);
    const pump = () => {
      while (!socket.destroyed && bytesWritten < size) {
        bytesWritten += chunk.length;
        if (!socket.write(chunk)) {
          socket.once("drain", pump);
          return;
        }
      }
    };
    socket.on("data", (data: Buffer) => {
      response += data.toString("latin1");
      answeredAt ||= performance.now();
    });
    socket.on("error", () => {});
    socket.on("close", () =>
      resolve({ response, closedAfterResponseMs: performance.now() - answeredAt, bytesWritten }),
    );
    socket.on("connect", () => {
      const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
      socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n${lines.join("")}\r\n`);
      pump();
    });
  });
}

/** The RPC protocols the HTTP port speaks, by their wire form. */
export type RpcProtocol = "connect" | "grpc" | "grpc-web";

/**
 * The code an RPC exchange ended with, as Connect names it ("unauthenticated", "resource_exhausted", "ok"), read
 * from each protocol's own wire form: Connect's JSON error, gRPC's grpc-status, gRPC-Web's trailer frame.
 */
export function rpcCodeOf(protocol: RpcProtocol, outcome: RawOutcome): string {
  if (protocol === "connect") {
    if (outcome.status === 200) return "ok";
    try {
      return String(JSON.parse(outcome.body.toString()).code);
    } catch {
      return `http ${outcome.status}`;
    }
  }
  let status = outcome.trailers["grpc-status"] ?? outcome.headers["grpc-status"];
  if (protocol === "grpc-web") {
    let offset = 0;
    while (status === undefined && offset + 5 <= outcome.body.length) {
      const length = outcome.body.readUInt32BE(offset + 1);
      if ((outcome.body[offset]! & 0x80) !== 0) {
        const trailer = outcome.body.subarray(offset + 5, offset + 5 + length).toString();
        status = /grpc-status: ?(\d+)/.exec(trailer)?.[1];
      }
      offset += 5 + length;
    }
  }
  return status === undefined
    ? `no status (${outcome.end}, http ${outcome.status})`
    : codeToString(Number(status));
}
