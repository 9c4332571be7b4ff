import net from "node:net";

/** A TCP proxy on 127.0.0.1 that a test can cut, to play a database that stops answering. */
export interface TcpProxy {
  port: number;
  /** Resets every open connection and swallows new ones without a byte in reply, as a hung host does. */
  cut(): void;
  /** Forwards again (new connections only). */
  restore(): void;
  /** Everything clients have sent through the proxy so far, to see what a driver says on its own. */
  clientBytes(): Buffer;
  close(): Promise<void>;
}

/** Starts a proxy to target host:port on a free port. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const open = new Set<net.Socket>();
  let down = false;
  const sent: Buffer[] = [];
  const server = net.createServer((client) => {
    open.add(client);
    client.once("close", () => open.delete(client));
    client.on("error", () => {});
    if (down) return;
    const upstream = net.connect(target.port, target.host);
    open.add(upstream);
    upstream.once("close", () => {
      open.delete(upstream);
      client.destroy();
    });
    upstream.on("error", () => client.destroy());
    client.once("close", () => upstream.destroy());
    client.on("data", (chunk: Buffer) => sent.push(chunk));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      down = true;
      for (const socket of open) socket.resetAndDestroy();
    },
    restore() {
      down = false;
    },
    clientBytes: () => Buffer.concat(sent),
    close() {
      for (const socket of open) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
