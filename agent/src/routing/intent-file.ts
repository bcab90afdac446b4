// Reading a RoutingIntent from its proto JSON form (the one-shot CLI's
// --intent FILE). Unknown fields are rejected.
import { readFile } from 'node:fs/promises';
import { fromJson, type JsonValue } from '@bufbuild/protobuf';
import { type RoutingIntent, RoutingIntentSchema } from '../../../proto/gen/hostnet/v1/compiled_pb.js';
import { IntentError } from './intent.js';

export function parseIntentJson(text: string, source: string): RoutingIntent {
  let json: JsonValue;
  try {
    json = JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new IntentError(source, `not valid JSON: ${(err as Error).message}`);
  }
  try {
    return fromJson(RoutingIntentSchema, json);
  } catch (err) {
    throw new IntentError(source, (err as Error).message.replace(/^cannot decode message hostnet\.v1\.RoutingIntent from JSON: /, ''));
  }
}

export async function readIntentFile(path: string): Promise<RoutingIntent> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new IntentError(path, `cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return parseIntentJson(text, path);
}
