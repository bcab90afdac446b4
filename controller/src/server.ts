// The controller process's gRPC side: the server with its limits and
// keepalive, TLS when configured, and a graceful stop.
import { readFile } from 'node:fs/promises';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { ControllerConfig } from './config.js';

/**
 * A gRPC server with the controller's limits: keepalive 30 s / 10 s, channelz
 * off, and requests up to twice `maxMessageBytes` read off the wire, so that
 * one over the limit gets MESSAGE_TOO_LARGE from the handlers (addService's
 * maxRequestBytes) rather than grpc-js's bare RESOURCE_EXHAUSTED.
 */
export function grpcServer(config: ControllerConfig): Server {
  return new Server({
    'grpc.max_receive_message_length': 2 * config.grpc.maxMessageBytes,
    'grpc.max_send_message_length': 64 << 20,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 10_000,
    'grpc.enable_channelz': 0,
  });
}

/** Server credentials: TLS from the configured files (client certificates required when a client CA is set), else plaintext. */
export async function serverCredentials(config: ControllerConfig): Promise<ServerCredentials> {
  const { certFile, keyFile, clientCaFile } = config.grpc;
  if (!certFile || !keyFile) return ServerCredentials.createInsecure();
  const [cert, key, ca] = await Promise.all([readFile(certFile), readFile(keyFile), clientCaFile ? readFile(clientCaFile) : Promise.resolve(null)]);
  return ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], Boolean(ca));
}

/** Binds `server` to `address`; resolves with the bound port. */
export function bind(server: Server, address: string, creds: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port))));
}

/** Stops accepting calls and waits up to `graceMs` for running ones, then forces. */
export function stop(server: Server, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { server.forceShutdown(); resolve(); }, graceMs);
    server.tryShutdown(() => { clearTimeout(timer); resolve(); });
  });
}
