// A FirewallPolicy from its proto JSON form (the one-shot CLI's --policy FILE).
import { ProtoJsonError, parseProtoJson, readProtoJsonFile } from '../../../proto/json.js';
import { type FirewallPolicy, FirewallPolicySchema } from '../../../proto/gen/hostnet/v1/compiled_pb.js';
import { PolicyError } from './policy.js';

const asPolicyError = (err: unknown): unknown => (err instanceof ProtoJsonError ? new PolicyError(err.source, err.reason) : err);

/** Throws PolicyError naming the source and what is wrong. */
export function parsePolicyJson(text: string, source: string): FirewallPolicy {
  try {
    return parseProtoJson(FirewallPolicySchema, text, source);
  } catch (err) {
    throw asPolicyError(err);
  }
}

export async function readPolicyFile(path: string): Promise<FirewallPolicy> {
  return readProtoJsonFile(FirewallPolicySchema, path).catch((err: unknown) => { throw asPolicyError(err); });
}
