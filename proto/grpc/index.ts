// The gRPC adapter between protobuf-es and @grpc/grpc-js.
export { PreEncoded, methodPath, serviceDefinition } from './definition.js';
export { addService, type CallContext, type MethodImpl, type Outgoing, type ServiceImpl } from './server.js';
export { createClient, type CallOptions, type ClientMethod, type ServiceClient } from './client.js';
export { fanOut, type FanoutResult, type FanoutTarget } from './fanout.js';
export * from './errors.js';
