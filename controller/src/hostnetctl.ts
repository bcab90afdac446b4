#!/usr/bin/env node
// hostnetctl: the operator CLI over AdminService. Composition root: builds
// the gRPC client; the commands live in ctl/.
import { readFile } from 'node:fs/promises';
import { Metadata, status as Status, credentials } from '@grpc/grpc-js';
import { type Cli, InputError, UsageError, requireString, runCli } from '../../common/cli.js';
import { VERSION } from '../../common/version.js';
import { HostnetError, createClient } from '../../proto/grpc/index.js';
import { AdminService } from '../../proto/gen/hostnet/v1/admin_pb.js';
import { applyDocs, deleteResource, describeError, getResources, parseDocuments, showRollout } from './ctl/commands.js';
import type { AdminClient } from './ctl/kinds.js';

const conn = { server: { type: 'string' }, token: { type: 'string' }, ca: { type: 'string' } } as const;
const io = { out: (t: string) => process.stdout.write(t) };

/** Connects with --server/HOSTNET_SERVER, --token/HOSTNET_TOKEN, --ca/HOSTNET_CA (TLS when a CA is given). */
async function connect(values: Record<string, string | boolean | undefined>): Promise<{ client: AdminClient; metadata: Metadata }> {
  const server = (values.server as string | undefined) ?? process.env.HOSTNET_SERVER ?? '127.0.0.1:7443';
  const token = (values.token as string | undefined) ?? process.env.HOSTNET_TOKEN;
  if (!token) throw new UsageError('a token is needed: --token TOKEN or HOSTNET_TOKEN');
  const caFile = (values.ca as string | undefined) ?? process.env.HOSTNET_CA;
  const creds = caFile ? credentials.createSsl(await readFile(caFile)) : credentials.createInsecure();
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return { client: createClient(AdminService, server, creds), metadata };
}

/** Runs a command against the controller; server errors become one line and exit 1. */
async function withClient(values: Record<string, string | boolean | undefined>, fn: (c: AdminClient, m: Metadata) => Promise<void>): Promise<number> {
  const { client, metadata } = await connect(values);
  try {
    await fn(client, metadata);
    return 0;
  } catch (err) {
    if (err instanceof HostnetError) {
      const what = err.code === Status.UNAVAILABLE ? `cannot reach the controller: ${err.message}` : `${Status[err.code]}: ${describeError(err)}`;
      process.stderr.write(`hostnetctl: ${what}\n`);
      return 1;
    }
    throw err;
  } finally {
    client.close();
  }
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
      usage: '-f FILE [--force] [--server ADDR] [--token TOKEN]', options: { ...conn, file: { type: 'string', short: 'f' }, force: { type: 'boolean' } },
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
        if (!kind) throw new UsageError('KIND is required (tenants, subnets, catalogs, hosts, objects, acls)');
        if (values.output !== undefined && values.output !== 'json') throw new UsageError('-o takes only json');
        return withClient(values, (c, m) => getResources(c, m, kind, name, values.output === 'json', io));
      },
    },
    {
      name: 'delete', summary: 'delete one resource', usage: 'KIND NAME', options: conn,
      run(values, positionals) {
        const [kind, name] = positionals;
        if (!kind || !name) throw new UsageError('KIND and NAME are required');
        return withClient(values, (c, m) => deleteResource(c, m, kind, name, io));
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
