import { Code, ConnectError } from "@connectrpc/connect";
import {
  createAsyncIterable,
  encodeEnvelope,
  type UniversalHandler,
  type UniversalServerRequest,
  type UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { findTrailerError, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerParse, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";

/*
 * connect-es parses a binary request with the serialization it also uses for responses, which reports any failure as
 * INTERNAL (`parse binary: …`): right for a client reading a server's answer, wrong for a server reading a client's
 * request. Invalid protobuf, or invalid UTF-8 in a string, is the client's fault. No option changes that, and
 * interceptors run after parsing, so the handlers' answers are corrected here, per protocol.
 */

const PARSE_FAILURE = "parse binary: ";

function isParseFailure(error: ConnectError | undefined): error is ConnectError {
  return error?.code === Code.Internal && error.rawMessage.startsWith(PARSE_FAILURE);
}

function asInvalid(error: ConnectError): ConnectError {
  const reason = error.rawMessage.slice(PARSE_FAILURE.length);
  return new ConnectError(`invalid request message: ${reason}`, Code.InvalidArgument);
}

/** Wraps a handler so that a request it could not parse is answered INVALID_ARGUMENT, in every protocol. */
export function parseFailuresAsInvalid(handler: UniversalHandler): UniversalHandler {
  const wrapped = async (req: UniversalServerRequest): Promise<UniversalServerResponse> => {
    const res = await handler(req);
    const type = req.header.get("content-type") ?? "";
    if (type.startsWith("application/grpc-web")) return grpcWeb(res);
    if (type.startsWith("application/grpc")) return grpc(res);
    return connect(res);
  };
  return Object.assign(wrapped, {
    protocolNames: handler.protocolNames,
    allowedMethods: handler.allowedMethods,
    supportedContentType: handler.supportedContentType,
    requestPath: handler.requestPath,
    service: handler.service,
    method: handler.method,
  });
}

// Connect unary: an error is a JSON body with an HTTP status. Only small, uncompressed bodies can be this error.
async function connect(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  if (res.status !== codeToHttpStatus(Code.Internal) || !res.body || res.header?.has("content-encoding")) {
    return res;
  }
  const chunks: Uint8Array[] = [];
  for await (const chunk of res.body) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  const error = connectErrorOf(bytes);
  if (!isParseFailure(error)) return { ...res, body: createAsyncIterable([bytes]) };
  const body = errorToJsonBytes(asInvalid(error), {});
  res.header?.set("content-length", String(body.byteLength));
  return { ...res, status: codeToHttpStatus(Code.InvalidArgument), body: createAsyncIterable([body]) };
}

function connectErrorOf(bytes: Uint8Array): ConnectError | undefined {
  try {
    const { code, message } = JSON.parse(Buffer.from(bytes).toString("utf8")) as Record<string, unknown>;
    if (code === "internal" && typeof message === "string") return new ConnectError(message, Code.Internal);
  } catch {
    // not a Connect error body
  }
  return undefined;
}

// gRPC: the status is in the trailers, which a request that failed to parse has by the time the handler returns.
function grpc(res: UniversalServerResponse): UniversalServerResponse {
  if (res.trailer && isParseFailure(findTrailerError(res.trailer))) {
    setTrailerStatus(res.trailer, asInvalid(findTrailerError(res.trailer)!));
  }
  return res;
}

// gRPC-web: the trailers are the body's last envelope; a request that failed to parse gets nothing before them.
async function grpcWeb(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  if (!res.body) return res;
  const it = res.body[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return { ...res, body: createAsyncIterable([]) };
  let head = first.value;
  if (head.byteLength >= 5 && head[0] === trailerFlag) {
    const trailer = trailerParse(head.subarray(5));
    const error = findTrailerError(trailer);
    if (isParseFailure(error))
      head = encodeEnvelope(trailerFlag, trailerSerialize(setTrailerStatus(trailer, asInvalid(error))));
  }
  async function* rest(): AsyncIterable<Uint8Array> {
    yield head;
    // Delegating keeps return() and throw() reaching the handler's own iterator when the client goes away.
    yield* { [Symbol.asyncIterator]: () => it };
  }
  return { ...res, body: rest() };
}
