import { checksum, isBase62, randomBase32, randomBase62 } from "./encoding.js";
import type { KeyFormat } from "./types.js";

/** The default number of random bytes in a secret (160 bits). */
export const DEFAULT_SECRET_BYTES = 20;
const CHECKSUM_LENGTH = 6;
const PUBLIC_PREFIX_LENGTH = 8;
const KEY_ID_LENGTH = 10;

/** A freshly minted key: what the caller sees once, what is hashed, and what may be shown later. */
export interface MintedKey {
  /** Returned to the caller exactly once: the whole key, or the secret of an ID/secret pair. */
  secret: string;
  /** The string whose digest identifies the key (`id:secret` for ID/secret pairs). */
  canonical: string;
  /** The public part, safe to display. */
  display: string;
}

function bodyLength(format: KeyFormat): number {
  const bytes = format.secretBytes || DEFAULT_SECRET_BYTES;
  return Math.ceil((bytes * 8) / Math.log2(62));
}

function withChecksum(covered: string, body: string): string {
  return body + checksum(covered + body);
}

/** Mints a new key in `format`; `segment` is the workspace's key segment. */
export function mintKey(format: KeyFormat, segment: string): MintedKey {
  const body = randomBase62(format.secretBytes || DEFAULT_SECRET_BYTES);
  switch (format.style) {
    case "single": {
      const head = format.prefix + (format.workspaceSegment ? `${segment}_` : "");
      const key = head + withChecksum(head, body);
      return { secret: key, canonical: key, display: `${head}${body.slice(0, 4)}…` };
    }
    case "id_secret": {
      const id = format.idPrefix + randomBase32(KEY_ID_LENGTH);
      const secret = withChecksum("", body);
      return { secret, canonical: `${id}:${secret}`, display: id };
    }
    case "prefix_dot_secret": {
      const head = format.prefix + randomBase62(8).slice(0, PUBLIC_PREFIX_LENGTH);
      const key = `${head}.${withChecksum(`${head}.`, body)}`;
      return { secret: key, canonical: key, display: head };
    }
  }
}

function checkBody(format: KeyFormat, covered: string, rest: string): boolean {
  if (rest.length !== bodyLength(format) + CHECKSUM_LENGTH || !isBase62(rest)) return false;
  const body = rest.slice(0, -CHECKSUM_LENGTH);
  return checksum(covered + body) === rest.slice(-CHECKSUM_LENGTH);
}

/**
 * Returns the canonical form of a presented key when its layout and checksum are right, else undefined.
 * This runs before any lookup, so a mistyped or random string never reaches the database.
 */
export function parsePresentedKey(format: KeyFormat, presented: string): string | undefined {
  if (presented.length === 0 || presented.length > 512) return undefined;
  switch (format.style) {
    case "single": {
      if (!presented.startsWith(format.prefix)) return undefined;
      let rest = presented.slice(format.prefix.length);
      let head = format.prefix;
      if (format.workspaceSegment) {
        const match = /^([a-z0-9]{2,16})_/.exec(rest);
        if (!match) return undefined;
        head += match[0];
        rest = rest.slice(match[0].length);
      }
      return checkBody(format, head, rest) ? presented : undefined;
    }
    case "id_secret": {
      const colon = presented.indexOf(":");
      if (colon < 0) return undefined;
      const id = presented.slice(0, colon);
      const secret = presented.slice(colon + 1);
      if (!id.startsWith(format.idPrefix) || !/^[0-9A-Z]+$/.test(id.slice(format.idPrefix.length)))
        return undefined;
      if (id.length !== format.idPrefix.length + KEY_ID_LENGTH) return undefined;
      return checkBody(format, "", secret) ? presented : undefined;
    }
    case "prefix_dot_secret": {
      const dot = presented.indexOf(".");
      const head = presented.slice(0, dot);
      if (dot < 0 || !head.startsWith(format.prefix)) return undefined;
      const pub = head.slice(format.prefix.length);
      if (pub.length !== PUBLIC_PREFIX_LENGTH || !isBase62(pub)) return undefined;
      return checkBody(format, `${head}.`, presented.slice(dot + 1)) ? presented : undefined;
    }
  }
}
