import type net from "node:net";

/** Binds `server` to host:port (0 picks a free port) and resolves with the TCP port it got; `name` labels errors. */
export function bindPort(server: net.Server, port: number, host: string, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const address = server.address();
      if (address === null || typeof address === "string")
        reject(new Error(`${name}: not bound to a TCP port`));
      else resolve(address.port);
    });
  });
}
