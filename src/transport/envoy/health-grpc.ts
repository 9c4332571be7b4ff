import { create, type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  type HealthCheckRequest,
  HealthCheckRequestSchema,
  type HealthCheckResponse,
  HealthCheckResponseSchema,
  type HealthListRequest,
  HealthListRequestSchema,
  type HealthListResponse,
  HealthListResponseSchema,
} from "../../../gen/grpc/health/v1/health_pb.js";
import { HEALTH_STATUS, type HealthSource, type WatchedStatus, watchHealth } from "../health-source.js";

/** grpc-js (de)serializers for one protobuf-es message type. */
function codec<Desc extends DescMessage>(schema: Desc) {
  return {
    serialize: (message: MessageShape<Desc>) => Buffer.from(toBinary(schema, message)),
    deserialize: (bytes: Buffer) => fromBinary(schema, bytes),
  };
}

const checkRequest = codec(HealthCheckRequestSchema);
const checkResponse = codec(HealthCheckResponseSchema);
const listRequest = codec(HealthListRequestSchema);
const listResponse = codec(HealthListResponseSchema);

/** The grpc-js implementation type of `grpc.health.v1.Health`. */
interface HealthImplementation extends grpc.UntypedServiceImplementation {
  Check: grpc.handleUnaryCall<HealthCheckRequest, HealthCheckResponse>;
  List: grpc.handleUnaryCall<HealthListRequest, HealthListResponse>;
  Watch: grpc.handleServerStreamingCall<HealthCheckRequest, HealthCheckResponse>;
}

const method = (name: string, responseStream: boolean) => ({
  path: `/grpc.health.v1.Health/${name}`,
  requestStream: false,
  responseStream,
  originalName: name.toLowerCase(),
});

const definition: grpc.ServiceDefinition<HealthImplementation> = {
  Check: {
    ...method("Check", false),
    requestSerialize: checkRequest.serialize,
    requestDeserialize: checkRequest.deserialize,
    responseSerialize: checkResponse.serialize,
    responseDeserialize: checkResponse.deserialize,
  },
  List: {
    ...method("List", false),
    requestSerialize: listRequest.serialize,
    requestDeserialize: listRequest.deserialize,
    responseSerialize: listResponse.serialize,
    responseDeserialize: listResponse.deserialize,
  },
  Watch: {
    ...method("Watch", true),
    requestSerialize: checkRequest.serialize,
    requestDeserialize: checkRequest.deserialize,
    responseSerialize: checkResponse.serialize,
    responseDeserialize: checkResponse.deserialize,
  },
};

const response = (status: WatchedStatus) =>
  create(HealthCheckResponseSchema, { status: HEALTH_STATUS[status] });

/**
 * Registers `grpc.health.v1.Health` (Check, List, Watch) on a grpc-js server, answering from `source`: what Envoy's
 * `grpc_health_check`, Kubernetes `grpc:` probes and grpc-health-probe call on the gRPC port.
 */
export function addHealthService(server: grpc.Server, source: HealthSource): void {
  const failed = (error: unknown) => ({
    code: grpc.status.INTERNAL,
    details: `health check failed: ${error instanceof Error ? error.message : String(error)}`,
  });
  server.addService(definition, {
    Check(call, callback) {
      source.refresh().then(
        () => {
          const status = source.status(call.request.service);
          if (status === undefined) {
            callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${call.request.service}` });
          } else callback(null, response(status));
        },
        (error: unknown) => callback(failed(error)),
      );
    },
    List(_call, callback) {
      source.refresh().then(
        () => {
          const names = ["", ...source.services()];
          const statuses = Object.fromEntries(
            names.map((name) => [name, response(source.status(name) ?? "SERVICE_UNKNOWN")]),
          );
          callback(null, create(HealthListResponseSchema, { statuses }));
        },
        (error: unknown) => callback(failed(error)),
      );
    },
    Watch(call) {
      const cancel = watchHealth(
        source,
        call.request.service,
        (status) => call.write(response(status)),
        () => call.end(),
      );
      call.once("cancelled", cancel);
      call.once("close", cancel);
    },
  } satisfies HealthImplementation);
}
