// What the kernel holds (as last applied) versus what the model wants, as
// the smallest transaction: nothing; set elements only (sent over netlink,
// which needs no ruleset read); or an nft text transaction that flushes and
// refills only the chains that changed and adds/removes only changed sets
// and elements. Pure.
import type { Family } from '../../../common/prefix.js';
import type { Interval } from './intervals.js';
import { FAMILY, type FirewallModel, TABLE, namedSets } from './model.js';
import { ACL_CHAIN, INPUT_CHAIN, type Line, aclLines, elementChunks, inputLines, setOrigin } from './render.js';

/** A snapshot of what was applied: chain lines and each set's merged intervals. */
export interface AppliedState {
  readonly version: string;
  readonly input: readonly Line[];
  readonly acl: readonly Line[];
  readonly sets: ReadonlyMap<string, { readonly family: Family; readonly merged: readonly Interval[] }>;
}

export interface ElementChange {
  readonly set: string;
  readonly family: Family;
  readonly origin: string;
  readonly add: readonly Interval[];
  readonly remove: readonly Interval[];
}

export type Transaction =
  | { readonly kind: 'none' }
  | { readonly kind: 'elements'; readonly changes: readonly ElementChange[] }
  | { readonly kind: 'nft'; readonly lines: readonly Line[] };

/** The state the model describes, as a snapshot (the sets' merged arrays are never mutated in place). */
export function snapshot(model: FirewallModel): AppliedState {
  const sets = new Map<string, { family: Family; merged: readonly Interval[] }>();
  for (const [name, set] of namedSets(model)) sets.set(name, { family: set.family, merged: set.merged });
  return { version: model.version, input: inputLines(model), acl: aclLines(model), sets };
}

/** Interval-level difference of two sorted, merged lists. */
export function diffIntervals(
  before: readonly Interval[],
  after: readonly Interval[],
): { add: Interval[]; remove: Interval[] } {
  const add: Interval[] = [];
  const remove: Interval[] = [];
  if (before === after) return { add, remove };
  let i = 0;
  let j = 0;
  while (i < before.length || j < after.length) {
    const a = before[i];
    const b = after[j];
    if (a && b && a.start === b.start && a.end === b.end) { i++; j++; continue; }
    if (b === undefined || (a !== undefined && (a.start < b.start || (a.start === b.start && a.end < b.end)))) {
      remove.push(a as Interval);
      i++;
    } else {
      add.push(b);
      j++;
    }
  }
  return { add, remove };
}

const sameLines = (a: readonly Line[], b: readonly Line[]): boolean =>
  a.length === b.length && a.every((l, i) => l.text === b[i]?.text);

/** The transaction taking the kernel from `applied` to `desired`. */
export function diff(applied: AppliedState, desired: AppliedState): Transaction {
  const inputChanged = !sameLines(applied.input, desired.input);
  const removedSets = [...applied.sets.keys()].filter((n) => !desired.sets.has(n));
  const addedSets = [...desired.sets.keys()].filter((n) => !applied.sets.has(n));
  // Removing a set means its rules go first, so the ACL chain is rewritten too.
  const aclChanged = !sameLines(applied.acl, desired.acl) || removedSets.length > 0;

  const changes: ElementChange[] = [];
  for (const [name, want] of desired.sets) {
    const have = applied.sets.get(name);
    if (!have) continue;
    const d = diffIntervals(have.merged, want.merged);
    if (d.add.length > 0 || d.remove.length > 0) {
      changes.push({ set: name, family: want.family, origin: `set ${name}`, add: d.add, remove: d.remove });
    }
  }
  if (!inputChanged && !aclChanged && addedSets.length === 0) {
    return changes.length === 0 ? { kind: 'none' } : { kind: 'elements', changes };
  }

  const t = `${FAMILY} ${TABLE}`;
  const lines: Line[] = [];
  if (aclChanged) lines.push({ text: `flush chain ${t} ${ACL_CHAIN}`, origin: 'base' });
  if (inputChanged) lines.push({ text: `flush chain ${t} ${INPUT_CHAIN}`, origin: 'base' });
  for (const name of removedSets) lines.push({ text: `delete set ${t} ${name}`, origin: `set ${name}` });
  for (const name of addedSets) {
    const s = desired.sets.get(name);
    if (!s) continue;
    lines.push({ text: `add set ${t} ${name} { type ${s.family === 4 ? 'ipv4_addr' : 'ipv6_addr'}; flags interval; }`, origin: `set ${name}` });
    for (const chunk of elementChunks(s.family, s.merged)) lines.push({ text: `add element ${t} ${name} { ${chunk} }`, origin: `set ${name}` });
  }
  for (const c of changes) {
    for (const chunk of elementChunks(c.family, c.remove)) lines.push({ text: `delete element ${t} ${c.set} { ${chunk} }`, origin: c.origin });
    for (const chunk of elementChunks(c.family, c.add)) lines.push({ text: `add element ${t} ${c.set} { ${chunk} }`, origin: c.origin });
  }
  if (inputChanged) for (const l of desired.input) lines.push({ text: `add rule ${t} ${INPUT_CHAIN} ${l.text}`, origin: l.origin });
  if (aclChanged) for (const l of desired.acl) lines.push({ text: `add rule ${t} ${ACL_CHAIN} ${l.text}`, origin: l.origin });
  return { kind: 'nft', lines };
}

/** Names the set's owner for error messages, e.g. "object web". */
export function describeSet(model: FirewallModel, name: string): string {
  return setOrigin(model, name);
}
