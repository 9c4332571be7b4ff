/**
 * The hang watchdog's reading of the wire protocol. No Postgres or Redis: a local TCP server plays the database,
 * and the test writes both sides of the conversation, split into chunks the way TCP may deliver them.
 */
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UNRESPONSIVE_CODE } from "../../src/store/errors.js";
import { createHangWatchdog } from "../../src/store/hang-watchdog.js";

// Long enough that a busy machine's scheduling delays between a request and its answer stay well inside it.
const LIMIT_MS = 600;

let server: net.Server;
let port: number;
let accepted: (socket: net.Socket) => void = () => {};

beforeAll(async () => {
  server = net.createServer((socket) => accepted(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as net.AddressInfo).port;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function message(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, "latin1");
  head.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function startup(): Buffer {
  const body = Buffer.from("user\0keymesh\0\0", "latin1");
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length + 8, 0);
  head.writeUInt32BE(196608, 4);
  return Buffer.concat([head, body]);
}

const ready = () => message("Z", Buffer.from("I"));
// Rows whose bytes look like protocol messages, to catch a parser that scans for them instead of framing.
const row = (text: string) =>
  message("D", Buffer.from(`\0\x01\0\0\0${String.fromCharCode(text.length)}${text}`));

/** Writes `bytes` to `socket` in pieces cut at `cuts` (fractions), pausing briefly between them. */
async function writeInPieces(socket: net.Socket, bytes: Buffer, cuts: number[]): Promise<void> {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))]
    .filter((p) => p > 0 && p < bytes.length)
    .sort((a, b) => a - b);
  let from = 0;
  for (const to of [...points, bytes.length]) {
    socket.write(bytes.subarray(from, to));
    from = to;
    await sleep(2);
  }
}

/** A request from the client: extended (Bind, Execute, Sync), simple (Query), or Parse and Flush. */
interface Request {
  kind: "extended" | "simple" | "describe";
  /** Rows the answer carries. */
  rows: string[];
}

const request: fc.Arbitrary<Request> = fc.oneof(
  fc.record({
    kind: fc.constant("extended" as const),
    rows: fc.array(fc.constantFrom("Z\0\0\0\x05I", "S", "plain"), { maxLength: 3 }),
  }),
  fc.record({ kind: fc.constant("simple" as const), rows: fc.array(fc.constant("x"), { maxLength: 2 }) }),
  fc.record({ kind: fc.constant("describe" as const), rows: fc.constant([] as string[]) }),
);

function requestBytes(r: Request): Buffer {
  if (r.kind === "simple") return message("Q", Buffer.from("select 1\0"));
  if (r.kind === "describe")
    return Buffer.concat([message("P", Buffer.from("\0select 1\0\0\0")), message("H")]);
  return Buffer.concat([
    message("B", Buffer.from("\0\0\0\0\0\0\0\0")),
    message("E", Buffer.from("\0\0\0\0\0")),
    message("S"),
  ]);
}

function answerBytes(r: Request): Buffer {
  if (r.kind === "describe") return message("1");
  return Buffer.concat([...r.rows.map(row), message("C", Buffer.from("SELECT 1\0")), ready()]);
}

async function connected(): Promise<{ client: net.Socket; db: net.Socket }> {
  const watchdog = createHangWatchdog(LIMIT_MS);
  const db = new Promise<net.Socket>((resolve) => {
    accepted = resolve;
  });
  const client = watchdog.socket({ host: ["127.0.0.1"], port: [port] });
  client.on("error", () => {});
  client.on("data", () => {});
  const dbSocket = await db;
  dbSocket.on("error", () => {});
  return { client, db: dbSocket };
}

function closedWith(socket: net.Socket): Promise<string | undefined> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve(undefined);
    socket.once("error", (error: { code?: string }) => resolve(error.code));
    socket.once("close", () => resolve(undefined));
  });
}

describe("the hang watchdog (no backend)", () => {
  it("never closes a connection whose server answers every request, however the bytes are split", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(request, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 4 }),
        fc.integer({ min: 0, max: 100 }),
        async (exchanges, cuts, thinkMs) => {
          const { client, db } = await connected();
          try {
            await writeInPieces(client, startup(), cuts);
            await writeInPieces(db, Buffer.concat([message("R", Buffer.alloc(4)), ready()]), cuts);
            for (const pipelined of exchanges) {
              await writeInPieces(client, Buffer.concat(pipelined.map(requestBytes)), cuts);
              await sleep(thinkMs);
              await writeInPieces(db, Buffer.concat(pipelined.map(answerBytes)), cuts);
            }
            // A notification while idle (LISTEN) is not an answer anyone waits for.
            db.write(message("A", Buffer.from("\0\0\0\x01keymesh_changes\0{}\0")));
            await sleep(LIMIT_MS * 1.5);
            expect(client.destroyed).toBe(false);
          } finally {
            client.destroy();
            db.destroy();
          }
        },
      ),
      {
        numRuns: 15,
        examples: [
          [
            [
              [
                { kind: "describe", rows: [] },
                { kind: "extended", rows: ["S"] },
              ],
              [{ kind: "simple", rows: ["x", "x"] }],
              [
                { kind: "simple", rows: [] },
                { kind: "extended", rows: ["Z\0\0\0\x05I"] },
              ],
            ],
            [],
            12,
          ],
        ],
      },
    );
  }, 60_000);

  it("closes a connection with DATABASE_UNRESPONSIVE when its server stops answering mid-response", async () => {
    await fc.assert(
      fc.asyncProperty(request, fc.double({ min: 0, max: 0.99, noNaN: true }), async (r, answered) => {
        const { client, db } = await connected();
        try {
          client.write(startup());
          db.write(ready());
          await sleep(20);
          const closed = closedWith(client);
          const started = performance.now();
          client.write(requestBytes(r));
          // The server sends part of its answer, never the end of it. A Flush is answered by any byte at all, so a
          // server that hangs after starting that answer is beyond what the watchdog can tell.
          const answer = answerBytes(r);
          const sent = r.kind === "describe" ? 0 : Math.floor(answered * (answer.length - 1));
          db.write(answer.subarray(0, sent));
          expect(await closed).toBe(UNRESPONSIVE_CODE);
          // One sweep (a quarter of the limit) late at most, plus room for a busy machine.
          expect(performance.now() - started).toBeLessThan(LIMIT_MS * 1.25 + 500);
          expect(performance.now() - started).toBeGreaterThanOrEqual(LIMIT_MS - 5);
        } finally {
          client.destroy();
          db.destroy();
        }
      }),
      { numRuns: 10 },
    );
  }, 60_000);
});
