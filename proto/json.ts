// Reading messages from their proto JSON form (the agent's one-shot
// --policy/--intent files). Unknown fields are rejected; every error names
// the source and says what is wrong.
import { readFile } from 'node:fs/promises';
import { type DescEnum, type DescMessage, type JsonValue, type MessageShape, ScalarType, fromJson } from '@bufbuild/protobuf';

export class ProtoJsonError extends Error {
  override readonly name = 'ProtoJsonError';
  constructor(readonly source: string, readonly reason: string) {
    super(`${source}: ${reason}`);
  }
}

/** Parses proto JSON text into a message of `schema`. Throws ProtoJsonError. */
export function parseProtoJson<D extends DescMessage>(schema: D, text: string, source: string): MessageShape<D> {
  let json: JsonValue;
  try {
    json = JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new ProtoJsonError(source, `not valid JSON: ${(err as Error).message}`);
  }
  const problem = jsonProblem(schema, json);
  if (problem) throw new ProtoJsonError(source, problem);
  try {
    return fromJson(schema, json);
  } catch (err) {
    throw new ProtoJsonError(source, (err as Error).message.replace(/^cannot decode message [\w.]+ from JSON: /, ''));
  }
}

/** Reads and parses a proto JSON file. Throws ProtoJsonError (also for a file that cannot be read). */
export async function readProtoJsonFile<D extends DescMessage>(schema: D, path: string): Promise<MessageShape<D>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ProtoJsonError(path, `cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return parseProtoJson(schema, text, path);
}

/**
 * The first thing in `json` that is not a `schema` message, as "path: what"
 * (e.g. `rules[0].sourc: unknown key (one of id, action, ...)`), or undefined.
 * fromJson's own errors do not say where in a nested document they are;
 * this does, for unknown keys, enum values and value types. Pure.
 */
export function jsonProblem(schema: DescMessage, json: unknown, path = ''): string | undefined {
  const at = (key: string): string => (path ? `${path}.${key}` : key);
  if (schema.typeName.startsWith('google.protobuf.')) return undefined;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return `${path || 'document'}: must be a mapping of ${schema.name} fields`;
  for (const [key, value] of Object.entries(json)) {
    const field = schema.fields.find((f) => f.jsonName === key || f.name === key);
    if (!field) return `${at(key)}: unknown key (one of ${schema.fields.map((f) => f.jsonName).join(', ')})`;
    if (value === null) continue;
    if (field.fieldKind === 'list') {
      if (!Array.isArray(value)) return `${at(key)}: must be a list`;
      for (let i = 0; i < value.length; i++) {
        const p = `${at(key)}[${i}]`;
        const problem = field.listKind === 'message' ? jsonProblem(field.message, value[i], p)
          : field.listKind === 'enum' ? enumProblem(field.enum, value[i], p) : scalarProblem(field.scalar, value[i], p);
        if (problem) return problem;
      }
      continue;
    }
    const problem = field.fieldKind === 'message' ? jsonProblem(field.message, value, at(key))
      : field.fieldKind === 'enum' ? enumProblem(field.enum, value, at(key))
        : field.fieldKind === 'scalar' ? scalarProblem(field.scalar, value, at(key)) : undefined;
    if (problem) return problem;
  }
  return undefined;
}

function enumProblem(e: DescEnum, value: unknown, path: string): string | undefined {
  const names = e.values.map((v) => v.name).filter((n) => !n.endsWith('_UNSPECIFIED'));
  const ok = typeof value === 'string' ? e.values.some((v) => v.name === value) : typeof value === 'number' && e.values.some((v) => v.number === value);
  return ok ? undefined : `${path}: ${JSON.stringify(value)} is not one of ${names.join(', ')}`;
}

function scalarProblem(type: ScalarType, value: unknown, path: string): string | undefined {
  switch (type) {
    case ScalarType.STRING: return typeof value === 'string' ? undefined : `${path}: must be a string`;
    case ScalarType.BOOL: return typeof value === 'boolean' ? undefined : `${path}: must be true or false`;
    case ScalarType.BYTES: return typeof value === 'string' ? undefined : `${path}: must be base64 text`;
    default: {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      return typeof n === 'number' && Number.isFinite(n) ? undefined : `${path}: must be a number`;
    }
  }
}
