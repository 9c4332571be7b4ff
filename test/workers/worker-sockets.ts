/**
 * Which worker process holds a connection, observed from outside through Linux /proc: the server side of a TCP
 * connection is a socket inode in /proc/net/tcp, and the process owning it has that inode among its file
 * descriptors. Nothing in keymesh's responses says which process answered, and nothing needs to.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import http2 from "node:http2";

/** The inode of the server-side socket of the connection from `clientPort` to `serverPort` on 127.0.0.1. */
function serverSocketInode(serverPort: number, clientPort: number): string | undefined {
  const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, "0");
  const local = `0100007F:${hex(serverPort)}`;
  const remote = `0100007F:${hex(clientPort)}`;
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === local && fields[2] === remote) return fields[9];
  }
  return undefined;
}

/** The pid among `pids` that holds the server side of the connection from `clientPort`, if one does. */
export function connectionOwner(serverPort: number, clientPort: number, pids: number[]): number | undefined {
  const inode = serverSocketInode(serverPort, clientPort);
  if (!inode || inode === "0") return undefined;
  const target = `socket:[${inode}]`;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === target) return pid;
      } catch {
        // The descriptor closed while it was being read.
      }
    }
  }
  return undefined;
}

/** An answer to one HTTP/2 request. */
export interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP/2 (h2c) connection to 127.0.0.1:`port`, kept open so that its owner can be observed. */
export interface H2Connection {
  localPort: number;
  request(path: string, headers?: http2.OutgoingHttpHeaders, body?: Uint8Array): Promise<H2Answer>;
  close(): void;
}

/** Opens an HTTP/2 connection and waits until it is established. */
export function connectH2(port: number): Promise<H2Connection> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.once("error", reject);
    session.once("connect", () => {
      session.off("error", reject);
      // A session error fails the request in flight; it must not crash the test process.
      session.on("error", () => {});
      resolve({
        localPort: session.socket.localPort!,
        close: () => session.close(),
        request: (path, headers = {}, body) =>
          new Promise<H2Answer>((done, fail) => {
            const stream = session.request({
              ":method": body ? "POST" : "GET",
              ":path": path,
              ...headers,
            });
            stream.setTimeout(10_000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
            let status = 0;
            let responseHeaders: http2.IncomingHttpHeaders = {};
            let trailers: http2.IncomingHttpHeaders = {};
            const chunks: Buffer[] = [];
            stream.on("response", (h) => {
              status = Number(h[":status"]);
              responseHeaders = h;
            });
            stream.on("trailers", (t) => {
              trailers = t;
            });
            stream.on("data", (chunk: Buffer) => chunks.push(chunk));
            stream.on("error", fail);
            stream.on("close", () => {
              if (status === 0) fail(new Error(`stream closed without a response (code ${stream.rstCode})`));
              else done({ status, headers: responseHeaders, trailers, body: Buffer.concat(chunks) });
            });
            stream.end(body ? Buffer.from(body) : undefined);
          }),
      });
    });
  });
}
