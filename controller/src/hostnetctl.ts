#!/usr/bin/env node
// hostnetctl: the operator CLI over AdminService. Composition root: builds
// the gRPC client; the commands live in ctl/.
import { readFile } from 'node:fs/promises';
import { type ChannelCredentials, Metadata, status as Status, credentials } from '@grpc/grpc-js';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { type Cli, InputError, type OptionValues, UsageError, requireString, runCli } from '../../common/cli.js';
import { VERSION } from '../../common/version.js';
import { HostnetError, createClient } from '../../proto/grpc/index.js';
import { AdminService } from '../../proto/gen/hostnet/v1/admin_pb.js';
import { applyDocs, deleteResource, describeError, getResources, parseDocuments, showRollout } from './ctl/commands.js';
import type { AdminClient } from './ctl/kinds.js';
import { serversOf } from './ctl/servers.js';

const conn = { server: { type: 'string', multiple: true }, token: { type: 'string' }, ca: { type: 'string' } } as const;
const io = { out: (t: string) => process.stdout.write(t) };

/** Credentials and metadata from --token/HOSTNET_TOKEN and --ca/HOSTNET_CA (TLS when a CA is given). */
async function credentialsOf(values: OptionValues): Promise<{ creds: ChannelCredentials; metadata: Metadata }> {
  const token = (values.token as string | undefined) ?? process.env.HOSTNET_TOKEN;
  if (!token) throw new UsageError('a token is needed: --token TOKEN or HOSTNET_TOKEN');
  const caFile = (values.ca as string | undefined) ?? process.env.HOSTNET_CA;
  const creds = caFile ? credentials.createSsl(await readFile(caFile)) : credentials.createInsecure();
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return { creds, metadata };
}

/**
 * Runs a command against the controller: the first replica that answers.
 * A replica that cannot be reached, or that cannot reach the store, hands
 * over to the next one, for reads and for what is safe to repeat (apply);
 * a delete moves on only when the replica was never reached. Server errors
 * become one line and exit 1.
 */
async function withClient(values: OptionValues, fn: (c: AdminClient, m: Metadata) => Promise<void>, repeatable = true): Promise<number> {
  const servers = serversOf(values, process.env.HOSTNET_SERVER);
  const { creds, metadata } = await credentialsOf(values);
  const failures: string[] = [];
  for (const [i, server] of servers.entries()) {
    const client = createClient(AdminService, server, creds);
    try {
      await fn(client, metadata);
      return 0;
    } catch (err) {
      if (!(err instanceof HostnetError)) throw err;
      const reached = err.detail.reason !== '';
      if (err.code === Status.UNAVAILABLE && i < servers.length - 1 && (repeatable || !reached)) {
        failures.push(`${server}: ${err.message}`);
        continue;
      }
      const what = err.code === Status.UNAVAILABLE ? `cannot reach the controller: ${[...failures, `${server}: ${err.message}`].join('; ')}` : `${Status[err.code]}: ${describeError(err)}`;
      process.stderr.write(`hostnetctl: ${what}\n`);
      return 1;
    } finally {
      client.close();
    }
  }
  return 1;
}

/** "90s", "15m", "2h" as seconds; a UsageError naming --ttl otherwise. */
function durationSeconds(text: string): number {
  const m = /^(\d+)(s|m|h)$/.exec(text);
  if (!m?.[1] || !m[2]) throw new UsageError(`--ttl "${text}" is not a duration like 90s, 15m or 2h`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'];
}

const cli: Cli = {
  name: 'hostnetctl',
  version: VERSION,
  summary: 'change and inspect hostnet intent through the controller\'s admin API',
  commands: [
    {
      name: 'apply',
      summary: 'create or update the resources of a YAML file in one transaction (documents with kind: and proto JSON fields); '
        + 'a document with a revision is stored only if unchanged since, --force overwrites regardless',
      usage: '-f FILE [--force] [--server ADDR]... [--token TOKEN]', options: { ...conn, file: { type: 'string', short: 'f' }, force: { type: 'boolean' } },
      async run(values) {
        const file = requireString(values, 'file');
        const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => { throw new InputError(`cannot read ${file}: ${err.code ?? 'error'}`); });
        const docs = parseDocuments(text, file);
        return withClient(values, (c, m) => applyDocs(c, m, docs, io, values.force === true));
      },
    },
    {
      name: 'get', summary: 'list resources of a kind, or show one', usage: 'KIND [NAME] [-o json]',
      options: { ...conn, output: { type: 'string', short: 'o' } },
      run(values, positionals) {
        const [kind, name] = positionals;
        if (!kind) throw new UsageError('KIND is required (tenants, subnets, catalogs, hosts, objects, acls, switches)');
        if (values.output !== undefined && values.output !== 'json') throw new UsageError('-o takes only json');
        return withClient(values, (c, m) => getResources(c, m, kind, name, values.output === 'json', io));
      },
    },
    {
      name: 'delete', summary: 'delete one resource', usage: 'KIND NAME', options: conn,
      run(values, positionals) {
        const [kind, name] = positionals;
        if (!kind || !name) throw new UsageError('KIND and NAME are required');
        return withClient(values, (c, m) => deleteResource(c, m, kind, name, io), false);
      },
    },
    {
      name: 'enroll', summary: 'a one-time enrollment token for a host (operators): install-agent --enrollment-token takes it; it expires (--ttl, default the controller\'s)',
      usage: 'HOST [--ttl 1h] [-o json]', options: { ...conn, ttl: { type: 'string' }, output: { type: 'string', short: 'o' } },
      run(values, positionals) {
        const [host, extra] = positionals;
        if (!host || extra) throw new UsageError('exactly one HOST is required');
        if (values.output !== undefined && values.output !== 'json') throw new UsageError('-o takes only json');
        const ttlSeconds = values.ttl === undefined ? 0 : durationSeconds(values.ttl as string);
        return withClient(values, async (c, m) => {
          const r = await c.createEnrollment({ hostId: host, ttlSeconds }, { metadata: m });
          const expiresAt = r.expiresAt ? timestampDate(r.expiresAt).toISOString() : '';
          io.out(values.output === 'json'
            ? `${JSON.stringify({ host, token: r.token, expiresAt, caFingerprint: r.caFingerprint })}\n`
            : `token: ${r.token}\nexpires: ${expiresAt}\nca-fingerprint: ${r.caFingerprint}\n`
              + `on the server: install-agent --host-id ${host} --enrollment-token ${r.token} --ca-fingerprint ${r.caFingerprint} --controller ADDR ...\n`);
        }, false);
      },
    },
    {
      name: 'tor', summary: 'a switch\'s BGP configuration as the controller compiles it (frr.conf), for switches other tooling configures (operators)',
      usage: 'config SWITCH', options: conn,
      run(values, positionals) {
        const [what, name, extra] = positionals;
        if (what !== 'config' || !name || extra) throw new UsageError('usage: tor config SWITCH');
        return withClient(values, async (c, m) => { io.out((await c.getSwitchConfig({ name }, { metadata: m })).frrConf); });
      },
    },
    {
      name: 'rollout', summary: 'per host: version desired, sent, applied, and the agent\'s error for a refused one', usage: '[-o json]',
      options: { ...conn, output: { type: 'string', short: 'o' } },
      run(values) {
        if (values.output !== undefined && values.output !== 'json') throw new UsageError('-o takes only json');
        return withClient(values, (c, m) => showRollout(c, m, values.output === 'json', io));
      },
    },
  ],
};

process.exitCode = await runCli(cli, process.argv.slice(2));
