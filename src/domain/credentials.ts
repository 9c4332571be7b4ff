import type { CredentialSource } from "./types.js";

/** A credential read from a request: absent, unreadable, or a key string with the header it came from. */
export type Presented =
  | { kind: "missing" }
  | { kind: "malformed"; header: string }
  | { kind: "found"; value: string; header: string };

function fromAuthorization(value: string, scheme: "bearer" | "basic"): string | undefined {
  const space = value.indexOf(" ");
  if (space < 0 || value.slice(0, space).toLowerCase() !== scheme) return undefined;
  const token = value.slice(space + 1).trim();
  if (scheme === "bearer") return token;
  const decoded = Buffer.from(token, "base64").toString("utf8");
  // Base64 that does not round-trip, or no colon, is not an id:secret pair.
  if (
    !decoded.includes(":") ||
    Buffer.from(decoded, "utf8").toString("base64").replace(/=+$/, "") !== token.replace(/=+$/, "")
  ) {
    return "";
  }
  return decoded;
}

/** Reads the key from the first configured source present in `headers` (lower-case names). */
export function readCredential(
  sources: readonly CredentialSource[],
  headers: ReadonlyMap<string, string>,
): Presented {
  for (const source of sources) {
    const header = source.kind === "header" ? source.header : "authorization";
    const raw = headers.get(header);
    if (raw === undefined) continue;
    const value = source.kind === "header" ? raw.trim() : fromAuthorization(raw, source.kind);
    if (value === undefined) continue;
    if (value === "") return { kind: "malformed", header };
    return { kind: "found", value, header };
  }
  return { kind: "missing" };
}
