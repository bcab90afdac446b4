// A typed grpc-js client for a protobuf-es service. Unary calls return
// promises that reject with HostnetError (typed detail decoded); streaming
// calls return the grpc-js streams, whose errors HostnetError.from() decodes.
import { create, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import {
  Client,
  Metadata,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ClientWritableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { methodPath, serviceDefinition } from './definition.js';
import { fromServiceError } from './errors.js';

export interface CallOptions {
  /** Deadline, as milliseconds from now or an absolute Date. */
  readonly timeoutMs?: number;
  readonly deadline?: Date;
  /** Extra request metadata (e.g. authorization). */
  readonly metadata?: Metadata;
  /** Cancels the call when aborted. */
  readonly signal?: AbortSignal;
}

type In<M extends GenServiceMethods[string]> = MessageShape<M['input']>;
type InInit<M extends GenServiceMethods[string]> = MessageInitShape<M['input']>;
type Out<M extends GenServiceMethods[string]> = MessageShape<M['output']>;

export type ClientMethod<M extends GenServiceMethods[string]> =
  M['methodKind'] extends 'unary' ? (request: InInit<M>, options?: CallOptions) => Promise<Out<M>>
  : M['methodKind'] extends 'server_streaming' ? (request: InInit<M>, options?: CallOptions) => ClientReadableStream<Out<M>>
  : M['methodKind'] extends 'client_streaming'
    ? (options?: CallOptions) => { stream: ClientWritableStream<In<M>>; response: Promise<Out<M>> }
  : (options?: CallOptions) => ClientDuplexStream<In<M>, Out<M>>;

export type ServiceClient<M extends GenServiceMethods> = { [K in keyof M]: ClientMethod<M[K]> } & {
  /** The underlying grpc-js client (channel state, waitForReady). */
  readonly grpc: Client;
  /** Closes the channel. Idempotent. */
  close(): void;
};

function grpcOptions(options: CallOptions | undefined): { deadline?: Date } {
  if (options?.deadline) return { deadline: options.deadline };
  if (options?.timeoutMs !== undefined) return { deadline: new Date(Date.now() + options.timeoutMs) };
  return {};
}

function onAbort(signal: AbortSignal | undefined, cancel: () => void): void {
  if (!signal) return;
  if (signal.aborted) cancel();
  else signal.addEventListener('abort', cancel, { once: true });
}

/**
 * Creates a client for `service` at `address` ("host:port"). Channel options
 * are passed to grpc-js as they are (message size limits, keepalive).
 */
let ipServerNameQuiet = false;

/**
 * grpc-js gives TLS the target as its server name, also when the target is
 * an IP address (the certificate's IP address SAN is what gets checked), and
 * Node prints a deprecation warning (DEP0123) for it to the user's terminal.
 * Only that warning is dropped.
 */
function quietIpServerName(): void {
  if (ipServerNameQuiet) return;
  ipServerNameQuiet = true;
  const emit = process.emitWarning.bind(process);
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const [a, b] = rest;
    const code = typeof a === 'object' && a !== null ? (a as { code?: string }).code : b;
    if (code === 'DEP0123') return;
    (emit as (w: string | Error, ...r: unknown[]) => void)(warning, ...rest);
  });
}

export function createClient<M extends GenServiceMethods>(
  service: GenService<M>,
  address: string,
  credentials: ChannelCredentials,
  channelOptions: ChannelOptions = {},
): ServiceClient<M> {
  quietIpServerName();
  const client = new Client(address, credentials, channelOptions);
  const def = serviceDefinition(service);
  const out: Record<string, unknown> = {};
  for (const method of service.methods) {
    const md = def[method.localName];
    if (!md) continue;
    const path = methodPath(method);
    const ser = md.requestSerialize;
    const de = md.responseDeserialize;
    const metaOf = (o?: CallOptions): Metadata => o?.metadata ?? new Metadata();
    switch (method.methodKind) {
      case 'unary':
        out[method.localName] = (req: MessageInitShape<typeof method.input>, o?: CallOptions) =>
          new Promise((resolve, reject) => {
            const call = client.makeUnaryRequest(path, ser, de, create(method.input, req), metaOf(o), grpcOptions(o),
              (err: ServiceError | null, res?: unknown) => (err ? reject(fromServiceError(err)) : resolve(res)));
            onAbort(o?.signal, () => call.cancel());
          });
        break;
      case 'server_streaming':
        out[method.localName] = (req: MessageInitShape<typeof method.input>, o?: CallOptions) => {
          const call = client.makeServerStreamRequest(path, ser, de, create(method.input, req), metaOf(o), grpcOptions(o));
          onAbort(o?.signal, () => call.cancel());
          return call;
        };
        break;
      case 'client_streaming':
        out[method.localName] = (o?: CallOptions) => {
          let stream!: ClientWritableStream<unknown>;
          const response = new Promise((resolve, reject) => {
            stream = client.makeClientStreamRequest(path, ser, de, metaOf(o), grpcOptions(o),
              (err: ServiceError | null, res?: unknown) => (err ? reject(fromServiceError(err)) : resolve(res)));
          });
          onAbort(o?.signal, () => stream.cancel());
          return { stream, response };
        };
        break;
      case 'bidi_streaming':
        out[method.localName] = (o?: CallOptions) => {
          const call = client.makeBidiStreamRequest(path, ser, de, metaOf(o), grpcOptions(o));
          onAbort(o?.signal, () => call.cancel());
          return call;
        };
        break;
    }
  }
  out.grpc = client;
  out.close = () => client.close();
  return out as ServiceClient<M>;
}
