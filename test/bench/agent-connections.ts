// What one agent connection costs the controller, apart from everything
// else the controller does: a grpc-js server with the controller's settings
// and its agent listener (controller/src/agent-listener.ts: mutual TLS, as in production), N
// clients in a process of their own each on its own connection with a
// bidirectional stream, then 5 messages pushed to every stream. Measured on
// the server: CPU per connection made, RSS and heap per connection, CPU per
// message pushed. The baseline is the same server and clients without TLS,
// in the same run: what grpc-js and HTTP/2 cost alone. With TLS twice: every
// client a full handshake (an agent's first connect), and every client
// resuming a session it got before (an agent's reconnect after a restart or
// a failover: agent/src/sync/resuming-credentials.ts).
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { generateKeyPairSync } from 'node:crypto';
import {
  type ChannelCredentials, type ClientDuplexStream, type ServerDuplexStream, type ServiceDefinition, ServerCredentials as Creds, credentials, makeGenericClientConstructor,
} from '@grpc/grpc-js';
import { AgentsCa, initCa } from '../../controller/src/identity/ca.js';
import { agentTls, bind, grpcServer } from '../../controller/src/server.js';
import { listenAgents } from '../../controller/src/agent-listener.js';
import type { ControllerConfig } from '../../controller/src/config.js';
import { rssKb } from './proc.js';
import { ResumingCredentials } from '../../agent/src/sync/resuming-credentials.js';

const SELF = fileURLToPath(import.meta.url);
const identity = (b: Buffer): Buffer => b;
const SERVICE: ServiceDefinition = {
  sync: { path: '/bench.Conn/Sync', requestStream: true, responseStream: true, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity, originalName: 'sync' },
};

export type ConnectionMode = 'plaintext' | 'tls' | 'tls-resumed';

