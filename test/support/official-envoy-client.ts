import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const deps = "node_modules/@grpc/grpc-js-xds/deps";

/** A HeaderValueOption as the official protos decode it (keepCase, enums as names). */
export interface OfficialHeaderOption {
  header: { key: string; value: string; raw_value: Buffer };
  append_action: string;
  append: { value: boolean } | null;
  keep_empty_value: boolean;
}

/** A CheckResponse as the official Envoy protos decode it. */
export interface OfficialCheckResponse {
  status: { code: number; message: string } | null;
  denied_response: { status: { code: string } | null; headers: OfficialHeaderOption[]; body: string } | null;
  ok_response: {
    headers: OfficialHeaderOption[];
    headers_to_remove: string[];
    response_headers_to_add: OfficialHeaderOption[];
  } | null;
  /** protobufjs decodes google.protobuf.Struct with camel-case value fields whatever keepCase says. */
  dynamic_metadata: {
    fields: Record<string, { stringValue?: string; listValue?: { values: { stringValue: string }[] } }>;
  } | null;
  http_response: string;
}

/** The loaded ext_authz definition, independent of keymesh's generated code. */
const definition = protoLoader.loadSync("envoy/service/auth/v3/external_auth.proto", {
  includeDirs: ["envoy-api", "googleapis", "protoc-gen-validate", "xds"].map((d) => `${deps}/${d}`),
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const check = (definition["envoy.service.auth.v3.Authorization"] as protoLoader.ServiceDefinition).Check!;

/** Envoy's view of a Check call: an object request encoded with the official protos. */
export interface OfficialCheckInput {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  headerMap?: { key: string; value?: string; raw_value?: Buffer }[];
  contextExtensions?: Record<string, string>;
  body?: string;
  /** The body as Envoy sends it with `with_request_body.pack_as_bytes`. */
  rawBody?: Buffer;
}

/** A client that speaks ext_authz v3 like Envoy, built with @grpc/proto-loader from the official protos. */
export function createOfficialEnvoyClient(address: string) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const call = <T>(request: T, serialize: (value: T) => Buffer, deadlineMs: number) =>
    new Promise<OfficialCheckResponse>((resolve, reject) => {
      client.makeUnaryRequest(
        check.path,
        serialize,
        (bytes: Buffer) => check.responseDeserialize(bytes) as OfficialCheckResponse,
        request,
        { deadline: Date.now() + deadlineMs },
        (error, response) => (error ? reject(error) : resolve(response!)),
      );
    });
  return {
    /** Sends a CheckRequest built from `input`. */
    check(input: OfficialCheckInput, deadlineMs = 2000): Promise<OfficialCheckResponse> {
      const http: Record<string, unknown> = {
        id: "1",
        method: input.method ?? "GET",
        path: input.path ?? "/",
        host: "api.example.com",
        scheme: "https",
        protocol: "HTTP/2",
        headers: input.headers ?? {},
        body: input.body ?? "",
      };
      if (input.headerMap) http.header_map = { headers: input.headerMap };
      if (input.rawBody) http.raw_body = input.rawBody;
      const request = {
        attributes: {
          source: {
            address: { socket_address: { address: "10.1.2.3", port_value: 40000 } },
            principal: "spiffe://x",
          },
          request: { time: { seconds: "1700000000", nanos: 5 }, http },
          context_extensions: input.contextExtensions ?? {},
          metadata_context: { filter_metadata: { "envoy.lb": { fields: { canary: { bool_value: true } } } } },
        },
      };
      return call(request, check.requestSerialize as (v: typeof request) => Buffer, deadlineMs);
    },
    /** Sends arbitrary bytes as the request message, as a broken or hostile peer could. */
    checkRaw(bytes: Uint8Array, deadlineMs = 2000): Promise<OfficialCheckResponse> {
      return call(bytes, (b) => Buffer.from(b), deadlineMs);
    },
    close: () => client.close(),
  };
}

/** Reads one header's value from a list of HeaderValueOptions. */
export function headerOf(list: OfficialHeaderOption[] | undefined, name: string): string | undefined {
  return list?.find((h) => h.header.key.toLowerCase() === name.toLowerCase())?.header.value;
}
