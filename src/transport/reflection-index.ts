import {
  clone,
  create,
  createFileRegistry,
  type DescExtension,
  type DescFile,
  type DescMessage,
  type DescMethodBiDiStreaming,
  fromBinary,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import {
  file_grpc_reflection_v1_reflection,
  type ServerReflectionRequest,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
  ServerReflectionResponseSchema,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";

type Response = MessageInitShape<typeof ServerReflectionResponseSchema>;

// gRPC status codes carried inside error_response (not as RPC errors: the stream stays usable).
const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

interface Index {
  files: Map<string, DescFile>;
  symbols: Map<string, DescFile>;
  extensions: Map<string, Map<number, DescFile>>;
}

function indexFiles(roots: DescFile[]): Index {
  const index: Index = { files: new Map(), symbols: new Map(), extensions: new Map() };
  const addExtension = (file: DescFile, ext: DescExtension) => {
    index.symbols.set(ext.typeName, file);
    const byNumber = index.extensions.get(ext.extendee.typeName) ?? new Map<number, DescFile>();
    byNumber.set(ext.number, file);
    index.extensions.set(ext.extendee.typeName, byNumber);
  };
  const addMessage = (file: DescFile, message: DescMessage) => {
    index.symbols.set(message.typeName, file);
    for (const field of message.fields) index.symbols.set(`${message.typeName}.${field.name}`, file);
    for (const oneof of message.oneofs) index.symbols.set(`${message.typeName}.${oneof.name}`, file);
    for (const nested of message.nestedMessages) addMessage(file, nested);
    for (const nested of message.nestedEnums) index.symbols.set(nested.typeName, file);
    for (const ext of message.nestedExtensions) addExtension(file, ext);
  };
  const addFile = (file: DescFile) => {
    if (index.files.has(file.proto.name)) return;
    index.files.set(file.proto.name, file);
    for (const dependency of file.dependencies) addFile(dependency);
    for (const service of file.services) {
      index.symbols.set(service.typeName, file);
      for (const method of service.methods) index.symbols.set(`${service.typeName}.${method.name}`, file);
    }
    for (const message of file.messages) addMessage(file, message);
    for (const enumeration of file.enums) {
      index.symbols.set(enumeration.typeName, file);
      // Enum values are scoped like siblings of their enum, as protoc resolves them.
      const scope = enumeration.typeName.slice(0, enumeration.typeName.length - enumeration.name.length);
      for (const value of enumeration.values) index.symbols.set(`${scope}${value.name}`, file);
    }
    for (const ext of file.extensions) addExtension(file, ext);
  };
  for (const file of roots) addFile(file);
  return index;
}

/** The file first, then every file it imports, transitively: clients need them all to build descriptors. */
function withDependencies(file: DescFile): Uint8Array[] {
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  const visit = (f: DescFile) => {
    if (seen.has(f.proto.name)) return;
    seen.add(f.proto.name);
    out.push(toBinary(FileDescriptorProtoSchema, f.proto));
    for (const dependency of f.dependencies) visit(dependency);
  };
  visit(file);
  return out;
}

function answer(index: Index, serviceNames: string[], request: ServerReflectionRequest): Response {
  const base = { validHost: request.host, originalRequest: request };
  const error = (errorCode: number, errorMessage: string): Response => ({
    ...base,
    messageResponse: { case: "errorResponse", value: { errorCode, errorMessage } },
  });
  const files = (file: DescFile | undefined, what: string): Response =>
    file
      ? {
          ...base,
          messageResponse: {
            case: "fileDescriptorResponse",
            value: { fileDescriptorProto: withDependencies(file) },
          },
        }
      : error(NOT_FOUND, `${what} not found`);

  const { case: kind, value } = request.messageRequest;
  switch (kind) {
    case "listServices":
      return {
        ...base,
        messageResponse: {
          case: "listServicesResponse",
          value: { service: serviceNames.map((name) => ({ name })) },
        },
      };
    case "fileByFilename":
      return files(index.files.get(value), `file ${value}`);
    case "fileContainingSymbol":
      // Clients sometimes send fully-qualified names with the leading dot of descriptor references.
      return files(index.symbols.get(value.replace(/^\./, "")), `symbol ${value}`);
    case "fileContainingExtension":
      return files(
        index.extensions.get(value.containingType)?.get(value.extensionNumber),
        `extension ${value.extensionNumber} of ${value.containingType}`,
      );
    case "allExtensionNumbersOfType": {
      const numbers = index.extensions.get(value);
      if (!numbers && !index.symbols.has(value)) return error(NOT_FOUND, `type ${value} not found`);
      return {
        ...base,
        messageResponse: {
          case: "allExtensionNumbersResponse",
          value: { baseTypeName: value, extensionNumber: [...(numbers?.keys() ?? [])].sort((a, b) => a - b) },
        },
      };
    }
    default:
      return error(INVALID_ARGUMENT, "empty or unknown reflection request");
  }
}

/**
 * The same service under `grpc.reflection.v1alpha`, which older clients (and grpcurl's fallback) call: the
 * messages are identical on the wire, so the v1 file is renamed at runtime rather than generating a second copy.
 */
function v1alphaFile(): DescFile {
  const proto = clone(FileDescriptorProtoSchema, file_grpc_reflection_v1_reflection.proto);
  proto.name = "grpc/reflection/v1alpha/reflection.proto";
  proto.package = "grpc.reflection.v1alpha";
  proto.options = undefined;
  const rename = (typeName: string) =>
    typeName.replace(/^\.grpc\.reflection\.v1\./, ".grpc.reflection.v1alpha.");
  for (const message of proto.messageType) {
    for (const field of message.field) field.typeName = rename(field.typeName);
  }
  for (const service of proto.service) {
    for (const method of service.method) {
      method.inputType = rename(method.inputType);
      method.outputType = rename(method.outputType);
    }
  }
  const registry = createFileRegistry(proto, () => undefined);
  const file = registry.getFile(proto.name);
  if (!file) throw new Error("reflection: could not build the v1alpha descriptor");
  return file;
}

/** Answers reflection requests over a fixed set of files; both ports' reflection services share one. */
export interface Reflector {
  /** The v1 answer to one request. */
  answer(request: ServerReflectionRequest): ServerReflectionResponse;
  /** One request's answer as bytes, for v1 and v1alpha alike (their messages are identical on the wire). */
  answerBytes(request: Uint8Array): Uint8Array;
  /** `grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo`, built from the v1 file. */
  alphaMethod: DescMethodBiDiStreaming<DescMessage, DescMessage>;
}

/**
 * A reflector over `files` and their imports, listing `serviceNames`. The reflection files themselves are included,
 * so that `grpcurl describe` works on the reflection services too.
 */
export function createReflector(files: DescFile[], serviceNames: string[]): Reflector {
  const alpha = v1alphaFile();
  const index = indexFiles([...files, file_grpc_reflection_v1_reflection, alpha]);
  const names = [...serviceNames];
  const method = alpha.services[0]?.methods[0];
  if (method?.methodKind !== "bidi_streaming") throw new Error("reflection: unexpected v1alpha descriptor");
  const answerOne = (request: ServerReflectionRequest) =>
    create(ServerReflectionResponseSchema, answer(index, names, request));
  return {
    answer: answerOne,
    answerBytes: (request) =>
      toBinary(ServerReflectionResponseSchema, answerOne(fromBinary(ServerReflectionRequestSchema, request))),
    // DescMethod is not a discriminated union, so the check above does not narrow it by itself.
    alphaMethod: method as DescMethodBiDiStreaming<DescMessage, DescMessage>,
  };
}
