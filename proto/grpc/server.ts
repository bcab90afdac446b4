// Registers a protobuf-es service implementation on a grpc-js Server. Each
// handler is async and receives a context with an AbortSignal that fires when
// the call is cancelled or its deadline passes; whatever a handler throws is
// mapped by toStatus (typed detail, no internal message on the wire).
import { create, type DescMessage, type DescMethod, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import type {
  Metadata,
  Server,
  ServerDuplexStream,
  ServerReadableStream,
  ServerUnaryCall,
  ServerWritableStream,
  UntypedHandleCall,
  sendUnaryData,
} from '@grpc/grpc-js';
import type { ServerSurfaceCall } from '@grpc/grpc-js/build/src/server-call.js';
import { status as Status } from '@grpc/grpc-js';
import { Oversized, type PreEncoded, serviceDefinition } from './definition.js';
import { HostnetError, toStatus, type ErrorLogger } from './errors.js';

/** What every handler gets besides its request. */
export interface CallContext {
  /** Aborted when the client cancels or the deadline passes. */
  readonly signal: AbortSignal;
  /** The request metadata (e.g. the authorization header). */
  readonly metadata: Metadata;
  /** The raw grpc-js call, for peer address and TLS details. */
  readonly call: ServerSurfaceCall;
}

type In<M extends GenServiceMethods[string]> = MessageShape<M['input']>;
type OutInit<M extends GenServiceMethods[string]> = MessageInitShape<M['output']>;
/** A response stream accepts messages or PreEncoded bytes of the same type. */
export type Outgoing<D extends DescMessage> = MessageShape<D> | PreEncoded<D>;

export type MethodImpl<M extends GenServiceMethods[string]> =
  M['methodKind'] extends 'unary' ? (request: In<M>, ctx: CallContext) => Promise<OutInit<M>>
  : M['methodKind'] extends 'server_streaming'
    ? (request: In<M>, stream: ServerWritableStream<In<M>, Outgoing<M['output']>>, ctx: CallContext) => Promise<void>
  : M['methodKind'] extends 'client_streaming'
    ? (requests: AsyncIterable<In<M>>, ctx: CallContext) => Promise<OutInit<M>>
  : (requests: AsyncIterable<In<M>>, stream: ServerDuplexStream<In<M>, Outgoing<M['output']>>, ctx: CallContext) => Promise<void>;

/** A full implementation of a generated service. */
export type ServiceImpl<M extends GenServiceMethods> = { [K in keyof M]: MethodImpl<M[K]> };

function contextOf(call: ServerSurfaceCall): CallContext {
  const controller = new AbortController();
  const abort = (): void => controller.abort(new Error('call cancelled or deadline exceeded'));
  if (call.cancelled) abort();
  else call.once('cancelled', abort);
  return { signal: controller.signal, metadata: call.metadata, call };
}

type AnyFn = (...args: unknown[]) => Promise<unknown>;

/**
 * The call's requests as an async iterable that does not destroy the call
 * when the client half-closes: `for await` on the call itself would, and the
 * client would then see CANCELLED instead of the handler's status.
 */
function requestsOf(call: ServerReadableStream<unknown, unknown>): AsyncIterable<unknown> {
  const raw = (call as unknown as { iterator(o: { destroyOnReturn: boolean }): AsyncIterable<unknown> })
    .iterator({ destroyOnReturn: false });
  return {
    async *[Symbol.asyncIterator]() {
      for await (const m of raw) yield checked(m);
    },
  };
}

/** The request, or MESSAGE_TOO_LARGE when the deserialiser found it over the limit. */
function checked(request: unknown): unknown {
  if (request instanceof Oversized) {
    throw new HostnetError(Status.RESOURCE_EXHAUSTED, {
      reason: 'MESSAGE_TOO_LARGE',
      message: `the request is ${request.bytes} bytes; the server accepts at most ${request.limit}: split it (several files, smaller objects)`,
    });
  }
  return request;
}

/** Runs `fn` with the checked request; the check's throw becomes the rejection. */
const withRequest = async (request: unknown, fn: (r: unknown) => Promise<unknown>): Promise<unknown> => fn(checked(request));

function wrap(method: DescMethod, fn: AnyFn, log: ErrorLogger): UntypedHandleCall {
  const name = `${method.parent.typeName}/${method.name}`;
  switch (method.methodKind) {
    case 'unary':
      return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        withRequest(call.request, (r) => fn(r, contextOf(call))).then(
          (res) => callback(null, create(method.output, res as MessageInitShape<DescMessage>)),
          (err: unknown) => callback(toStatus(err, log, name)),
        );
      };
    case 'client_streaming':
      return (call: ServerReadableStream<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        fn(requestsOf(call), contextOf(call)).then(
          (res) => callback(null, create(method.output, res as MessageInitShape<DescMessage>)),
          (err: unknown) => callback(toStatus(err, log, name)),
        );
      };
    case 'server_streaming':
      return (call: ServerWritableStream<unknown, unknown>) => {
        withRequest(call.request, (r) => fn(r, call, contextOf(call))).then(
          () => { if (!call.writableEnded) call.end(); },
          (err: unknown) => { call.emit('error', toStatus(err, log, name)); },
        );
      };
    case 'bidi_streaming':
      return (call: ServerDuplexStream<unknown, unknown>) => {
        fn(requestsOf(call), call, contextOf(call)).then(
          () => { if (!call.writableEnded) call.end(); },
          (err: unknown) => { call.emit('error', toStatus(err, log, name)); },
        );
      };
  }
}

/**
 * Adds `service` with `impl` to `server`. Throws if a method of the service
 * has no implementation. Call once per service and server.
 */
export function addService<M extends GenServiceMethods>(
  server: Server,
  service: GenService<M>,
  impl: ServiceImpl<M>,
  log: ErrorLogger,
  options: { maxRequestBytes?: number } = {},
): void {
  const handlers: Record<string, UntypedHandleCall> = {};
  for (const method of service.methods) {
    const fn = (impl as Record<string, AnyFn | undefined>)[method.localName];
    if (typeof fn !== 'function') throw new TypeError(`${service.typeName}: no implementation for ${method.name}`);
    handlers[method.localName] = wrap(method, fn.bind(impl), log);
  }
  server.addService(serviceDefinition(service, options.maxRequestBytes), handlers);
}
