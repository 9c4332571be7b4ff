import { execFile } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import { freePort, spawnTracked } from "./processes.js";

const run = promisify(execFile);

/** A private `redis-server` process started for a test. */
export interface RedisServerHandle {
  url: string;
  port: number;
  pid: number;
  /** SIGTERM (after SIGCONT, in case it is paused), then waits for the process to exit. */
  stop(): Promise<void>;
  /** SIGSTOP: the server keeps its sockets open but answers nothing, like a hung Redis. */
  pause(): void;
  /** SIGCONT after `pause`. */
  resume(): void;
}

/** True when `redis-server` is on PATH, so Redis tests can run. */
export function redisServerAvailable(): boolean {
  return onPath("redis-server");
}

function onPath(binary: string): boolean {
  return (process.env.PATH ?? "").split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, binary), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function bindable(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject()));
    });
  });
}

/** A port the kernel just handed out, so very likely still free. */

/**
 * A free port whose cluster-bus twin (port + 10000) is free too. Kernel-chosen ports are often above 55535,
 * where the twin cannot exist, so pick below the ephemeral range (which also avoids clashing with clients).
 */
async function freeClusterPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    try {
      await bindable(port + 10_000);
      return await bindable(port);
    } catch {
      // Taken; try another.
    }
  }
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let reply = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk.toString();
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts `redis-server` without persistence on a free (or the given) port and waits until it answers PING. */
export async function startRedisServer(
  options: { port?: number; args?: string[]; dir?: string } = {},
): Promise<RedisServerHandle> {
  // Another process may grab the probed port before redis-server binds it; try a fresh one then.
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(options.port ?? (await freePort()), options);
    } catch (error) {
      if (options.port !== undefined || attempt >= 3) throw error;
    }
  }
}

async function launch(port: number, options: { args?: string[]; dir?: string }): Promise<RedisServerHandle> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "keymesh-redis-"));
  const { child, output, exited, hasExited } = spawnTracked(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir].concat(
      options.args ?? [],
    ),
  );
  void exited.then(() => {
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  });

  const stop = async () => {
    if (!hasExited()) {
      child.kill("SIGCONT");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    await exited;
  };

  const giveUpAt = Date.now() + 10_000;
  while (!(await ping(port))) {
    if (hasExited() || Date.now() > giveUpAt) {
      await stop();
      throw new Error(`redis-server on port ${port} did not start:\n${output()}`);
    }
    await sleep(25);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: child.pid as number,
    stop,
    pause: () => {
      child.kill("SIGSTOP");
    },
    resume: () => {
      child.kill("SIGCONT");
    },
  };
}

/** Starts a Redis Cluster of `masters` masters (default 3, no replicas) and waits for `cluster_state:ok`. */
export async function startRedisCluster(
  masters = 3,
): Promise<{ nodes: { host: string; port: number }[]; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "keymesh-redis-cluster-"));
  const servers: RedisServerHandle[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      for (let attempt = 1; ; attempt++) {
        const port = await freeClusterPort();
        const args = ["--cluster-enabled", "yes", "--cluster-config-file", join(dir, `nodes-${port}.conf`)];
        try {
          servers.push(
            await startRedisServer({ port, dir, args: [...args, "--cluster-node-timeout", "5000"] }),
          );
          break;
        } catch (error) {
          if (attempt >= 3) throw error;
        }
      }
    }
    const addresses = servers.map((s) => `127.0.0.1:${s.port}`);
    await run(
      "redis-cli",
      ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"],
      {
        timeout: 30_000,
      },
    );
    const giveUpAt = Date.now() + 30_000;
    for (const server of servers) {
      for (;;) {
        const { stdout } = await run("redis-cli", ["-p", String(server.port), "cluster", "info"]);
        if (stdout.includes("cluster_state:ok")) break;
        if (Date.now() > giveUpAt)
          throw new Error(`cluster node ${server.port} never reached cluster_state:ok`);
        await sleep(100);
      }
    }
    return { nodes: servers.map((s) => ({ host: "127.0.0.1", port: s.port })), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
