import type { Limit } from "../../gen/keymesh/v1/types_pb.js";

// The CLI's renderings, so that the console and `keymesh … get` show the same values the same way.
export { limitsText, short, when } from "../../src/cli/views.js";

/** Scopes typed as a list separated by commas or spaces. */
export function parseScopes(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).filter(Boolean))];
}

/** Limits typed as the CLI prints them: `minute=120/60s, day=50000/86400s`. */
export function parseLimits(text: string): Limit[] {
  return text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((item) => {
      const match = /^([a-z0-9_-]{1,32})=(\d+)\/(\d+)s?$/.exec(item);
      if (!match) throw new Error(`limits: "${item}" is not name=capacity/seconds, such as minute=120/60s`);
      return {
        $typeName: "keymesh.v1.Limit",
        name: match[1]!,
        capacity: BigInt(match[2]!),
        periodSeconds: BigInt(match[3]!),
      } satisfies Limit;
    });
}

/** A captured request body as text when it is UTF-8, otherwise its size. */
export function bodyText(body: Uint8Array): string {
  if (body.byteLength === 0) return "";
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    return `(${body.byteLength} bytes of binary data)`;
  }
}
