// Reading messages from their proto JSON form (the agent's one-shot
// --policy/--intent files). Unknown fields are rejected; every error names
// the source and says what is wrong.
import { readFile } from 'node:fs/promises';
import { type DescMessage, type JsonValue, type MessageShape, fromJson } from '@bufbuild/protobuf';

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