export interface ConnectionCost {
  readonly mode: ConnectionMode;
  readonly connections: number;
  /** Server CPU from the first connect until every stream was open, per connection. */
  readonly cpuMsPerConnection: number;
  readonly rssKbPerConnection: number;
  readonly heapKbPerConnection: number;
  /** Server CPU per message written to one stream (5 rounds to every stream, until every client had it). */
  readonly cpuMsPerMessage: number;
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function measure(n: number, mode: ConnectionMode, dir: string): Promise<ConnectionCost> {
  const tls = mode !== 'plaintext';
  const config = { grpc: { maxMessageBytes: 4 << 20, certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server.key') } } as unknown as ControllerConfig;
  const server = grpcServer(config);
  const streams = new Set<ServerDuplexStream<Buffer, Buffer>>();
  server.addService(SERVICE, {
    sync(call: ServerDuplexStream<Buffer, Buffer>) {
      // As the Sync handler does: the caller's certificate, once per stream.
      if (tls) call.getAuthContext();
      streams.add(call);
      call.on('data', () => undefined);
      call.on('error', () => streams.delete(call));
      call.on('end', () => { streams.delete(call); call.end(); });
    },
  });
  // With TLS, the controller's agent listener; in plaintext, grpc-js's own.
  const listener = tls ? await listenAgents(server, '127.0.0.1:0', await agentTls(config, await AgentsCa.load(join(dir, 'ca.pem'), join(dir, 'ca.key')))) : undefined;
  const port = listener ? listener.port : await bind(server, '127.0.0.1:0', Creds.createInsecure());
  const clients: ChildProcess = fork(SELF, ['clients'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ask = (m: Record<string, unknown>): Promise<void> => new Promise((resolve) => { clients.once('message', () => resolve()); clients.send(m); });
  try {
    if (mode === 'tls-resumed') {
      // Every client's credentials get their session ticket first (a connect, a stream, closed): the measured connects resume.
      await ask({ cmd: 'prime', n, port, dir });
      while (streams.size > 0) await new Promise((r) => setTimeout(r, 20));
    }
    global.gc?.();
    const rss0 = await rssKb(process.pid);
    const heap0 = process.memoryUsage().heapUsed;
    const cpu0 = cpuMs();
    await ask({ cmd: 'connect', n, port, tls, dir });
    while (streams.size < n) await new Promise((r) => setTimeout(r, 20));
    const cpuConnect = cpuMs() - cpu0;
    await new Promise((r) => setTimeout(r, 1000));
    global.gc?.();
    const rss = (await rssKb(process.pid)) - rss0;
    const heap = (process.memoryUsage().heapUsed - heap0) / 1024;
    // A delta's size: one prefix added to an object (about 300 bytes framed).
    const message = Buffer.alloc(300, 7);
    const cpu1 = cpuMs();
    for (let k = 1; k <= 5; k++) {
      for (const s of streams) s.write(message);
      await ask({ cmd: 'wait', k });
    }
    const cpuPush = cpuMs() - cpu1;
    return { mode, connections: n, cpuMsPerConnection: cpuConnect / n, rssKbPerConnection: rss / n, heapKbPerConnection: heap / n, cpuMsPerMessage: cpuPush / (5 * n) };
  } finally {
    clients.kill('SIGKILL');
    await listener?.close();
    server.forceShutdown();
  }
}

/** Plaintext, then mutual TLS through the controller's agent listener (full handshakes, then resumed): `n` connections each, each in a process of its own (with --expose-gc). */
export async function agentConnectionsBench(n: number): Promise<ConnectionCost[]> {
  const one = (mode: ConnectionMode): Promise<ConnectionCost> => {
    const child = fork(SELF, ['server', String(n), mode], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new Promise((resolve, reject) => {
      child.once('message', (m) => resolve(m as ConnectionCost));
      child.once('exit', (code) => reject(new Error(`the measuring process exited ${code ?? 'on a signal'}`)));
    });
  };
  return [await one('plaintext'), await one('tls'), await one('tls-resumed')];
}

async function serverProcess(n: number, mode: ConnectionMode): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hostnet-conn-'));
  try {
    await initCa(dir, ['127.0.0.1']);
    const result = await measure(n, mode, dir);
    await new Promise((r) => process.send?.(result, r));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

/** The client side: `n` connections, each with its own stream, counting what arrives. */
function clientsProcess(): void {
  const Client = makeGenericClientConstructor(SERVICE, 'Conn');
  const received: number[] = [];
  /** Each client's credentials, as each agent has its own (made at 'prime', else at 'connect'). */
  let creds: ChannelCredentials[] = [];
  const agentCredentials = async (dir: string, n: number): Promise<ChannelCredentials[]> => {
    // An agent's certificate from the CA; one TLS context, each client its own credentials (and so its own session ticket).
    const ca = await AgentsCa.load(join(dir, 'ca.pem'), join(dir, 'ca.key'));
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const cert = ca.issueAgent('bench-host', publicKey, 3_600_000);
    const context = createSecureContext({ ca: ca.pem, key: privateKey.export({ type: 'pkcs8', format: 'pem' }), cert: cert.pem });
    return Array.from({ length: n }, () => new ResumingCredentials(context));
  };
  process.on('message', (raw) => {
    const m = raw as { cmd: string; n?: number; port?: number; tls?: boolean; dir?: string; k?: number };
    void (async () => {
      if (m.cmd === 'prime') {
        creds = await agentCredentials(m.dir ?? '', m.n ?? 0);
        for (let i = 0; i < creds.length; i += 200) {
          await Promise.all(creds.slice(i, i + 200).map(async (c) => {
            const client = new Client(`127.0.0.1:${m.port ?? 0}`, c, { 'grpc.use_local_subchannel_pool': 1 });
            const call = (client as unknown as { sync(): ClientDuplexStream<Buffer, Buffer> }).sync();
            call.on('error', () => undefined);
            call.write(Buffer.from('hello'));
            // The tickets come after the handshake; the stream's first exchange has them read.
            await new Promise((r) => setTimeout(r, 200));
            call.end();
            client.close();
          }));
        }
      } else if (m.cmd === 'connect') {
        if (!m.tls) creds = Array.from({ length: m.n ?? 0 }, () => credentials.createInsecure());
        else if (creds.length === 0) creds = await agentCredentials(m.dir ?? '', m.n ?? 0);
        for (let i = 0; i < (m.n ?? 0); i++) {
          const client = new Client(`127.0.0.1:${m.port ?? 0}`, creds[i] as ChannelCredentials, { 'grpc.use_local_subchannel_pool': 1 });
          const call = (client as unknown as { sync(): ClientDuplexStream<Buffer, Buffer> }).sync();
          received[i] = 0;
          call.on('data', () => { received[i] = (received[i] ?? 0) + 1; call.write(Buffer.from('ack')); });
          call.on('error', () => undefined);
          call.write(Buffer.from('hello'));
          if (i % 200 === 199) await new Promise((r) => setTimeout(r, 10));
        }
      } else if (m.cmd === 'wait') {
        while (received.some((r) => r < (m.k ?? 0))) await new Promise((r) => setTimeout(r, 5));
      }
      process.send?.({ done: true });
    })();
  });
}

if (process.argv[2] === 'clients') clientsProcess();
if (process.argv[2] === 'server') void serverProcess(Number(process.argv[3]), process.argv[4] as ConnectionMode);
