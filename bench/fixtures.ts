/** Request fixtures: a realistic Envoy ext_authz CheckRequest and gRPC message framing. */
import { create, toBinary } from "@bufbuild/protobuf";
import { CheckRequestSchema } from "../gen/envoy/service/auth/v3/external_auth_pb.js";

/** What varies between bench scenarios; everything else is a fixed, typical Envoy request. */
export interface CheckRequestInput {
  /** The full Authorization header value, e.g. `Bearer km_live_…`. */
  authorization: string;
  /** Sent as context_extensions["keymesh.key_space"], as the Envoy route config would. */
  keySpace: string;
  path?: string;
  method?: string;
}

// Fixed ids keep the encoded bytes identical across runs, so runs are comparable byte for byte.
const REQUEST_ID = "7f1c2a9e-4b3d-4e8a-9c51-0d2f6b8e3a47";
const TRACE_PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const HOST = "api.example.com";

/**
 * Encodes a CheckRequest shaped like the ones Envoy sends for a GET through a sidecar: ten request headers,
 * method, path, host and the route's context_extensions.
 */
export function buildCheckRequest(input: CheckRequestInput): Uint8Array {
  const path = input.path ?? "/v1/pods?limit=10";
  const method = input.method ?? "GET";
  const request = create(CheckRequestSchema, {
    attributes: {
      request: {
        http: {
          method,
          path,
          host: HOST,
          headers: {
            host: HOST,
            "user-agent": "curl/8.5.0",
            accept: "application/json",
            "accept-encoding": "gzip",
            "x-request-id": REQUEST_ID,
            "x-forwarded-for": "203.0.113.24",
            "x-forwarded-proto": "https",
            "content-type": "application/json",
            authorization: input.authorization,
            traceparent: TRACE_PARENT,
          },
        },
      },
      contextExtensions: { "keymesh.key_space": input.keySpace },
    },
  });
  return toBinary(CheckRequestSchema, request);
}

/** Prefixes a message with the 5-byte gRPC length header (uncompressed flag 0, uint32 big-endian length). */
export function grpcFrame(msg: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + msg.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(msg.length, 1);
  frame.set(msg, 5);
  return frame;
}
