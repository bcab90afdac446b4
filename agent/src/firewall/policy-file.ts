// Reading a FirewallPolicy from its proto JSON form (the one-shot CLI's
// --policy FILE). Unknown fields are rejected, as protobuf-es does by default.
import { readFile } from 'node:fs/promises';
import { fromJson, type JsonValue } from '@bufbuild/protobuf';
import { type FirewallPolicy, FirewallPolicySchema } from '../../../proto/gen/hostnet/v1/compiled_pb.js';
import { PolicyError } from './policy.js';

/** Parses proto-JSON text; throws PolicyError naming the file and what is wrong. */
export function parsePolicyJson(text: string, source: string): FirewallPolicy {
  let json: JsonValue;
  try {
    json = JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new PolicyError(source, `not valid JSON: ${(err as Error).message}`);
  }
  try {
    return fromJson(FirewallPolicySchema, json);
  } catch (err) {
    throw new PolicyError(source, (err as Error).message.replace(/^cannot decode message hostnet\.v1\.FirewallPolicy from JSON: /, ''));
  }
}

export async function readPolicyFile(path: string): Promise<FirewallPolicy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new PolicyError(path, `cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return parsePolicyJson(text, path);
}
