import net from "node:net";
import { UNRESPONSIVE_CODE } from "./errors.js";

/** The connection options postgres.js hands to its `socket` factory. */
export interface SocketTarget {
  host: string[];
  port: number[];
  path?: string | false;
}

const SSL_REQUEST = 80877103;
const CANCEL_REQUEST = 80877102;
const GSSENC_REQUEST = 80877104;
const [SYNC, QUERY, FLUSH, READY] = ["S", "Q", "H", "Z"].map((c) => c.charCodeAt(0)) as [
  number,
  number,
  number,
  number,
];

/**
 * Splits one direction of the Postgres wire protocol into messages and reports each one's type as it starts.
 * Startup-phase messages have no type byte (length, then a request code); `untyped` marks the next one as such.
 */
class Framer {
  private head: Buffer = Buffer.alloc(0);
  private body = 0;

  constructor(
    public untyped: boolean,
    private readonly onMessage: (type: number, code: number) => void,
  ) {}

  feed(chunk: Buffer, from = 0): void {
    let at = from;
    while (at < chunk.length) {
      if (this.body > 0) {
        const n = Math.min(this.body, chunk.length - at);
        this.body -= n;
        at += n;
        continue;
      }
      const size = this.untyped ? 8 : 5;
      let head: Buffer;
      if (this.head.length === 0 && chunk.length - at >= size) {
        head = chunk.subarray(at, at + size);
        at += size;
      } else {
        const take = Math.min(size - this.head.length, chunk.length - at);
        this.head = Buffer.concat([this.head, chunk.subarray(at, at + take)]);
        at += take;
        if (this.head.length < size) return;
        head = this.head;
        this.head = Buffer.alloc(0);
      }
      if (this.untyped) {
        this.untyped = false;
        this.body = head.readUInt32BE(0) - 8;
        this.onMessage(0, head.readUInt32BE(4));
      } else {
        this.body = head.readUInt32BE(1) - 4;
        this.onMessage(head[0]!, 0);
      }
    }
  }
}

/** What the watchdog knows of one connection: how many requests await the server's ReadyForQuery. */
class Watched {
  pending = 0;
  /** A Flush or SSLRequest waits for an answer of unknown length: its first byte counts as the answer. */
  awaitingAny = false;
  /** Since when the connection has waited with no byte from the server, while a request is outstanding. */
  waitingSince = 0;
  /** The server's next byte is its one-byte answer to SSLRequest. */
  sslAnswer = false;
  /** Under TLS the raw socket carries ciphertext: the watchdog cannot follow it and stands aside. */
  off = false;
  readonly frontend: Framer;
  readonly backend: Framer;

  constructor(readonly socket: net.Socket) {
    this.frontend = new Framer(true, (type, code) => {
      if (type === 0) {
        if (code === SSL_REQUEST) {
          this.sslAnswer = true;
          this.awaitingAny = true;
        } else if (code === GSSENC_REQUEST) this.off = true;
        else if (code !== CANCEL_REQUEST) this.pending++;
      } else if (type === SYNC || type === QUERY) this.pending++;
      else if (type === FLUSH) this.awaitingAny = true;
    });
    this.backend = new Framer(false, (type) => {
      if (type === READY && this.pending > 0) this.pending--;
    });
  }

  get outstanding(): boolean {
    return !this.off && (this.pending > 0 || this.awaitingAny);
  }

  wrote(chunk: Buffer): void {
    if (this.off) return;
    const was = this.outstanding;
    this.frontend.feed(chunk);
    if (!was && this.outstanding) this.waitingSince = performance.now();
  }

  read(chunk: Buffer): void {
    if (this.off) return;
    this.awaitingAny = false;
    this.waitingSince = performance.now();
    let from = 0;
    if (this.sslAnswer && chunk.length > 0) {
      this.sslAnswer = false;
      from = 1;
      if (chunk[0] === "S".charCodeAt(0)) {
        this.off = true;
        return;
      }
      // Refused: the StartupMessage follows in plain text.
      this.frontend.untyped = true;
    }
    this.backend.feed(chunk, from);
  }
}

/**
 * Closes any connection whose server has not sent a byte for `limitMs` while a request is outstanding. The server
 * cancels a statement itself after statement_timeout, so a live one always answers within that; silence beyond it
 * means the server (or the path to it) is hung, and postgres.js would otherwise wait forever, holding the query and
 * its pool slot. Closing fails the queries on that connection with code DATABASE_UNRESPONSIVE, and the pool opens a
 * fresh connection for the next. Plain TCP and Unix sockets are followed exactly; under TLS the watchdog stands
 * aside once the handshake starts, and only connect_timeout and the callers' own deadlines bound the wait.
 */
export function createHangWatchdog(limitMs: number): { socket(target: SocketTarget): net.Socket } {
  const watched = new Set<Watched>();
  let timer: NodeJS.Timeout | undefined;
  let nextHost = 0;

  const sweep = () => {
    const now = performance.now();
    for (const w of watched) {
      if (w.socket.destroyed) watched.delete(w);
      else if (w.outstanding && now - w.waitingSince > limitMs) {
        watched.delete(w);
        const error = Object.assign(
          new Error(`the database sent nothing for ${limitMs} ms while a query was outstanding`),
          { code: UNRESPONSIVE_CODE },
        );
        w.socket.destroy(error);
      }
    }
    if (watched.size === 0) {
      clearInterval(timer);
      timer = undefined;
    }
  };

  return {
    socket(target) {
      let socket: net.Socket;
      if (target.path) socket = net.connect(target.path);
      else {
        // postgres.js rotates through the hosts of a multi-host URL itself only when it opens the socket.
        const i = nextHost++ % target.host.length;
        const host = target.host[i]!;
        socket = net.connect(target.port[i] ?? target.port[0]!, host);
        // Read by postgres.js for TLS server name indication.
        Object.assign(socket, { host, port: target.port[i] });
      }
      const w = new Watched(socket);
      const write = socket.write;
      socket.write = function (this: net.Socket, chunk: unknown, ...rest: unknown[]) {
        if (Buffer.isBuffer(chunk)) w.wrote(chunk);
        return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
      } as typeof socket.write;
      socket.prependListener("data", (chunk: Buffer) => w.read(chunk));
      watched.add(w);
      if (!timer) {
        timer = setInterval(sweep, Math.min(1000, Math.max(50, limitMs / 4)));
        timer.unref();
      }
      return socket;
    },
  };
}
