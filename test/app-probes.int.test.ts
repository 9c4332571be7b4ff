/**
 * Health, reflection and the HTTP probes of a running keymesh, on the gRPC port (grpc-js, where Envoy, Istio and
 * Kubernetes `grpc:` probes call) and the HTTP port, with clients built from the official protos. Needs Postgres.
 */
import { create, createFileRegistry, type DescMessage, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../gen/keymesh/v1/types_pb.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { healthClient, type ReflectionResponse, reflectionClient } from "./transport/connect/grpc-clients.js";

const AUTHORIZATION = "envoy.service.auth.v3.Authorization";
const VERIFY = "keymesh.v1.KeyVerify";
const ADMIN = "keymesh.v1.KeyAdmin";
const HEALTH = "grpc.health.v1.Health";
const REFLECTION = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

let t: TestServer;
let grpcAddress: string;
let httpAddress: string;
const clients: { close(): void }[] = [];

beforeAll(async () => {
  t = await startTestServer();
  grpcAddress = t.grpcAddress;
  httpAddress = `127.0.0.1:${t.server.httpPort}`;
});

afterAll(async () => {
  for (const client of clients) client.close();
  await t?.stop();
});

const health = (address: string) => {
  const client = healthClient(address);
  clients.push(client);
  return client;
};
const reflection = (address: string, version: "v1" | "v1alpha" = "v1") => {
  const client = reflectionClient(address, version);
  clients.push(client);
  return client;
};

describe("grpc.health.v1.Health on both ports (Postgres)", () => {
  it("answers SERVING for the server and for each service the port serves, NOT_FOUND for the others", async () => {
    const onGrpc = health(grpcAddress);
    const onHttp = health(httpAddress);
    for (const name of ["", AUTHORIZATION, VERIFY]) expect((await onGrpc.check(name)).status).toBe("SERVING");
    for (const name of ["", ADMIN, VERIFY]) expect((await onHttp.check(name)).status).toBe("SERVING");
    await expect(onGrpc.check(ADMIN)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(onHttp.check(AUTHORIZATION)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("lists each port's statuses", async () => {
    const names = async (address: string) => Object.keys((await health(address).list()).statuses).sort();
    expect(await names(grpcAddress)).toEqual(["", AUTHORIZATION, VERIFY].sort());
    expect(await names(httpAddress)).toEqual(["", ADMIN, VERIFY].sort());
  });

  it("streams the status on Watch from the gRPC port", async () => {
    const stream = health(grpcAddress).watch(AUTHORIZATION);
    const first = await new Promise<{ status: string }>((resolve, reject) => {
      stream.once("data", resolve);
      stream.once("error", reject);
    });
    stream.cancel();
    expect(first.status).toBe("SERVING");
  });
});

const decode = (response: ReflectionResponse | undefined) =>
  (response?.file_descriptor_response?.file_descriptor_proto ?? []).map((bytes) =>
    fromBinary(FileDescriptorProtoSchema, bytes),
  );

/** A registry built from reflection answers alone, files ordered after their imports, as grpcurl builds one. */
function registryOf(files: FileDescriptorProto[]) {
  const byName = new Map(files.map((f) => [f.name, f]));
  const ordered: FileDescriptorProto[] = [];
  const visit = (name: string) => {
    const file = byName.get(name);
    if (!file) throw new Error(`reflection left out ${name}`);
    if (ordered.includes(file)) return;
    for (const dependency of file.dependency) visit(dependency);
    ordered.push(file);
  };
  for (const file of files) visit(file.name);
  return createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
}

/** One unary call with messages encoded and decoded through descriptors, as a reflection-driven client does. */
function callDynamic(
  path: string,
  input: DescMessage,
  output: DescMessage,
  request: Record<string, unknown>,
) {
  const client = new grpc.Client(grpcAddress, grpc.credentials.createInsecure());
  clients.push(client);
  return new Promise<Record<string, unknown>>((resolve, reject) => {
    client.makeUnaryRequest(
      path,
      (value: Record<string, unknown>) => Buffer.from(toBinary(input, create(input, value))),
      (bytes: Buffer) => fromBinary(output, bytes) as unknown as Record<string, unknown>,
      request,
      (error, response) => (error ? reject(error) : resolve(response!)),
    );
  });
}

describe("server reflection on both ports (Postgres)", () => {
  it("lists Authorization, KeyVerify and Health on the gRPC port, KeyAdmin, KeyVerify and Health on 8080", async () => {
    for (const version of ["v1", "v1alpha"] as const) {
      const [grpcList] = await reflection(grpcAddress, version).ask({ list_services: "" });
      expect(grpcList?.list_services_response?.service.map((s) => s.name).sort()).toEqual(
        [AUTHORIZATION, VERIFY, HEALTH, ...REFLECTION].sort(),
      );
      const [httpList] = await reflection(httpAddress, version).ask({ list_services: "" });
      expect(httpList?.list_services_response?.service.map((s) => s.name).sort()).toEqual(
        [ADMIN, VERIFY, HEALTH, ...REFLECTION].sort(),
      );
    }
  });

  it("describes Authorization on the gRPC port as the official Envoy protos declare it", async () => {
    const [answer] = await reflection(grpcAddress).ask({ file_containing_symbol: AUTHORIZATION });
    const registry = registryOf(decode(answer));
    const service = registry.getService(AUTHORIZATION)!;
    const official = protoLoader.loadSync("envoy/service/auth/v3/external_auth.proto", {
      keepCase: true,
      includeDirs: ["envoy-api", "googleapis", "protoc-gen-validate", "xds"].map(
        (d) => `node_modules/@grpc/grpc-js-xds/deps/${d}`,
      ),
    });
    const officialService = official[AUTHORIZATION] as protoLoader.ServiceDefinition;
    expect(service.methods.map((m) => `/${AUTHORIZATION}/${m.name}`)).toEqual(
      Object.values(officialService).map((m) => m.path),
    );
    // Every field of CheckRequest and CheckResponse, by name and number, as the official file has them.
    for (const name of ["envoy.service.auth.v3.CheckRequest", "envoy.service.auth.v3.CheckResponse"]) {
      const reflected = registry.getMessage(name)!.fields.map((f) => [f.name, f.number]);
      const type = (official[name] as { type: { field: { name: string; number: number }[] } }).type;
      expect(reflected).toEqual(type.field.map((f) => [f.name, f.number]));
    }
  });

  it("is enough, on the gRPC port, to call Check and KeyVerify.Verify with messages built from it", async () => {
    const { keySpace } = await t.admin.createKeySpace({
      name: "reflected",
      format: { prefix: "rf_", style: KeyStyle.SINGLE },
      credentialSources: [{ kind: CredentialSourceKind.BEARER }],
    });
    const { workspace } = await t.admin.createWorkspace({ name: "reflected", apiAccess: true });
    const { secret } = await t.admin.createKey({
      keySpaceId: keySpace!.id,
      workspaceId: workspace!.id,
      ownerType: OwnerType.ORGANIZATION,
      name: "reflected",
    });
    const client = reflection(grpcAddress);
    const [authz, verify] = await client.ask(
      { file_containing_symbol: AUTHORIZATION },
      { file_containing_symbol: VERIFY },
    );
    const check = registryOf(decode(authz)).getService(AUTHORIZATION)!.methods[0]!;
    const denied = await callDynamic(`/${AUTHORIZATION}/${check.name}`, check.input, check.output, {
      attributes: {
        request: { http: { method: "GET", path: "/", headers: {} } },
        contextExtensions: { "keymesh.key_space": "reflected" },
      },
    });
    // No credential: an OK RPC carrying a 401 decision (google.rpc.Code 16, UNAUTHENTICATED).
    expect((denied.status as { code: number }).code).toBe(16);

    const verifyMethod = registryOf(decode(verify)).getService(VERIFY)!.methods[0]!;
    const verified = await callDynamic(
      `/${VERIFY}/${verifyMethod.name}`,
      verifyMethod.input,
      verifyMethod.output,
      { key: secret, keySpaceId: "reflected" },
    );
    expect(verified.valid).toBe(true);
  });
});

describe("HTTP probes (Postgres)", () => {
  it("/livez, /readyz and /healthz answer 200 while the instance is ready", async () => {
    for (const path of ["/livez", "/readyz", "/healthz"]) {
      const res = await fetch(`${t.httpUrl}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("cache-control")).toBe("no-store");
    }
    expect(await (await fetch(`${t.httpUrl}/readyz`)).text()).toBe("ready\n");
  });
});
