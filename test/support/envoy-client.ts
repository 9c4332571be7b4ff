import {
  createOfficialEnvoyClient,
  headerOf,
  type OfficialCheckInput,
  type OfficialCheckResponse,
} from "./official-envoy-client.js";

/** A Check request as Envoy builds it. */
export type EnvoyCheckInput = OfficialCheckInput;
/** A CheckResponse as the official Envoy protos decode it. */
export type EnvoyCheckResponse = OfficialCheckResponse;

/** An Envoy ext_authz client built from the official Envoy protos, independent of keymesh's generated code. */
export const createEnvoyClient = createOfficialEnvoyClient;
export { headerOf };

const HTTP_CODES: Record<string, number> = {
  OK: 200,
  Accepted: 202,
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  TooManyRequests: 429,
  InternalServerError: 500,
  ServiceUnavailable: 503,
};

/** A Check decision as the HTTP response Envoy would produce (200 = passed upstream). */
export interface HttpView {
  status: number;
  /** Headers Envoy adds: to the upstream request on allow, to the client response on denial. */
  headers: Record<string, string>;
  /** Headers added to the upstream's response to the client on allow. */
  responseHeaders: Record<string, string>;
  removed: string[];
  body: string;
}

/** Reads a Check response the way Envoy applies it. */
export function asHttp(res: EnvoyCheckResponse): HttpView {
  const flat = (list: { header: { key: string; value: string } }[] | undefined) =>
    Object.fromEntries((list ?? []).map((h) => [h.header.key.toLowerCase(), h.header.value]));
  if (res.status?.code === 0) {
    return {
      status: 200,
      headers: flat(res.ok_response?.headers),
      responseHeaders: flat(res.ok_response?.response_headers_to_add),
      removed: res.ok_response?.headers_to_remove ?? [],
      body: "",
    };
  }
  const code = res.denied_response?.status?.code ?? "Forbidden";
  return {
    status: HTTP_CODES[code] ?? Number(code),
    headers: flat(res.denied_response?.headers),
    responseHeaders: {},
    removed: [],
    body: res.denied_response?.body ?? "",
  };
}
