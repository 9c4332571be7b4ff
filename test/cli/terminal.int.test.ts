import { execFile } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { BIN, CLI_TIMEOUT_MS, ROOT } from "./support.js";

const run = promisify(execFile);
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

// What a person sees: the CLI runs in a real pseudo-terminal (tmux), and the screen is read back with capture-pane.
describe("the keymesh CLI on a terminal (needs Postgres and tmux)", () => {
  let t: TestServer;
  let dir: string;
  let socket: string;
  let workspaceId: string;
  const tmux = (...args: string[]) => run("tmux", ["-S", socket, ...args]);

  /** Runs `args` in a new tmux window and returns the screen once the command has exited. */
  async function onScreen(name: string, args: string[], redirect = ""): Promise<string> {
    const env = [
      `PATH=${process.env.PATH}`,
      `HOME=${dir}`,
      "TERM=xterm-256color",
      `KEYMESH_ADDR=${t.httpUrl}`,
      `KEYMESH_GRPC_ADDR=${t.grpcAddress}`,
    ];
    const command = `cd ${quote(ROOT)} && env -i ${env.map(quote).join(" ")} ${quote(process.execPath)} ${quote(BIN)} --root-key-file ${quote(join(dir, "root-key"))} ${args.map(quote).join(" ")}${redirect}; echo "__EXIT_$?"; sleep 600`;
    await tmux("new-window", "-d", "-n", name, command);
    for (let i = 0; i < 240; i++) {
      const { stdout } = await tmux("capture-pane", "-p", "-t", name);
      if (stdout.includes("__EXIT_")) return stdout;
      await delay(250);
    }
    throw new Error(`${name} did not finish:\n${(await tmux("capture-pane", "-p", "-t", name)).stdout}`);
  }

  beforeAll(async () => {
    t = await startTestServer();
    dir = await mkdtemp(join(tmpdir(), "keymesh-tty-"));
    socket = join(dir, "tmux.sock");
    await writeFile(join(dir, "root-key"), `${t.rootKey}\n`, { mode: 0o600 });
    const ws = await t.admin.createWorkspace({ name: "Acme Sales", plan: "enterprise", apiAccess: true });
    workspaceId = ws.workspace!.id;
    const space = await t.admin.createKeySpace({
      name: "trophy",
      format: { style: KeyStyle.PREFIX_DOT_SECRET },
      credentialSources: [{ kind: 3, header: "x-api-key" }],
    });
    for (const name of ["one", "two", "three"]) {
      await t.admin.createKey({
        keySpaceId: space.keySpace!.id,
        workspaceId,
        ownerType: OwnerType.ORGANIZATION,
        name,
      });
    }
    // A wide, tall session so that tables are not wrapped by the terminal.
    await tmux("new-session", "-d", "-s", "keymesh-test", "-x", "220", "-y", "50", "sleep 600");
  });
  afterAll(async () => {
    await tmux("kill-server").catch(() => {});
    await t?.stop();
  });

  it(
    "lists workspaces as a bordered table with a header row",
    async () => {
      const screen = await onScreen("list", ["workspaces", "list"]);
      expect(screen).toContain("__EXIT_0");
      const lines = screen.split("\n");
      const header = lines.find((l) => l.includes("│ ID"));
      expect(header).toMatch(/│ ID\s+│ NAME\s+│ SEGMENT\s+│ STATUS\s+│ API ACCESS\s+│ PLAN\s+│ CREATED\s+│/);
      const row = lines.find((l) => l.includes(workspaceId));
      expect(row).toMatch(
        /│ ws_\w+\s+│ Acme Sales\s+│ \w+\s+│ active\s+│ yes\s+│ enterprise\s+│ \d{4}-\d\d-\d\dT[\d:]+Z\s+│/,
      );
      expect(lines.some((l) => l.startsWith("┌"))).toBe(true);
      expect(lines.some((l) => l.startsWith("└"))).toBe(true);
    },
    CLI_TIMEOUT_MS,
  );

  it(
    "shows a progress bar while rotating every key of a workspace, and writes the new secrets",
    async () => {
      const secrets = join(dir, "secrets.tsv");
      const screen = await onScreen(
        "rotate",
        ["keys", "rotate", "--workspace", workspaceId, "--all", "--grace", "0"],
        ` > ${quote(secrets)}`,
      );
      expect(screen).toContain("__EXIT_0");
      expect(screen).toMatch(/rotating \[█{30}\] 3\/3/);
      const lines = (await readFile(secrets, "utf8")).trim().split("\n");
      expect(lines).toHaveLength(3);
      for (const line of lines)
        expect(line).toMatch(/^key_\w+\tkey_\w+\t(one|two|three)\t[A-Za-z0-9]{8}\.[A-Za-z0-9]+$/);
    },
    CLI_TIMEOUT_MS,
  );
});
