// hostnetctl's commands over an AdminService client: apply YAML documents,
// get (table or JSON), delete. Output goes through `out`; errors are
// HostnetErrors with the server's typed detail.
import { equals, fromJson, toJson, type JsonValue, type Message } from '@bufbuild/protobuf';
import type { Metadata } from '@grpc/grpc-js';
import { parseAllDocuments } from 'yaml';
import { UsageError } from '../../../common/cli.js';
import { type HostnetError, isNotFound } from '../../../proto/grpc/errors.js';
import { type AdminClient, KINDS, type KindInfo, kindByAlias, kindByName } from './kinds.js';

export interface CtlIo {
  out(text: string): void;
}

export interface Doc {
  readonly kind: KindInfo;
  readonly message: Message;
  readonly where: string;
}

/** Parses YAML documents (`kind:` plus the resource's proto JSON fields). Throws UsageError naming the document. */
export function parseDocuments(text: string, source: string): Doc[] {
  const docs = parseAllDocuments(text);
  const out: Doc[] = [];
  docs.forEach((d, i) => {
    const where = `${source} document ${i + 1}`;
    if (d.errors[0]) throw new UsageError(`${where}: ${d.errors[0].message.split('\n')[0] ?? 'YAML error'}`);
    const value = d.toJS() as unknown;
    if (value === null || value === undefined) return;
    if (typeof value !== 'object' || Array.isArray(value)) throw new UsageError(`${where}: must be a mapping with a kind`);
    const { kind: kindName, ...fields } = value as Record<string, unknown>;
    const kind = typeof kindName === 'string' ? kindByName(kindName) : undefined;
    if (!kind) throw new UsageError(`${where}: kind must be one of ${KINDS.map((k) => k.name).join(', ')}`);
    try {
      out.push({ kind, message: fromJson(kind.schema, fields as JsonValue), where });
    } catch (err) {
      throw new UsageError(`${where}: ${(err as Error).message.replace(/^cannot decode message [\w.]+ from JSON: /, '')}`);
    }
  });
  return out;
}

/** Creates or updates each document's resource, in order; prints one line each. Stops at the first error. */
export async function applyDocs(client: AdminClient, metadata: Metadata, docs: readonly Doc[], io: CtlIo): Promise<void> {
  for (const d of docs) {
    const key = d.kind.keyOf(d.message);
    const label = `${d.kind.name.toLowerCase()}/${key}`;
    const existing = await d.kind.get(client, key, { metadata }).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (!existing) {
      await d.kind.create(client, d.message, { metadata });
      io.out(`${label} created\n`);
    } else if (equals(d.kind.schema, existing, d.message)) {
      io.out(`${label} unchanged\n`);
    } else {
      await d.kind.update(client, d.message, { metadata });
      io.out(`${label} updated\n`);
    }
  }
}

function table(kind: KindInfo, items: readonly Message[]): string {
  const rows = [kind.columns.map(([h]) => h), ...items.map((m) => kind.columns.map(([, f]) => f(m)))];
  const widths = kind.columns.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd()).join('\n') + '\n';
}

export async function getResources(client: AdminClient, metadata: Metadata, kindAlias: string, name: string | undefined, json: boolean, io: CtlIo): Promise<void> {
  const kind = kindByAlias(kindAlias);
  if (!kind) throw new UsageError(`unknown kind "${kindAlias}"; one of ${KINDS.map((k) => k.aliases[1]).join(', ')}`);
  const items = name ? [await kind.get(client, name, { metadata })].filter((m): m is Message => m !== undefined) : await kind.list(client, { metadata });
  if (json) {
    const values = items.map((m) => ({ kind: kind.name, ...(toJson(kind.schema, m) as object) }));
    io.out(`${JSON.stringify(name ? values[0] : values, null, 2)}\n`);
  } else {
    io.out(table(kind, items));
  }
}

export async function deleteResource(client: AdminClient, metadata: Metadata, kindAlias: string, name: string, io: CtlIo): Promise<void> {
  const kind = kindByAlias(kindAlias);
  if (!kind) throw new UsageError(`unknown kind "${kindAlias}"`);
  await kind.delete(client, name, { metadata });
  io.out(`${kind.name.toLowerCase()}/${name} deleted\n`);
}

/** One line for a server error: the message, and what still refers to the resource. */
export function describeError(err: HostnetError): string {
  const refs = err.detail.referencedBy.length > 0 ? ` (referenced by ${err.detail.referencedBy.join(', ')})` : '';
  return `${err.detail.message || err.message}${refs}`;
}

/** The rollout table: per host, what it should have, was sent, applied, and a refusal. */
export async function showRollout(client: AdminClient, metadata: Metadata, json: boolean, io: CtlIo): Promise<void> {
  const r = await client.getRollout({}, { metadata });
  if (json) {
    io.out(`${JSON.stringify(r.hosts.map((h) => ({
      hostId: h.hostId, desiredVersion: h.desiredVersion, sentVersion: h.sentVersion, appliedVersion: h.appliedVersion,
      nackedVersion: h.nackedVersion || null, nackError: h.nackError?.message ?? null, connected: h.connected,
    })), null, 2)}\n`);
    return;
  }
  const rows = [['HOST', 'CONNECTED', 'DESIRED', 'SENT', 'APPLIED', 'NACK'], ...r.hosts.map((h) => [
    h.hostId, h.connected ? 'yes' : 'no', h.desiredVersion || '-', h.sentVersion || '-', h.appliedVersion || '-',
    h.nackedVersion ? `${h.nackedVersion}: ${h.nackError?.message ?? ''}` : '-',
  ])];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  io.out(`${rows.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n')}\n`);
}
