// The agent listener (controller/src/agent-listener.ts) with real sockets on
// loopback, real TLS and a real grpc-js server behind it: many agents at
// once all get in, a few handshakes at a time; a client that connects and
// says nothing cannot hold the others up; a connection that waited too long
// is closed unserved (its agent retries); a call through it sees the
// agent's certificate, as the Sync and Report handlers need; and an agent
// resumes its TLS session at its next connect, on another replica too, with
// its certificate's expiry still enforced.
import t, { type Test } from 'tap';
import { type Socket, connect as tcpConnect } from 'node:net';
import { type TLSSocket, connect as tlsConnect, createSecureContext } from 'node:tls';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ServerUnaryCall, type ServiceDefinition, type sendUnaryData, Server, credentials, makeGenericClientConstructor,
} from '@grpc/grpc-js';
import { AgentsCa, initCa } from '../../../controller/src/identity/ca.js';
import { type AgentListenerOptions, listenAgents } from '../../../controller/src/agent-listener.js';
import { agentTls } from '../../../controller/src/server.js';
import type { ControllerConfig } from '../../../controller/src/config.js';
import { peerOf } from '../../../controller/src/identity/peer.js';
import type { CallContext } from '../../../proto/grpc/server.js';
import { ResumingCredentials } from '../../../agent/src/sync/resuming-credentials.js';

// The CA and server certificate as `hostnet-controller ca init` writes them, read as the controller's start reads them.
const dir = await mkdtemp(join(tmpdir(), 'hostnet-listener-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
await initCa(dir, ['127.0.0.1']);
const ca = await AgentsCa.load(join(dir, 'ca.pem'), join(dir, 'ca.key'));
const serverTls = await agentTls({ grpc: { certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server.key') } } as unknown as ControllerConfig, ca);
// An agent's key and certificate, as enrollment issues it.
const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const agentKey = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const agentCert = ca.issueAgent('h1', publicKey, 86_400_000);
const text = (b: Buffer): Buffer => b;
const SERVICE: ServiceDefinition = {
  whoami: { path: '/test.Listener/Whoami', requestStream: false, responseStream: false, requestSerialize: text, requestDeserialize: text, responseSerialize: text, responseDeserialize: text, originalName: 'whoami' },
  // As the Sync, Report and Renew handlers ask: the controller's own peerOf.
  peer: { path: '/test.Listener/Peer', requestStream: false, responseStream: false, requestSerialize: text, requestDeserialize: text, responseSerialize: text, responseDeserialize: text, originalName: 'peer' },
};

async function listener(t: Test, options: AgentListenerOptions, tls = serverTls) {
  const server = new Server();
  server.addService(SERVICE, {
    whoami(call: ServerUnaryCall<Buffer, Buffer>, done: sendUnaryData<Buffer>) {
      done(null, Buffer.from(String(call.getAuthContext().sslPeerCertificate?.subject.CN ?? 'nobody')));
    },
    peer(call: ServerUnaryCall<Buffer, Buffer>, done: sendUnaryData<Buffer>) {
      try {
        done(null, Buffer.from(peerOf({ call } as unknown as CallContext).hostId));
      } catch (err) {
        done(null, Buffer.from(`refused: ${(err as Error).message}`));
      }
    },
  });
  const l = await listenAgents(server, '127.0.0.1:0', tls, options);
  t.teardown(async () => { await l.close(); server.forceShutdown(); });
  return l;
}

/** One call on a new channel (a new connection), closed after. */
function call(port: number, creds: ReturnType<typeof credentials.createSsl>, method: 'whoami' | 'peer'): Promise<string> {
  const Client = makeGenericClientConstructor(SERVICE, 'Listener');
  const client = new Client(`127.0.0.1:${port}`, creds);
  return new Promise<string>((resolve, reject) => {
    (client as unknown as Record<string, (b: Buffer, cb: (err: Error | null, r?: Buffer) => void) => void>)[method]?.(Buffer.alloc(0), (err, r) => {
      client.close();
      if (err) reject(err);
      else resolve(r?.toString() ?? '');
    });
  });
}

/** The agent's stream credentials (agent/src/sync/identity.ts makes them so) for `cert`. */
const agentCredentials = (cert: string): ResumingCredentials => new ResumingCredentials(createSecureContext({ ca: ca.pem, cert, key: agentKey }));

/** A TLS client as the agent's connection is (h2, the agents CA, with or without its certificate): resolves when the handshake is done, rejects when the connection ends before. */
function handshake(port: number, sockets: Socket[], withCert = false): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: ca.pem, ALPNProtocols: ['h2'], ...(withCert ? { cert: agentCert.pem, key: agentKey } : {}) });
    sockets.push(s);
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed before the handshake')));
  });
}

