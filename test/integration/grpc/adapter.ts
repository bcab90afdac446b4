// The protobuf-es <-> grpc-js adapter against a real server on loopback:
// unary, bidi stream, fan-out of pre-encoded bytes, deadline, client cancel,
// typed errors (no internal message on the wire), oversized messages.
import t from 'tap';
import { Writable } from 'node:stream';
import { create } from '@bufbuild/protobuf';
import { Server, ServerCredentials, credentials, status as Status, type ServerDuplexStream } from '@grpc/grpc-js';
import { createLogger } from '../../../common/log.js';
import {
  AgentService,
  SyncRequestSchema,
  SyncResponseSchema,
  type SyncResponse,
} from '../../../proto/gen/hostnet/v1/agent_pb.js';
import {
  HostnetError,
  PreEncoded,
  addService,
  createClient,
  fanOut,
  invalidArgument,
  serviceDefinition,
  type Outgoing,
} from '../../../proto/grpc/index.js';

interface Harness {
  address: string;
  logLines: string[];
  seen: { aborted: string[]; handled: string[] };
  streams: ServerDuplexStream<unknown, Outgoing<typeof SyncResponseSchema>>[];
  server: Server;
}

async function startServer(maxReceive = 4 << 20): Promise<Harness> {
  const logLines: string[] = [];
  const log = createLogger({
    name: 'test',
    level: 'error',
    destination: new Writable({ write(chunk: Buffer, _e, cb) { logLines.push(chunk.toString()); cb(); } }),
  });
  const seen = { aborted: [] as string[], handled: [] as string[] };
  const streams: Harness['streams'] = [];
  const server = new Server({ 'grpc.max_receive_message_length': maxReceive });
  addService(server, AgentService, {
    async renew() { return {}; },
    async reportHealth(req, ctx) {
      const host = req.report?.hostId ?? '';
      seen.handled.push(host);
      if (host === 'bad') throw invalidArgument('report.host_id', 'must be a hostname');
      if (host === 'boom') throw new Error('secret: /etc/hostnet/token leaked at line 42');
      if (host === 'slow') {
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        seen.aborted.push(host);
      }
      return { heartbeatSeconds: 30 };
    },
    async sync(requests, stream, ctx) {
      streams.push(stream);
      ctx.signal.addEventListener('abort', () => seen.aborted.push('sync'), { once: true });
      for await (const msg of requests) {
        if (msg.message.case === 'hello') {
          if (msg.message.value.hostId === 'bad') throw invalidArgument('hello.host_id', 'unknown host');
          stream.write(create(SyncResponseSchema, {
            version: 'v1',
            update: { case: 'snapshot', value: { firewall: { version: 'fw1', hostId: msg.message.value.hostId } } },
          }));
        } else if (msg.message.case === 'ack') {
          seen.handled.push(`ack:${msg.message.value.version}`);
        }
      }
    },
  }, log);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return { address: `127.0.0.1:${port}`, logLines, seen, streams, server };
}

function firstMessage(stream: NodeJS.ReadableStream): Promise<SyncResponse> {
  return new Promise((resolve, reject) => {
    stream.once('data', resolve);
    stream.once('error', reject);
  });
}

function streamError(stream: NodeJS.ReadableStream): Promise<HostnetError> {
  return new Promise((resolve) => {
    stream.on('data', () => undefined);
    stream.once('error', (err) => resolve(HostnetError.from(err)));
  });
}

