// What the kernel holds (as last applied) versus what the model wants, as
// the smallest transaction: nothing; set elements only (sent over netlink,
// which needs no ruleset read); or an nft text transaction that flushes and
// refills only the chains that changed and adds/removes only changed sets
// and elements. Pure.
import type { Family } from '../../../common/prefix.js';
import { FAMILY, type FirewallModel, type NamedSet, TABLE, namedSets } from './model.js';
import type { Addr } from './prefix-set.js';
import { ACL_CHAIN, INPUT_CHAIN, type Line, aclLines, elementChunks, inputLines, setType, sortedAddrs } from './render.js';

/**
 * What was applied: the chains' lines and the model's sets. The element sets
 * are the model's own: after a successful apply they hold exactly what the
 * kernel holds.
 */
export interface AppliedState {
  readonly version: string;
  readonly input: readonly Line[];
  readonly acl: readonly Line[];
  readonly sets: ReadonlyMap<string, NamedSet>;
}

export interface ElementChange {
  readonly set: string;
  readonly family: Family;
  readonly add: readonly Addr[];
  readonly remove: readonly Addr[];
}

/** Known element changes by set name (deltas change sets in place and know what changed). */
export type KnownChanges = ReadonlyMap<string, { readonly add: readonly Addr[]; readonly remove: readonly Addr[] }>;

export type Transaction =
  | { readonly kind: 'none' }
  | { readonly kind: 'elements'; readonly changes: readonly ElementChange[] }
  | { readonly kind: 'nft'; readonly lines: readonly Line[] };

export function snapshot(model: FirewallModel): AppliedState {
  return { version: model.version, input: inputLines(model), acl: aclLines(model), sets: namedSets(model) };
}

const sameLines = (a: readonly Line[], b: readonly Line[]): boolean =>
  a.length === b.length && a.every((l, i) => l.text === b[i]?.text);

function setDiff(have: ReadonlySet<Addr>, want: ReadonlySet<Addr>): { add: Addr[]; remove: Addr[] } {
  if (have === want) return { add: [], remove: [] };
  const add: Addr[] = [];
  const remove: Addr[] = [];
  for (const a of want) if (!have.has(a)) add.push(a);
  for (const a of have) if (!want.has(a)) remove.push(a);
  return { add, remove };
}

/** The transaction taking the kernel from `applied` to `desired`. */
export function diff(applied: AppliedState, desired: AppliedState, known: KnownChanges = new Map()): Transaction {
  const inputChanged = !sameLines(applied.input, desired.input);
  const removedSets = [...applied.sets.keys()].filter((n) => !desired.sets.has(n));
  const addedSets = [...desired.sets.keys()].filter((n) => !applied.sets.has(n));
  // Removing a set means its rules go first, so the chains referring to sets are rewritten too.
  const aclChanged = !sameLines(applied.acl, desired.acl) || removedSets.length > 0;
  const inputRewritten = inputChanged || removedSets.some((n) => n.startsWith('mgmt'));

  const changes: ElementChange[] = [];
  for (const [name, want] of desired.sets) {
    const have = applied.sets.get(name);
    if (!have) continue;
    const d = known.get(name) ?? setDiff(have.elements, want.elements);
    if (d.add.length > 0 || d.remove.length > 0) changes.push({ set: name, family: want.family, add: d.add, remove: d.remove });
  }
  if (!inputRewritten && !aclChanged && addedSets.length === 0) {
    return changes.length === 0 ? { kind: 'none' } : { kind: 'elements', changes };
  }

  const t = `${FAMILY} ${TABLE}`;
  const lines: Line[] = [];
  if (aclChanged) lines.push({ text: `flush chain ${t} ${ACL_CHAIN}`, origin: 'base' });
  if (inputRewritten) lines.push({ text: `flush chain ${t} ${INPUT_CHAIN}`, origin: 'base' });
  for (const name of removedSets) lines.push({ text: `delete set ${t} ${name}`, origin: applied.sets.get(name)?.origin ?? '' });
  for (const name of addedSets) {
    const s = desired.sets.get(name);
    if (!s) continue;
    lines.push({ text: `add set ${t} ${name} { type ${setType(s.family)}; }`, origin: s.origin });
    for (const chunk of elementChunks(s.family, sortedAddrs(s.family, s.elements))) {
      lines.push({ text: `add element ${t} ${name} { ${chunk} }`, origin: s.origin });
    }
  }
  for (const c of changes) {
    const origin = desired.sets.get(c.set)?.origin ?? '';
    for (const chunk of elementChunks(c.family, c.remove)) lines.push({ text: `delete element ${t} ${c.set} { ${chunk} }`, origin });
    for (const chunk of elementChunks(c.family, c.add)) lines.push({ text: `add element ${t} ${c.set} { ${chunk} }`, origin });
  }
  if (inputRewritten) for (const l of desired.input) lines.push({ text: `add rule ${t} ${INPUT_CHAIN} ${l.text}`, origin: l.origin });
  if (aclChanged) for (const l of desired.acl) lines.push({ text: `add rule ${t} ${ACL_CHAIN} ${l.text}`, origin: l.origin });
  return { kind: 'nft', lines };
}