void t.test('the agent listener', async (t) => {
  const sockets: Socket[] = [];
  t.teardown(() => { for (const s of sockets) s.destroy(); });

  await t.test('60 agents at once: every one gets in, at most 4 handshakes at a time', async (t) => {
    const l = await listener(t, { handshakes: 4 });
    const done = await Promise.allSettled(Array.from({ length: 60 }, () => handshake(l.port, sockets)));
    t.equal(done.filter((d) => d.status === 'fulfilled').length, 60, 'all 60 handshakes done');
    t.ok(l.peakHandshakes() <= 4, `at most 4 at once (${l.peakHandshakes()})`);
    t.ok(l.peakHandshakes() >= 2, `and more than one (${l.peakHandshakes()}): not one after another`);
    t.equal(l.waiting(), 0, 'none left waiting');
  });

  await t.test('clients that connect and say nothing do not hold the others up', async (t) => {
    const l = await listener(t, { handshakes: 2, slowMs: 200, handshakeTimeoutMs: 5000 });
    const silent = await Promise.all(Array.from({ length: 4 }, () => new Promise<Socket>((resolve) => {
      const s = tcpConnect({ host: '127.0.0.1', port: l.port }, () => resolve(s));
      s.on('error', () => undefined);
      sockets.push(s);
    })));
    const started = performance.now();
    const done = await Promise.allSettled(Array.from({ length: 10 }, () => handshake(l.port, sockets)));
    const ms = performance.now() - started;
    t.equal(done.filter((d) => d.status === 'fulfilled').length, 10, 'all 10 agents after them got in');
    t.ok(ms < 4000, `before the silent ones timed out (${ms.toFixed(0)} ms; their handshake timeout is 5 s)`);
    t.ok(silent.every((s) => !s.destroyed), 'the silent ones were still connected meanwhile');
  });

  await t.test('a connection that waited too long is closed unserved, and the next one gets in', async (t) => {
    const l = await listener(t, { handshakes: 1, slowMs: 1000, maxWaitMs: 300, handshakeTimeoutMs: 5000 });
    await new Promise<void>((resolve) => {
      const s = tcpConnect({ host: '127.0.0.1', port: l.port }, () => resolve());
      s.on('error', () => undefined);
      sockets.push(s);
    });
    const waited = await handshake(l.port, sockets).then(() => 'served', (err: Error) => err.message);
    t.match(waited, /closed before the handshake|ECONNRESET/, `the one that waited behind the silent client: ${waited}`);
    t.ok(await handshake(l.port, sockets), 'the next one is served');
  });

  await t.test('a call through it sees the agent\'s certificate; without one, none', async (t) => {
    const l = await listener(t, {});
    const ask = (creds: ReturnType<typeof credentials.createSsl>): Promise<string> => call(l.port, creds, 'whoami');
    t.equal(await ask(credentials.createSsl(Buffer.from(ca.pem), Buffer.from(agentKey), Buffer.from(agentCert.pem))), 'h1', 'the agent\'s certificate names h1');
    t.equal(await ask(credentials.createSsl(Buffer.from(ca.pem))), 'nobody', 'without a certificate the handshake is done and the call sees none');
  });

  await t.test('an agent resumes its session at its next connect, on another replica too; a ticket from elsewhere is not taken', async (t) => {
    // Two replicas: their own listeners, the same CA files (so the same ticket keys), and, as
    // replicas are different processes started with their own --config, different command lines
    // (node's default TLS session context is a hash of it).
    const r1 = await listener(t, {});
    const argv = process.argv;
    process.argv = [...argv, '--config', 'r2.yaml'];
    const r2 = await listener(t, {}).finally(() => { process.argv = argv; });
    const creds = agentCredentials(agentCert.pem);
    t.equal(await call(r1.port, creds, 'peer'), 'h1', 'first connect: the agent is h1');
    t.same(creds.handshakes(), { resumed: 0, full: 1 }, 'by a full handshake');
    t.equal(await call(r1.port, creds, 'peer'), 'h1', 'next connect, same replica: still h1');
    t.equal(await call(r2.port, creds, 'peer'), 'h1', 'next connect, the other replica: still h1');
    t.same(creds.handshakes(), { resumed: 2, full: 1 }, 'both resumed the session (no certificate signed or checked)');
    // A listener whose ticket keys are not the CA's (another CA's, or made up): the ticket is not taken, the agent gets in by a full handshake.
    const other = await listener(t, {}, { ...serverTls, ticketKeys: randomBytes(48) });
    t.equal(await call(other.port, creds, 'peer'), 'h1', 'a listener with other ticket keys: still h1');
    t.same(creds.handshakes(), { resumed: 2, full: 2 }, 'by a full handshake');
  });

  await t.test('a resumed session does not outlive its certificate', async (t) => {
    const l = await listener(t, {});
    // A certificate with 2 s left (X.509 times are whole seconds).
    const short = ca.issueAgent('h1', publicKey, 2000);
    const creds = agentCredentials(short.pem);
    t.equal(await call(l.port, creds, 'peer'), 'h1', 'while valid: h1');
    await new Promise((r) => setTimeout(r, Math.max(0, short.notAfter.getTime() - Date.now()) + 1100));
    const after = await call(l.port, creds, 'peer');
    t.same(creds.handshakes(), { resumed: 1, full: 1 }, 'the second connect resumed the session of the now expired certificate');
    t.match(after, /^refused: .*certificate .* of host\/h1 expired at .*enroll the server again/, `and the call is refused, saying why: ${after}`);
  });
});
