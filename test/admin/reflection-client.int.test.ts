import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";
import { reflectionClient } from "../transport/connect/grpc-clients.js";

// A client that knows nothing of keymesh's protos: it learns them through server reflection, as grpcurl does.
let t: TestServer;
type Unary = (
  request: unknown,
  metadata: grpc.Metadata,
  callback: grpc.requestCallback<Record<string, unknown>>,
) => void;
let admin: grpc.Client & Record<string, Unary>;

async function discoverKeyAdmin(address: string) {
  const reflection = reflectionClient(address);
  try {
    const [list] = await reflection.ask({ list_services: "" });
    const services = list!.list_services_response!.service.map((s) => s.name);
    expect(services).toEqual(expect.arrayContaining(["keymesh.v1.KeyAdmin", "keymesh.v1.KeyVerify"]));
    const [files] = await reflection.ask({ file_containing_symbol: "keymesh.v1.KeyAdmin" });
    const protos = files!.file_descriptor_response!.file_descriptor_proto.map((b) =>
      fromBinary(FileDescriptorProtoSchema, b),
    );
    const set = toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: protos }));
    const definition = protoLoader.loadFileDescriptorSetFromBuffer(Buffer.from(set), {
      keepCase: true,
      longs: String,
      enums: String,
      defaults: false,
    });
    const ctor = grpc.loadPackageDefinition(definition).keymesh as unknown as {
      v1: { KeyAdmin: grpc.ServiceClientConstructor };
    };
    return new ctor.v1.KeyAdmin(address, grpc.credentials.createInsecure()) as unknown as grpc.Client &
      Record<string, Unary>;
  } finally {
    reflection.close();
  }
}

function call(method: string, request: unknown, key = t.rootKey): Promise<Record<string, unknown>> {
  const metadata = new grpc.Metadata();
  if (key) metadata.set("authorization", `Bearer ${key}`);
  return new Promise((resolve, reject) =>
    admin[method]!.call(admin, request, metadata, (error, response) =>
      error ? reject(error) : resolve(response!),
    ),
  );
}

beforeAll(async () => {
  t = await startTestServer();
  admin = await discoverKeyAdmin(`127.0.0.1:${t.server.httpPort}`);
});

afterAll(async () => {
  admin?.close();
  await t?.stop();
});

describe("a reflection-only gRPC client (the grpcurl way)", () => {
  it("walks the whole key lifecycle: workspace, key space, create, list, update, rotate, revoke, reactivate, delete", async () => {
    await expect(call("ListWorkspaces", {}, "")).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    const { workspace } = (await call("CreateWorkspace", { name: "Acme", api_access: true })) as {
      workspace: { id: string };
    };
    const { key_space: keySpace } = (await call("CreateKeySpace", {
      name: "reflected",
      format: { prefix: "rf_", style: "KEY_STYLE_SINGLE" },
      credential_sources: [{ kind: "CREDENTIAL_SOURCE_KIND_BEARER" }],
      scope_model: { scopes: ["read", "write"] },
    })) as { key_space: { id: string } };
    const created = (await call("CreateKey", {
      key_space_id: keySpace.id,
      workspace_id: workspace.id,
      owner_type: "OWNER_TYPE_ORGANIZATION",
      name: "ci",
      scopes: ["read"],
    })) as { key: { id: string }; secret: string };
    expect(created.secret).toMatch(/^rf_/);
    const id = created.key.id;

    const listed = (await call("ListKeys", { workspace_id: workspace.id })) as { keys: { id: string }[] };
    expect(listed.keys.map((k) => k.id)).toEqual([id]);
    const updated = (await call("UpdateKey", {
      id,
      name: "renamed",
      scopes: { values: ["read", "write"] },
    })) as {
      key: { name: string; scopes: string[] };
    };
    expect(updated.key).toMatchObject({ name: "renamed", scopes: ["read", "write"] });
    const rotated = (await call("RotateKey", { id, grace_seconds: "0" })) as {
      key: { id: string };
      secret: string;
    };
    expect(rotated.secret).not.toBe(created.secret);
    const revoked = (await call("RevokeKey", { id: rotated.key.id })) as { key: { status: string } };
    expect(revoked.key.status).toBe("KEY_STATUS_REVOKED");
    const active = (await call("ActivateKey", { id: rotated.key.id })) as { key: { status: string } };
    expect(active.key.status).toBe("KEY_STATUS_ACTIVE");
    await call("DeleteKey", { id: rotated.key.id });
    await expect(call("GetKey", { id: rotated.key.id })).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
    await expect(call("CreateWorkspace", { name: "" })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
    });
  });
});
