import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** A small Dockerfile reader: enough of the syntax to check keymesh's Dockerfile and replay its stages by hand. */

/** One instruction, continuation lines joined. */
export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** A build stage: its base image, its name, and its instructions after FROM. */
export interface Stage {
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  args: Record<string, string>;
  stages: Stage[];
}

/** Parses Dockerfile text: comments and blank lines dropped, `\` continuations joined, stages split at FROM. */
export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  let pending = "";
  let startLine = 0;
  text.split("\n").forEach((raw, index) => {
    const line = raw.trimEnd();
    if (!pending && (line.trim() === "" || line.trimStart().startsWith("#"))) return;
    if (!pending) startLine = index + 1;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1).trim()} `;
      return;
    }
    const full = `${pending}${line.trim()}`;
    pending = "";
    const match = /^(\S+)\s*(.*)$/.exec(full);
    if (match) instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]!, line: startLine });
  });
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === "FROM") {
      const [from, as, name] = instruction.args.split(/\s+/);
      stages.push({
        from: from!.replace(/\$\{(\w+)\}/g, (_, arg: string) => args[arg] ?? ""),
        name: as?.toUpperCase() === "AS" ? name : undefined,
        instructions: [],
      });
    } else if (stages.length === 0 && instruction.keyword === "ARG") {
      const [name, value] = instruction.args.split("=");
      args[name!.trim()] = (value ?? "").trim();
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return { args, stages };
}

/** The instructions of `stage` with `keyword`. */
export const all = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);

/** An exec-form argument list (`["a", "b"]`), as JSON. */
export function execForm(args: string): string[] {
  const parsed = JSON.parse(args) as unknown;
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === "string")) {
    throw new Error(`not an exec-form list: ${args}`);
  }
  return parsed;
}

/** COPY's source stage (undefined for the build context), sources and destination. */
export function copyOf(instruction: Instruction): {
  from: string | undefined;
  sources: string[];
  dest: string;
} {
  const words = instruction.args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith("--"));
  const paths = words.filter((w) => !w.startsWith("--"));
  const from = flags.find((f) => f.startsWith("--from="))?.slice("--from=".length);
  return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! };
}

/** ENV's variables, in the `ENV A=1 B=2` form. */
export function envOf(instruction: Instruction): Record<string, string> {
  return Object.fromEntries(
    instruction.args.split(/\s+/).map((pair) => {
      const at = pair.indexOf("=");
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
}

/** HEALTHCHECK's options and its exec-form command. */
export function healthcheckOf(instruction: Instruction): {
  options: Record<string, string>;
  command: string[];
} {
  const at = instruction.args.indexOf("CMD ");
  const options = Object.fromEntries(
    instruction.args
      .slice(0, at)
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map((option) => option.replace(/^--/, "").split("=") as [string, string]),
  );
  return { options, command: execForm(instruction.args.slice(at + 4).trim()) };
}

/** The node flags `npm start` runs the service with (package.json's start script), which the image must match. */
export function startFlags(root = fileURLToPath(new URL("../..", import.meta.url))): string[] {
  const { scripts } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    scripts: { start: string };
  };
  return scripts.start.split(/\s+/).filter((word) => word.startsWith("--"));
}
