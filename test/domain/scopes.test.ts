import { describe, expect, it } from "vitest";
import { decideScopes, unknownScope } from "../../src/domain/scopes.js";
import type { ScopeModel } from "../../src/domain/types.js";

const trailmark: ScopeModel = {
  scopes: [],
  hierarchies: [["read:workspace", "read:write:workspace", "admin:full"]],
  ladders: [],
  fullAccessScope: "",
};

const trustpager: ScopeModel = {
  scopes: [],
  hierarchies: [],
  fullAccessScope: "admin",
  ladders: [
    {
      name: "records",
      resources: [],
      levels: ["read", "write-approval", "write", "delete-approval", "delete"],
      approvalOf: { "write-approval": "write", "delete-approval": "delete" },
      adminOnly: false,
    },
    {
      name: "communication",
      resources: ["email", "sms", "calls"],
      levels: ["read", "send-approval", "send"],
      approvalOf: { "send-approval": "send" },
      adminOnly: false,
    },
    {
      name: "ai",
      resources: ["ai"],
      levels: ["use-approval", "use"],
      approvalOf: { "use-approval": "use" },
      adminOnly: false,
    },
  ],
};

const flat: ScopeModel = { scopes: ["CreatePod"], hierarchies: [], ladders: [], fullAccessScope: "" };

describe("scopes", () => {
  it("a flat scope is granted only when held", () => {
    expect(decideScopes(flat, ["CreatePod"], ["CreatePod"]).kind).toBe("granted");
    expect(decideScopes(flat, [], ["CreatePod"])).toEqual({ kind: "denied", scope: "CreatePod" });
  });

  it("admin:full covers read:workspace, but read:workspace does not cover read:write:workspace", () => {
    expect(decideScopes(trailmark, ["admin:full"], ["read:workspace"]).kind).toBe("granted");
    expect(decideScopes(trailmark, ["read:write:workspace"], ["read:workspace"]).kind).toBe("granted");
    expect(decideScopes(trailmark, ["read:workspace"], ["read:write:workspace"]).kind).toBe("denied");
  });

  it("on a resource ladder write covers read, and delete covers write", () => {
    expect(decideScopes(trustpager, ["contacts:write"], ["contacts:read"]).kind).toBe("granted");
    expect(decideScopes(trustpager, ["contacts:delete"], ["contacts:write"]).kind).toBe("granted");
    expect(decideScopes(trustpager, ["contacts:read"], ["contacts:write"]).kind).toBe("denied");
    expect(decideScopes(trustpager, ["deals:write"], ["contacts:read"]).kind).toBe("denied");
  });

  it("write-approval only queues a write, and delete-approval writes directly but queues deletes", () => {
    expect(decideScopes(trustpager, ["contacts:write-approval"], ["contacts:write"])).toEqual({
      kind: "approval",
      scope: "contacts:write",
    });
    expect(decideScopes(trustpager, ["contacts:write-approval"], ["contacts:read"]).kind).toBe("granted");
    expect(decideScopes(trustpager, ["contacts:write-approval"], ["contacts:delete"]).kind).toBe("denied");
    expect(decideScopes(trustpager, ["contacts:delete-approval"], ["contacts:write"]).kind).toBe("granted");
    expect(decideScopes(trustpager, ["contacts:delete-approval"], ["contacts:delete"]).kind).toBe("approval");
  });

  it("communication and AI resources use their own ladders", () => {
    expect(decideScopes(trustpager, ["email:send-approval"], ["email:send"]).kind).toBe("approval");
    expect(decideScopes(trustpager, ["email:send"], ["email:read"]).kind).toBe("granted");
    expect(decideScopes(trustpager, ["ai:use-approval"], ["ai:use"]).kind).toBe("approval");
  });

  it("Full Access grants everything", () => {
    expect(decideScopes(trustpager, ["admin"], ["contacts:delete", "billing:write"]).kind).toBe("granted");
  });

  it("a denial outranks an approval when a request needs several scopes", () => {
    expect(decideScopes(trustpager, ["contacts:write-approval"], ["contacts:write", "deals:read"]).kind).toBe(
      "denied",
    );
  });

  it("scopes outside the key space's vocabulary are rejected at creation", () => {
    expect(unknownScope(flat, ["CreatePod"])).toBeUndefined();
    expect(unknownScope(flat, ["DeletePod"])).toBe("DeletePod");
    expect(unknownScope(trustpager, ["contacts:write-approval", "email:send", "admin"])).toBeUndefined();
    expect(unknownScope(trustpager, ["email:delete"])).toBe("email:delete");
    expect(unknownScope(trailmark, ["admin:full"])).toBeUndefined();
    expect(unknownScope(trailmark, ["bad scope"])).toBe("bad scope");
  });
});
