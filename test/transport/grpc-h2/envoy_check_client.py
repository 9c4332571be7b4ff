"""Calls the gRPC port as an independent client: Debian's grpcio, Envoy's protos compiled by protoc.

Usage: envoy_check_client.py <port> <descriptor set from protoc --include_imports>
Prints one JSON object with the outcome of each call, for the test to read.
"""
import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

CHECK = "/envoy.service.auth.v3.Authorization/Check"


def message_class(pool, name):
    descriptor = pool.FindMessageTypeByName(name)
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


def main():
    port, descriptor_set = sys.argv[1], sys.argv[2]
    files = descriptor_pb2.FileDescriptorSet()
    with open(descriptor_set, "rb") as f:
        files.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    CheckRequest = message_class(pool, "envoy.service.auth.v3.CheckRequest")
    CheckResponse = message_class(pool, "envoy.service.auth.v3.CheckResponse")

    def request(token):
        r = CheckRequest()
        http = r.attributes.request.http
        http.method = "GET"
        http.path = "/orders"
        http.host = "api.example.com"
        http.headers["authorization"] = "Bearer " + token
        return r

    out = {}
    with grpc.insecure_channel("127.0.0.1:" + port) as channel:
        check = channel.unary_unary(
            CHECK,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=CheckResponse.FromString,
        )

        def outcome(name, **kwargs):
            try:
                response = check(kwargs.pop("req"), timeout=kwargs.pop("timeout", 5), **kwargs)
                out[name] = {"ok": True, "response": json.loads(json_format.MessageToJson(response))}
            except grpc.RpcError as error:
                out[name] = {"ok": False, "code": error.code().name, "details": error.details()}

        outcome("allow", req=request("allow"))
        outcome("expired", req=request("expired"))
        outcome("gzip", req=request("allow"), compression=grpc.Compression.Gzip)
        outcome("deflate", req=request("allow"), compression=grpc.Compression.Deflate)
        big = request("allow")
        big.attributes.request.http.body = "x" * (80 * 1024)
        outcome("oversize", req=big)

        unknown = channel.unary_unary("/no.Such/Method", request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            unknown(b"", timeout=5)
            out["unknown"] = {"ok": True}
        except grpc.RpcError as error:
            out["unknown"] = {"ok": False, "code": error.code().name, "details": error.details()}

        hang = channel.unary_unary("/keymesh.test.Probe/Hang", request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            hang(b"", timeout=0.2)
            out["deadline"] = {"ok": True}
        except grpc.RpcError as error:
            out["deadline"] = {"ok": False, "code": error.code().name}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
