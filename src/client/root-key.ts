import type { Interceptor } from "@connectrpc/connect";

/** A root key, or a function that returns the current one (for keys read from a rotating secret store). */
export type RootKeySource = string | (() => string | Promise<string>);

/** Sends `authorization: Bearer <root key>` on every call; KeyAdmin refuses calls without a valid root key. */
export function rootKeyInterceptor(source: RootKeySource): Interceptor {
  return (next) => async (req) => {
    const key = typeof source === "function" ? await source() : source;
    req.header.set("authorization", `Bearer ${key}`);
    return next(req);
  };
}