void t.test('adapter over a real loopback server', async (t) => {
  const h = await startServer();
  const client = createClient(AgentService, h.address, credentials.createInsecure());
  t.teardown(() => { client.close(); h.server.forceShutdown(); });

  void t.test('unary call', async (t) => {
    const res = await client.reportHealth({ report: { hostId: 'h1' } });
    t.equal(res.heartbeatSeconds, 30, 'the response arrives decoded');
  });

  void t.test('bidi stream: hello -> snapshot, ack reaches the server', async (t) => {
    const call = client.sync();
    call.write(create(SyncRequestSchema, { message: { case: 'hello', value: { hostId: 'h1' } } }));
    const res = await firstMessage(call);
    t.equal(res.update.case, 'snapshot');
    t.equal(res.update.case === 'snapshot' ? res.update.value.firewall?.hostId : '', 'h1', 'snapshot is for h1');
    call.write(create(SyncRequestSchema, { message: { case: 'ack', value: { version: 'v1' } } }));
    call.end();
    await new Promise((r) => call.on('status', r));
    t.ok(h.seen.handled.includes('ack:v1'), 'the server read the ack');
  });

  void t.test('fan-out: one encode, the same bytes on every stream', async (t) => {
    const before = h.streams.length;
    const calls = [0, 1, 2].map((i) => {
      const c = client.sync();
      c.write(create(SyncRequestSchema, { message: { case: 'hello', value: { hostId: `fan${i}` } } }));
      return c;
    });
    await Promise.all(calls.map(firstMessage));
    const update = create(SyncResponseSchema, {
      version: 'v2',
      update: { case: 'delta', value: { firewall: { baseVersion: 'fw1', version: 'fw2',
        objectChanges: [{ id: 'web', added: ['10.1.2.0/24'] }] } } },
    });
    const encoded = PreEncoded.encode(SyncResponseSchema, update);
    const got = Promise.all(calls.map(firstMessage));
    const result = fanOut(SyncResponseSchema, encoded, h.streams.slice(before));
    t.equal(result.written, 3, 'written to three streams');
    for (const res of await got) {
      t.equal(res.version, 'v2');
      t.same(res.update.case === 'delta' ? res.update.value.firewall?.objectChanges[0]?.added : [], ['10.1.2.0/24']);
    }
    const def = serviceDefinition(AgentService);
    t.equal(def.sync?.responseSerialize(encoded), encoded.bytes, 'the serialiser passes pre-encoded bytes through untouched');
    t.throws(() => def.reportHealth?.responseSerialize(encoded), /pre-encoded hostnet.v1.SyncResponse/,
      'pre-encoded bytes of another type are refused');
    for (const c of calls) c.end();
  });

  void t.test('deadline exceeded reaches both sides', async (t) => {
    const started = Date.now();
    const err = await client.reportHealth({ report: { hostId: 'slow' } }, { timeoutMs: 200 }).then(() => null, (e: unknown) => e);
    t.ok(err instanceof HostnetError, 'a HostnetError');
    t.equal((err as HostnetError).code, Status.DEADLINE_EXCEEDED);
    t.ok(Date.now() - started < 2000, 'fails near the deadline');
    await new Promise((r) => setTimeout(r, 100));
    t.ok(h.seen.aborted.includes('slow'), 'the handler\'s signal was aborted');
  });

  void t.test('client cancel aborts the server side', async (t) => {
    const controller = new AbortController();
    const call = client.sync({ signal: controller.signal });
    call.write(create(SyncRequestSchema, { message: { case: 'hello', value: { hostId: 'cancel-me' } } }));
    await firstMessage(call);
    const aborted = h.seen.aborted.length;
    const errP = streamError(call);
    controller.abort();
    t.equal((await errP).code, Status.CANCELLED, 'the client sees CANCELLED');
    await new Promise((r) => setTimeout(r, 200));
    t.ok(h.seen.aborted.length > aborted, 'the server handler saw the cancellation');
  });

  void t.test('typed errors: field named, nothing internal on the wire', async (t) => {
    const bad = await client.reportHealth({ report: { hostId: 'bad' } }).then(() => null, (e: unknown) => e as HostnetError);
    t.equal(bad?.code, Status.INVALID_ARGUMENT);
    t.equal(bad?.detail.reason, 'FIELD_INVALID');
    t.equal(bad?.detail.field, 'report.host_id', 'the detail names the field');

    const boom = await client.reportHealth({ report: { hostId: 'boom' } }).then(() => null, (e: unknown) => e as HostnetError);
    t.equal(boom?.code, Status.INTERNAL);
    t.equal(boom?.detail.reason, 'INTERNAL');
    t.match(boom?.detail.incidentId, /^[0-9a-f-]{36}$/, 'an incident id to look up');
    const wire = JSON.stringify({ message: boom?.message, detail: boom?.detail });
    t.notMatch(wire, /secret|token|line 42|Error:|at /, 'no internal message or stack crosses the wire');
    const logged = h.logLines.join('');
    t.match(logged, boom?.detail.incidentId ?? 'none', 'the server log has the incident id');
    t.match(logged, /secret: \/etc\/hostnet\/token/, 'and the real error');

    const call = client.sync();
    const errP = streamError(call);
    call.write(create(SyncRequestSchema, { message: { case: 'hello', value: { hostId: 'bad' } } }));
    const streamErr = await errP;
    t.equal(streamErr.code, Status.INVALID_ARGUMENT, 'a stream handler\'s error ends the stream with its code');
    t.equal(streamErr.detail.field, 'hello.host_id', 'and its typed detail');
  });
});

void t.test('oversized message is rejected before the handler runs', async (t) => {
  const h = await startServer(64 * 1024);
  const client = createClient(AgentService, h.address, credentials.createInsecure());
  t.teardown(() => { client.close(); h.server.forceShutdown(); });
  const huge = 'x'.repeat(100 * 1024);
  const err = await client.reportHealth({ report: { hostId: 'big', checks: [{ name: 'c', reason: huge }] } })
    .then(() => null, (e: unknown) => e as HostnetError);
  t.equal(err?.code, Status.RESOURCE_EXHAUSTED, 'RESOURCE_EXHAUSTED');
  t.notOk(h.seen.handled.includes('big'), 'the handler never saw it');
  const ok = await client.reportHealth({ report: { hostId: 'small' } });
  t.equal(ok.heartbeatSeconds, 30, 'the channel still works for normal messages');
});
