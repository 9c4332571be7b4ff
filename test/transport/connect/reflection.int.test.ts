import { create, createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import {
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { file_grpc_health_v1_health } from "../../../gen/grpc/health/v1/health_pb.js";
import { file_keymesh_v1_admin, KeyAdmin } from "../../../gen/keymesh/v1/admin_pb.js";
import { file_keymesh_v1_verify, KeyVerify } from "../../../gen/keymesh/v1/verify_pb.js";
import { createHealthRoutes } from "../../../src/transport/connect/health.js";
import { createReflectionRoutes } from "../../../src/transport/connect/reflection.js";
import { createReflector } from "../../../src/transport/reflection-index.js";
import { healthWithSwitchableDatabase } from "../../support/health.js";
import { type ReflectionResponse, reflectionClient } from "./grpc-clients.js";
import { serveH2c } from "./serve.js";

const SERVICES = [
  KeyAdmin.typeName,
  KeyVerify.typeName,
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
];

let server: Awaited<ReturnType<typeof serveH2c>>;
let client: ReturnType<typeof reflectionClient>;

beforeAll(async () => {
  server = await serveH2c((router) => {
    createReflectionRoutes(
      createReflector([file_keymesh_v1_admin, file_keymesh_v1_verify, file_grpc_health_v1_health], SERVICES),
    )(router);
    createHealthRoutes(healthWithSwitchableDatabase().health)(router);
  });
  client = reflectionClient(server.address);
});

afterAll(async () => {
  client?.close();
  await server?.close();
});

const decode = (response: ReflectionResponse | undefined) =>
  (response?.file_descriptor_response?.file_descriptor_proto ?? []).map((bytes) =>
    fromBinary(FileDescriptorProtoSchema, bytes),
  );

/** Orders files so that each comes after its imports, as a FileDescriptorSet must be; throws if one is missing. */
function importsFirst(files: FileDescriptorProto[]): FileDescriptorProto[] {
  const byName = new Map(files.map((f) => [f.name, f]));
  const out: FileDescriptorProto[] = [];
  const visit = (name: string) => {
    const file = byName.get(name);
    if (!file) throw new Error(`missing ${name}`);
    if (out.includes(file)) return;
    for (const dependency of file.dependency) visit(dependency);
    out.push(file);
  };
  for (const file of files) visit(file.name);
  return out;
}

describe("gRPC server reflection over Connect, queried by a grpc-js reflection client", () => {
  it("lists the services it was given", async () => {
    const [response] = await client.ask({ list_services: "*" });
    expect(response?.message_response).toBe("list_services_response");
    expect(response?.list_services_response?.service.map((s) => s.name)).toEqual(SERVICES);
  });

  it("returns the file declaring a service, with its methods, and every file it imports", async () => {
    const [response] = await client.ask({ file_containing_symbol: "keymesh.v1.KeyAdmin" });
    const files = decode(response);
    expect(files[0]?.name).toBe("keymesh/v1/admin.proto");
    const methods = files[0]?.service.find((s) => s.name === "KeyAdmin")?.method.map((m) => m.name);
    expect(methods).toEqual(KeyAdmin.methods.map((m) => m.name));
    const names = files.map((f) => f.name);
    expect(names).toEqual(
      expect.arrayContaining(["keymesh/v1/types.proto", "google/protobuf/timestamp.proto"]),
    );
    // Complete enough to rebuild every descriptor from this one answer, as grpcurl does before calling a method.
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: importsFirst(files) }));
    expect(registry.getService("keymesh.v1.KeyAdmin")?.methods.length).toBe(KeyAdmin.methods.length);
  });

  it("finds methods, messages, nested types and enums by symbol, and files by name", async () => {
    const method = KeyVerify.methods[0]!;
    const nested = file_keymesh_v1_admin.messages.flatMap((m) => m.nestedMessages)[0];
    const enumeration = file_keymesh_v1_admin.dependencies
      .flatMap((f) => f.enums)
      .find((e) => e.typeName.startsWith("keymesh."));
    const requests = [
      { file_containing_symbol: `${KeyVerify.typeName}.${method.name}` },
      { file_containing_symbol: method.input.typeName },
      ...(nested ? [{ file_containing_symbol: nested.typeName }] : []),
      ...(enumeration ? [{ file_containing_symbol: enumeration.typeName }] : []),
      { file_by_filename: "keymesh/v1/verify.proto" },
    ];
    const responses = await client.ask(...requests);
    expect(responses).toHaveLength(requests.length);
    for (const response of responses) expect(response.message_response).toBe("file_descriptor_response");
    expect(decode(responses[0])[0]?.name).toBe("keymesh/v1/verify.proto");
    expect(decode(responses.at(-1))[0]?.name).toBe("keymesh/v1/verify.proto");
  });

  it("answers NOT_FOUND in-stream for unknown symbols and files, and the stream stays usable", async () => {
    const [symbol, file, extension, list] = await client.ask(
      { file_containing_symbol: "no.such.Service" },
      { file_by_filename: "no/such.proto" },
      {
        file_containing_extension: {
          containing_type: "google.protobuf.FieldOptions",
          extension_number: 999_999,
        },
      },
      { list_services: "" },
    );
    expect(symbol?.error_response?.error_code).toBe(5);
    expect(file?.error_response?.error_code).toBe(5);
    expect(extension?.error_response?.error_code).toBe(5);
    expect(list?.message_response).toBe("list_services_response");
  });

  it("resolves extensions declared in imported files (buf.validate options)", async () => {
    const [numbers] = await client.ask({ all_extension_numbers_of_type: "google.protobuf.FieldOptions" });
    const found = numbers?.all_extension_numbers_response?.extension_number ?? [];
    expect(found.length).toBeGreaterThan(0);
    const [file] = await client.ask({
      file_containing_extension: {
        containing_type: "google.protobuf.FieldOptions",
        extension_number: found[0]!,
      },
    });
    expect(decode(file)[0]?.name).toBe("buf/validate/validate.proto");
  });

  it("also answers on grpc.reflection.v1alpha, for older clients", async () => {
    const alpha = reflectionClient(server.address, "v1alpha");
    try {
      const [list, file] = await alpha.ask(
        { list_services: "" },
        { file_containing_symbol: "grpc.health.v1.Health" },
      );
      expect(list?.list_services_response?.service.map((s) => s.name)).toEqual(SERVICES);
      expect(decode(file)[0]?.service.map((s) => s.name)).toEqual(["Health"]);
    } finally {
      alpha.close();
    }
  });
});
