"""The gRPC stubs of omnigate.v1, generated from proto/omnigate/v1 when the
package is built: gateway_pb2 (messages), gateway_pb2_grpc (GatewayStub),
value_pb2 (Value)."""
