/** The `keymesh` operator CLI: bin/keymesh.mjs imports this module (compiled, or through tsx in a checkout). */
import { registerApprovals } from "./commands/approvals.js";
import { registerAudit } from "./commands/audit.js";
import { registerDecisions } from "./commands/decisions.js";
import { registerKeys } from "./commands/keys.js";
import { registerKeySpaces } from "./commands/keyspaces.js";
import { registerWorkspaces } from "./commands/workspaces.js";
import { runCli } from "./program.js";

const interrupted = new AbortController();
process.once("SIGINT", () => {
  // Watches and bulk work stop at the next step; anything stuck waiting on the network is ended shortly after.
  interrupted.abort();
  setTimeout(() => process.exit(130), 2000).unref();
});

const code = await runCli(
  process.argv.slice(2),
  { stdout: process.stdout, stderr: process.stderr, signal: interrupted.signal },
  [registerKeySpaces, registerWorkspaces, registerKeys, registerApprovals, registerAudit, registerDecisions],
);
// Exit explicitly once output is flushed: an HTTP agent's idle socket must not hold the command open.
process.stdout.write("", () => process.exit(code));
