import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, createContextValues } from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import {
  parseContentType as parseGrpcContentType,
  setTrailerStatus,
} from "@connectrpc/connect/protocol-grpc";
import {
  parseContentType as parseGrpcWebContentType,
  trailerFlag,
  trailerSerialize,
} from "@connectrpc/connect/protocol-grpc-web";
import type { AdminActor } from "../../domain/admin-actor.js";
import type { Authorizer } from "../../domain/check-request.js";
import type { AdminCallObserver } from "../../observability/ports.js";
import { adminActor, authenticateAdmin } from "./interceptors.js";
import { codeName } from "./observe-interceptor.js";

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;
type Handler = (req: Request, res: Response) => void;

/** Authorizes admin calls from their headers, before the Connect handler reads (and decompresses) their body. */
export interface AdminGate {
  /** Wraps the Connect handler: a call to the service is answered with its error at once unless authorized. */
  wrap(next: Handler): Handler;
  /** The `contextValues` option of the Connect adapter: hands the authorized actor to the interceptors. */
  contextValues(req: Request): ContextValues;
}

/**
 * Creates the gate for `service`. connect-node (2.1) has no hook between headers and body, so the gate sits in front
 * of the adapter, matches the same paths it routes, and writes refusals in each protocol's own wire form.
 */
export function createAdminGate(
  authorizer: Authorizer,
  service: DescService,
  /** Counts the calls the gate refuses: they never reach the interceptors that count the others. */
  observer?: AdminCallObserver,
): AdminGate {
  const methods = new Map(service.methods.map((m) => [`/${service.typeName}/${m.name}`, m.name]));
  const actors = new WeakMap<Request, AdminActor>();
  return {
    wrap(next) {
      return (req, res) => {
        const path = (req.url ?? "").split("?", 2)[0] ?? "";
        const method = methods.get(path);
        if (method === undefined) {
          next(req, res);
          return;
        }
        const authorization = req.headers.authorization;
        const refuseObserved = (error: ConnectError) => {
          const call = observer?.start(method, { get: (name) => headerValue(req, name) });
          refuse(req, res, error);
          call?.finish(codeName(error.code));
        };
        authenticateAdmin(authorizer, authorization, path).then(
          (result) => {
            if (!result.ok) {
              refuseObserved(result.error);
              return;
            }
            actors.set(req, result.actor);
            next(req, res);
          },
          () => refuseObserved(new ConnectError("authorization is unavailable", Code.Unavailable)),
        );
      };
    },
    contextValues(req) {
      const values = createContextValues();
      const actor = actors.get(req);
      if (actor !== undefined) values.set(adminActor, actor);
      return values;
    },
  };
}

/** One request header as a string; node gives repeated ones as an array. */
function headerValue(req: Request, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(", ") : value;
}

/** Answers `error` as the Connect adapter would for the request's protocol, without reading the request body. */
function refuse(req: Request, res: Response, error: ConnectError): void {
  if (res.headersSent || res.writableEnded) return;
  const contentType = req.headers["content-type"] ?? "";
  const grpcWeb = parseGrpcWebContentType(contentType);
  if (grpcWeb !== undefined) {
    // gRPC-Web carries the status in a trailer frame in the body.
    const trailer = setTrailerStatus(new Headers(), error);
    const body = encodeEnvelope(trailerFlag, trailerSerialize(trailer));
    (res as ServerResponse).writeHead(200, {
      "content-type": grpcWeb.binary ? "application/grpc-web+proto" : "application/grpc-web+json",
      "content-length": body.byteLength,
    });
    res.end(body);
    return;
  }
  const grpc = parseGrpcContentType(contentType);
  if (grpc !== undefined) {
    const trailer = setTrailerStatus(new Headers(), error);
    (res as ServerResponse).writeHead(200, {
      "content-type": grpc.binary ? "application/grpc+proto" : "application/grpc+json",
    });
    (res as ServerResponse).addTrailers(Object.fromEntries(trailer));
    res.end();
    return;
  }
  const body = errorToJsonBytes(error, {});
  (res as ServerResponse).writeHead(codeToHttpStatus(error.code), {
    "content-type": "application/json",
    "content-length": body.byteLength,
  });
  res.end(body);
}
