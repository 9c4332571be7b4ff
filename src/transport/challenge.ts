import type { CredentialSource } from "../domain/types.js";
import type { DenyReason } from "../domain/verdict.js";

/** What a challenge names: the realm, and the scheme when no key space judged the request. */
export interface ChallengeOptions {
  realm: string;
  challenge?: "Bearer" | "Basic";
}

/** The auth-scheme a 401 names for a key read from a custom header: no standard scheme sends a key that way. */
export const HEADER_CHALLENGE_SCHEME = "ApiKey";

/**
 * The WWW-Authenticate value of a 401: one challenge per place the key space reads keys, in its order (a header
 * value may list several, RFC 9110 §11.6.1), so the client is asked for what the key space accepts. A custom header
 * gets the ApiKey scheme naming that header, which no client mistakes for Basic or Bearer. Without sources (no key
 * space resolved) the deployment's `challenge` option stands in.
 */
export function challengeHeader(
  reason: DenyReason,
  sources: readonly CredentialSource[] | undefined,
  options: ChallengeOptions,
): string {
  const realm = quotable(options.realm);
  const fallback: CredentialSource = { kind: options.challenge === "Basic" ? "basic" : "bearer" };
  const list = sources && sources.length > 0 ? sources : [fallback];
  const challenges: string[] = [];
  for (const source of list) {
    let challenge: string;
    if (source.kind === "basic") challenge = `Basic realm="${realm}"`;
    else if (source.kind === "header")
      challenge = `${HEADER_CHALLENGE_SCHEME} realm="${realm}", header="${quotable(source.header)}"`;
    // RFC 6750 §3.1: a request without credentials gets no error code; a rejected token gets invalid_token.
    else
      challenge =
        reason === "missing" ? `Bearer realm="${realm}"` : `Bearer realm="${realm}", error="invalid_token"`;
    if (!challenges.includes(challenge)) challenges.push(challenge);
  }
  return challenges.join(", ");
}

/** Text safe inside a quoted-string of a header value: printable ASCII without quotes or backslashes. */
function quotable(text: string): string {
  return text.replace(/[^\t\x20-\x7e]/g, "?").replace(/["\\]/g, "");
}
