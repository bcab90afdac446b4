// A RoutingIntent from its proto JSON form (the one-shot CLI's --intent FILE).
import { ProtoJsonError, parseProtoJson, readProtoJsonFile } from '../../../proto/json.js';
import { type RoutingIntent, RoutingIntentSchema } from '../../../proto/gen/hostnet/v1/compiled_pb.js';
import { IntentError } from './intent.js';

const asIntentError = (err: unknown): unknown => (err instanceof ProtoJsonError ? new IntentError(err.source, err.reason) : err);

/** Throws IntentError naming the source and what is wrong. */
export function parseIntentJson(text: string, source: string): RoutingIntent {
  try {
    return parseProtoJson(RoutingIntentSchema, text, source);
  } catch (err) {
    throw asIntentError(err);
  }
}

export async function readIntentFile(path: string): Promise<RoutingIntent> {
  return readProtoJsonFile(RoutingIntentSchema, path).catch((err: unknown) => { throw asIntentError(err); });
}
