// hostnetctl's commands over an AdminService client: apply YAML documents,
// get (table or JSON), delete. Output goes through `out`; errors are
// HostnetErrors with the server's typed detail.
import { create, fromJson, toJson, type JsonValue, type Message } from '@bufbuild/protobuf';
import type { Metadata } from '@grpc/grpc-js';
import { parseAllDocuments } from 'yaml';
import { InputError, UsageError } from '../../../common/cli.js';
import { HostnetError } from '../../../proto/grpc/errors.js';
import { jsonProblem } from '../../../proto/json.js';
import { ApplyOutcome, type Resource, ResourceSchema } from '../../../proto/gen/hostnet/v1/admin_pb.js';
import { rolloutView } from '../rollout-view.js';
import { type AdminClient, KINDS, type KindInfo, kindByAlias, kindByName } from './kinds.js';

export interface CtlIo {
  out(text: string): void;
}

export interface Doc {
  readonly kind: KindInfo;
  readonly message: Message;
  readonly where: string;
}

/** Parses YAML documents (`kind:` plus the resource's proto JSON fields). Throws InputError naming the document and the field. */
export function parseDocuments(text: string, source: string): Doc[] {
  const docs = parseAllDocuments(text, { uniqueKeys: true });
  if (!Array.isArray(docs)) return [];
  const out: Doc[] = [];
  docs.forEach((d, i) => {
    const where = `${source} document ${i + 1}`;
    const yamlError = d.errors[0];
    if (yamlError) throw new InputError(`${where}: ${yamlError.message.split('\n')[0] ?? 'YAML error'}`);
    let value: unknown;
    try {
      // Aliases are expanded here; a document that expands beyond reason (an alias bomb) is refused.
      value = d.toJS({ maxAliasCount: 100 });
    } catch (err) {
      throw new InputError(`${where}: ${(err as Error).message.split('\n')[0] ?? 'cannot read'}`);
    }
    if (value === null || value === undefined) return;
    if (typeof value !== 'object' || Array.isArray(value)) throw new InputError(`${where}: must be a mapping with a kind`);
    const { kind: kindName, ...fields } = value as Record<string, unknown>;
    const kind = typeof kindName === 'string' ? kindByName(kindName) : undefined;
    if (!kind) throw new InputError(`${where}: kind must be one of ${KINDS.map((k) => k.name).join(', ')}`);
    const problem = jsonProblem(kind.schema, fields);
    if (problem) throw new InputError(`${where}: ${problem}`);
    try {
      out.push({ kind, message: fromJson(kind.schema, fields as JsonValue), where });
    } catch (err) {
      throw new InputError(`${where}: ${(err as Error).message.replace(/^cannot decode message [\w.]+ from JSON: /, '')}`);
    }
  });
  return out;
}

const OUTCOME: Record<number, string> = { [ApplyOutcome.CREATED]: 'created', [ApplyOutcome.UPDATED]: 'updated', [ApplyOutcome.UNCHANGED]: 'unchanged' };

/**
 * Creates or updates every document's resource in one transaction (all or
 * nothing); prints one line each. A document with a `revision` is stored only
 * if the resource has not changed since; `force` drops those preconditions.
 * A refusal is rethrown naming the document.
 */
export async function applyDocs(client: AdminClient, metadata: Metadata, docs: readonly Doc[], io: CtlIo, force = false): Promise<void> {
  if (docs.length === 0) return;
  const resources = docs.map((d) => create(ResourceSchema, {
    kind: { case: d.kind.oneof, value: force ? { ...d.message, revision: 0n } : d.message } as Resource['kind'],
  }));
  let response;
  try {
    response = await client.apply({ resources }, { metadata });
  } catch (err) {
    const e = HostnetError.from(err);
    const m = /^resources\[(\d+)\]\.(.*)$/.exec(e.detail.field);
    const doc = m ? docs[Number(m[1])] : undefined;
    if (!m || !doc) throw e;
    const field = m[2] ?? '';
    const message = e.detail.message.replace(`resources[${m[1]}].`, '');
    throw new HostnetError(e.code, { ...e.detail, field, message: `${doc.where}: ${message.includes(field) ? '' : `${field}: `}${message}` }, { cause: err });
  }
  response.results.forEach((r, i) => {
    const d = docs[i];
    const value = r.value?.kind.value;
    if (d && value) io.out(`${d.kind.name.toLowerCase()}/${d.kind.keyOf(value)} ${OUTCOME[r.outcome] ?? 'applied'}\n`);
  });
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

/** One line for a server error: the field, the message, and what still refers to the resource. */
export function describeError(err: HostnetError): string {
  const { field, message, referencedBy } = err.detail;
  const text = message || err.message;
  const refs = referencedBy.length > 0 && !referencedBy.every((r) => text.includes(r)) ? ` (referenced by ${referencedBy.join(', ')})` : '';
  return `${field && !text.includes(field) ? `${field}: ` : ''}${text}${refs}`;
}

/** The rollout table: per host, what it should have, was sent, applied, and a refusal. */
export async function showRollout(client: AdminClient, metadata: Metadata, json: boolean, io: CtlIo): Promise<void> {
  const r = await client.getRollout({}, { metadata });
  if (json) {
    io.out(`${JSON.stringify(r.hosts.map(rolloutView), null, 2)}\n`);
    return;
  }
  const rows = [['HOST', 'CONNECTED', 'DESIRED', 'SENT', 'APPLIED', 'NACK'], ...r.hosts.map((h) => [
    h.hostId, h.connected ? 'yes' : 'no', h.desiredVersion || '-', h.sentVersion || '-', h.appliedVersion || '-',
    h.nackedVersion ? `${h.nackedVersion}: ${h.nackError?.message ?? ''}` : '-',
  ])];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  io.out(`${rows.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n')}\n`);
}
