import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const deps = "node_modules/@grpc/grpc-js-xds/deps";

/** A CheckResponse as the official Envoy protos decode it (keepCase, enums as names). */
export interface EnvoyCheckResponse {
  status: { code: number; message: string } | null;
  denied_response?: {
    status: { code: string };
    headers: { header: { key: string; value: string }; append_action: string }[];
    body: string;
  } | null;
  ok_response?: {
    headers: { header: { key: string; value: string }; append_action: string }[];
    headers_to_remove: string[];
    response_headers_to_add: { header: { key: string; value: string }; append_action: string }[];
  } | null;
  dynamic_metadata?: { fields: Record<string, { string_value?: string; kind?: string }> } | null;
  http_response?: string;
}

/** A request to send to Check. */
export interface EnvoyCheckInput {
  headers?: Record<string, string>;
  method?: string;
  path?: string;
  contextExtensions?: Record<string, string>;
  body?: string;
}

type CheckFn = (
  request: unknown,
  options: grpc.CallOptions,
  callback: grpc.requestCallback<EnvoyCheckResponse>,
) => void;

/** An Envoy ext_authz client built from the official Envoy protos, independent of keymesh's generated code. */
export function createEnvoyClient(address: string) {
  const definition = protoLoader.loadSync("envoy/service/auth/v3/external_auth.proto", {
    includeDirs: ["envoy-api", "googleapis", "protoc-gen-validate", "xds"].map((d) => `${deps}/${d}`),
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } };
  };
  const client = new loaded.envoy.service.auth.v3.Authorization(
    address,
    grpc.credentials.createInsecure(),
  ) as unknown as grpc.Client & {
    Check: CheckFn;
  };
  return {
    /** Calls Check; resolves with the response, rejects with a gRPC error. */
    check(input: EnvoyCheckInput, deadlineMs = 2000): Promise<EnvoyCheckResponse> {
      const request = {
        attributes: {
          request: {
            http: {
              method: input.method ?? "GET",
              path: input.path ?? "/",
              host: "api.example.com",
              headers: input.headers ?? {},
              body: input.body ?? "",
            },
          },
          context_extensions: input.contextExtensions ?? {},
        },
      };
      return new Promise((resolve, reject) => {
        client.Check(request, { deadline: Date.now() + deadlineMs }, (error, response) =>
          error ? reject(error) : resolve(response!),
        );
      });
    },
    close: () => client.close(),
  };
}

/** Reads one header from a list of HeaderValueOptions. */
export function headerOf(
  list: { header: { key: string; value: string } }[] | undefined,
  name: string,
): string | undefined {
  return list?.find((h) => h.header.key.toLowerCase() === name.toLowerCase())?.header.value;
}

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
  const code = res.denied_response?.status.code ?? "Forbidden";
  return {
    status: HTTP_CODES[code] ?? Number(code),
    headers: flat(res.denied_response?.headers),
    responseHeaders: {},
    removed: [],
    body: res.denied_response?.body ?? "",
  };
}
