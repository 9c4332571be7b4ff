import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const root = (relative: string) => fileURLToPath(new URL(`../../../${relative}`, import.meta.url));

/** A reflection request as grpc-js encodes it (proto-loader with keepCase). */
export interface ReflectionRequest {
  host?: string;
  list_services?: string;
  file_by_filename?: string;
  file_containing_symbol?: string;
  file_containing_extension?: { containing_type: string; extension_number: number };
  all_extension_numbers_of_type?: string;
}

/** A reflection response as grpc-js decodes it (oneofs: true names the set member in `message_response`). */
export interface ReflectionResponse {
  valid_host: string;
  message_response:
    | "file_descriptor_response"
    | "all_extension_numbers_response"
    | "list_services_response"
    | "error_response";
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  all_extension_numbers_response?: { base_type_name: string; extension_number: number[] };
  list_services_response?: { service: { name: string }[] };
  error_response?: { error_code: number; error_message: string };
}

const loaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

type ClientConstructor = new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client;

function loadService(protoPath: string, pkg: string[], service: string): ClientConstructor {
  const definition = protoLoader.loadSync(protoPath, loaderOptions);
  let node: unknown = grpc.loadPackageDefinition(definition);
  for (const part of [...pkg, service]) node = (node as Record<string, unknown>)[part];
  return node as ClientConstructor;
}

/** A grpc-js reflection client built from the official protos shipped with @grpc/reflection. */
export function reflectionClient(address: string, version: "v1" | "v1alpha" = "v1") {
  const Client = loadService(
    root(`node_modules/@grpc/reflection/build/proto/grpc/reflection/${version}/reflection.proto`),
    ["grpc", "reflection", version],
    "ServerReflection",
  );
  const client = new Client(address, grpc.credentials.createInsecure()) as grpc.Client & {
    ServerReflectionInfo(): grpc.ClientDuplexStream<ReflectionRequest, ReflectionResponse>;
  };
  /** Sends the requests on one stream and collects one response per request. */
  const ask = (...requests: ReflectionRequest[]): Promise<ReflectionResponse[]> =>
    new Promise((resolve, reject) => {
      const call = client.ServerReflectionInfo();
      const responses: ReflectionResponse[] = [];
      call.on("data", (response: ReflectionResponse) => {
        responses.push(response);
        if (responses.length === requests.length) call.end();
      });
      call.on("error", reject);
      call.on("end", () => resolve(responses));
      for (const request of requests) call.write(request);
    });
  /** One stream kept open for the caller to write to, as a client with a call in flight has. */
  const open = () => client.ServerReflectionInfo();
  return { ask, open, close: () => client.close() };
}

/** A health response as grpc-js decodes it. */
export interface HealthResponse {
  status: "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";
}

/** A grpc-js client for grpc.health.v1.Health, built from the repository's copy of health.proto. */
export function healthClient(address: string) {
  const Client = loadService(root("proto/grpc/health/v1/health.proto"), ["grpc", "health", "v1"], "Health");
  const client = new Client(address, grpc.credentials.createInsecure()) as grpc.Client & {
    Check(
      request: { service: string },
      callback: (error: grpc.ServiceError | null, response?: HealthResponse) => void,
    ): grpc.ClientUnaryCall;
    List(
      request: object,
      callback: (
        error: grpc.ServiceError | null,
        response?: { statuses: Record<string, HealthResponse> },
      ) => void,
    ): grpc.ClientUnaryCall;
    Watch(request: { service: string }): grpc.ClientReadableStream<HealthResponse>;
  };
  const unary =
    <R>(call: (callback: (error: grpc.ServiceError | null, response?: R) => void) => void) =>
    () =>
      new Promise<R>((resolve, reject) =>
        call((error, response) => (error ? reject(error) : resolve(response as R))),
      );
  return {
    check: (service: string) => unary<HealthResponse>((cb) => client.Check({ service }, cb))(),
    list: () => unary<{ statuses: Record<string, HealthResponse> }>((cb) => client.List({}, cb))(),
    watch: (service: string) => client.Watch({ service }),
    close: () => client.close(),
  };
}
