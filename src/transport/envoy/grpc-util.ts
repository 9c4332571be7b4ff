function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function identity(bytes: Buffer): Buffer {
  return bytes;
}

/** grpc-js (de)serializers that pass message bytes through untouched, leaving protobuf to the handler. */
export const bufferSerializers = {
  requestSerialize: toBuffer,
  requestDeserialize: identity,
  responseSerialize: toBuffer,
  responseDeserialize: identity,
} as const;
