import { Command, CommanderError, Option } from "commander";
import { type CliEnv, type GlobalFlags, loadCliConfig } from "./config.js";
import { type CommandContext, createContext } from "./context.js";
import { CliError, EXIT, explain } from "./errors.js";
import { createPrinter, type Printer } from "./output.js";

/** Streams and environment of one run, so that tests can run the CLI in-process too. */
export interface CliIo {
  stdout: Printer["stdout"];
  stderr: Printer["stderr"];
  /** The environment; the process environment (read in config.ts) when absent. */
  env?: CliEnv;
  signal: AbortSignal;
}

/** A command's body: gets the context, its positional arguments and its own options; returns an exit code. */
export type Handler<O> = (ctx: CommandContext, args: unknown[], opts: O) => Promise<number | undefined>;

/** Registers a group of commands on the program. */
export type Register = (
  program: Command,
  action: <O>(handler: Handler<O>) => (...all: unknown[]) => Promise<void>,
) => void;

/** Builds the program from `groups` and runs it on `argv` (without node and the script); returns the exit code. */
export async function runCli(
  argv: readonly string[],
  io: CliIo,
  groups: readonly Register[],
): Promise<number> {
  let code: number = EXIT.ok;
  let context: CommandContext | undefined;
  const program = new Command("keymesh")
    .description(
      "Operate keymesh: key spaces from files, workspaces, members, keys, approvals, audit, checks.",
    )
    .addOption(
      new Option(
        "--addr <url>",
        "KeyAdmin/KeyVerify address (env KEYMESH_ADDR; default http://127.0.0.1:8080)",
      ),
    )
    .addOption(
      new Option(
        "--grpc-addr <url>",
        "Envoy Check address (env KEYMESH_GRPC_ADDR; default: --addr's host, port 9090)",
      ),
    )
    .addOption(new Option("--root-key-file <path>", "file holding the root key (else env KEYMESH_ROOT_KEY)"))
    .addOption(
      new Option("--ca-file <path>", "PEM CA certificates to trust for https:// (env KEYMESH_CA_FILE)"),
    )
    .addOption(new Option("--insecure", "allow plain http:// to a host other than this machine"))
    .addOption(
      new Option(
        "--timeout <ms>",
        "deadline of each call in milliseconds (env KEYMESH_TIMEOUT_MS; default 10000)",
      ),
    )
    .addOption(
      new Option(
        "-o, --output <format>",
        "table, plain, json or yaml (default: table on a terminal, else plain)",
      ),
    )
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .exitOverride();

  const action =
    <O>(handler: Handler<O>) =>
    async (...all: unknown[]) => {
      const command = all[all.length - 1] as Command;
      const config = loadCliConfig(command.optsWithGlobals<GlobalFlags>(), {
        env: io.env,
        stdoutIsTTY: io.stdout.isTTY === true,
        warn: (message) => io.stderr.write(`keymesh: warning: ${message}\n`),
      });
      context = createContext(config, createPrinter(config.output, io.stdout, io.stderr), io.signal);
      const group = command.parent && command.parent !== program ? command.parent.name() : undefined;
      if (group) context.target.listCommand = `keymesh ${group} list`;
      code = (await handler(context, all.slice(0, -2), command.opts() as O)) ?? EXIT.ok;
    };
  for (const register of groups) register(program, action);
  // Subcommands inherit the exit override and output settings only if set on each; copy them down.
  const configure = (cmd: Command) => {
    for (const sub of cmd.commands) {
      sub.exitOverride().configureOutput({
        writeOut: (text) => io.stdout.write(text),
        writeErr: (text) => io.stderr.write(text),
      });
      sub.showHelpAfterError("(run with --help for usage)");
      configure(sub);
    }
  };
  configure(program);

  try {
    await program.parseAsync([...argv], { from: "user" });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end through the override too, successfully.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const target = context?.target ?? { address: "keymesh", timeoutMs: 0 };
    const failure = explain(error, target);
    io.stderr.write(`keymesh: ${failure.message}\n`);
    return failure instanceof CliError ? failure.exitCode : EXIT.failure;
  }
}
