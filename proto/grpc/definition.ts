// Builds @grpc/grpc-js service definitions from protobuf-es service
// descriptors. protobuf-es generates messages only; grpc-js needs, per
// method, a path and four (de)serialisers. Responses may also be written as
// PreEncoded bytes, so that one update encoded once can go to many streams.
import { fromBinary, toBinary, type DescMessage, type DescMethod, type DescService, type MessageShape } from '@bufbuild/protobuf';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';

/**
 * A message already encoded with toBinary. Write it to any response stream
 * of the matching message type; the serialiser passes the bytes through.
 */
export class PreEncoded<Desc extends DescMessage = DescMessage> {
  /** The wire bytes. */
  readonly bytes: Buffer;

  private constructor(readonly schema: Desc, bytes: Uint8Array) {
    this.bytes = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Encodes `message` once. Pure; never throws for a valid message. */
  static encode<D extends DescMessage>(schema: D, message: MessageShape<D>): PreEncoded<D> {
    return new PreEncoded(schema, toBinary(schema, message));
  }

  get byteLength(): number {
    return this.bytes.byteLength;
  }
}

function serializer<D extends DescMessage>(schema: D): (value: MessageShape<D> | PreEncoded<D>) => Buffer {
  return (value) => {
    if (value instanceof PreEncoded) {
      if (value.schema.typeName !== schema.typeName) {
        throw new TypeError(`pre-encoded ${value.schema.typeName} written where ${schema.typeName} is expected`);
      }
      return value.bytes;
    }
    const bytes = toBinary(schema, value);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

/**
 * A request larger than the service accepts: what the deserialiser hands the
 * handler wrapper instead of a message, so that the caller gets
 * MESSAGE_TOO_LARGE with the sizes rather than grpc-js's bare status.
 */
export class Oversized {
  constructor(readonly bytes: number, readonly limit: number) {}
}

function deserializer<D extends DescMessage>(schema: D, maxBytes: number): (buf: Buffer) => MessageShape<D> | Oversized {
  return (buf) => (buf.length > maxBytes ? new Oversized(buf.length, maxBytes) : fromBinary(schema, buf));
}

/** The full gRPC path of a method, e.g. "/hostnet.v1.AgentService/Sync". */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

export type AnyMethodDefinition = MethodDefinition<unknown, unknown>;

/**
 * The grpc-js ServiceDefinition of `service`, keyed by each method's
 * localName (e.g. "sync", "reportHealth"). Requests over `maxRequestBytes`
 * deserialise to Oversized. Pure and idempotent.
 */
export function serviceDefinition(service: DescService, maxRequestBytes = Number.MAX_SAFE_INTEGER): ServiceDefinition {
  const def: Record<string, AnyMethodDefinition> = {};
  for (const method of service.methods) {
    def[method.localName] = {
      path: methodPath(method),
      originalName: method.localName,
      requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
      responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
      requestSerialize: serializer(method.input) as (v: unknown) => Buffer,
      requestDeserialize: deserializer(method.input, maxRequestBytes),
      responseSerialize: serializer(method.output) as (v: unknown) => Buffer,
      responseDeserialize: deserializer(method.output, Number.MAX_SAFE_INTEGER),
    };
  }
  return def;
}
