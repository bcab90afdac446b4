// What a hand edit of FRR changed, in words. Two sources: FRR's running
// configuration as it printed it right after our last apply, compared with
// how it prints it now (cheap: one vtysh call, and what a repair is checked
// against); and frr-reload's --test output, which lists lines to delete and
// to add with their parent contexts ("router bgp 65101", " address-family
// ipv6 unicast") as bare lines. Pure.
import type { ReloadDiff } from './frr-apply.js';

/** One configuration line with the blocks it sits in. */
export interface ConfigLine {
  readonly line: string;
  readonly context: readonly string[];
}

const indent = (l: string): number => l.length - l.trimStart().length;
/** Block ends and separators: not configuration of their own. */
const NOT_A_LINE = /^(!.*|exit|exit-address-family|exit-vrf|end|)$/;

/** The leaf lines of one frr-reload section, each with the contexts it sits in. */
function reloadLines(lines: readonly string[], stripNo: boolean): ConfigLine[] {
  const out: ConfigLine[] = [];
  const stack: { text: string; depth: number }[] = [];
  lines.forEach((raw, i) => {
    const depth = indent(raw);
    while (stack.length > 0 && (stack.at(-1)?.depth ?? 0) >= depth) stack.pop();
    const next = lines[i + 1];
    const text = raw.trim();
    if (next !== undefined && indent(next) > depth) {
      stack.push({ text, depth });
      return;
    }
    out.push({ line: stripNo ? text.replace(/^no /, '') : text, context: stack.map((s) => s.text) });
  });
  return out;
}

/**
 * Every line of a running configuration (as `show running-config` prints it)
 * with its blocks: block headers are lines of their own too, so a whole block
 * added by hand shows as its header.
 */
export function runningLines(text: string): ConfigLine[] {
  const out: ConfigLine[] = [];
  const stack: { text: string; depth: number }[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const text = raw.trim();
    const depth = indent(raw);
    while (stack.length > 0 && (stack.at(-1)?.depth ?? 0) >= depth) stack.pop();
    if (NOT_A_LINE.test(text)) return;
    out.push({ line: text, context: stack.map((s) => s.text) });
    // A header: what follows is indented deeper, or it is a top-level block closed by "exit".
    const next = lines[i + 1] ?? '';
    if (indent(next) > depth || (depth === 0 && next.trim() === 'exit')) stack.push({ text, depth });
  });
  return out;
}

const key = (c: ConfigLine): string => [...c.context, c.line].join('\n');

/** What is in `after` and not in `before` (added), and the reverse (removed); lines inside an added or removed block are the block. */
export function runningChange(before: string, after: string): { added: ConfigLine[]; removed: ConfigLine[] } {
  const b = runningLines(before);
  const a = runningLines(after);
  const bk = new Set(b.map(key));
  const ak = new Set(a.map(key));
  const only = (xs: ConfigLine[], other: Set<string>): ConfigLine[] => {
    const picked = xs.filter((x) => !other.has(key(x)));
    const heads = new Set(picked.map(key));
    return picked.filter((x) => !x.context.some((_, i) => heads.has(x.context.slice(0, i + 1).join('\n'))));
  };
  return { added: only(a, bk), removed: only(b, ak) };
}

/**
 * The vtysh commands that undo a hand edit that only removed lines, from the
 * configuration they were removed from (`before`, as FRR printed it): for
 * each line, its blocks entered, the line, `end`. Undefined when lines were
 * added too, or one removed is a block with lines of its own (frr-reload
 * undoes those).
 */
export function putBackCommands(change: { added: readonly ConfigLine[]; removed: readonly ConfigLine[] }, before: string): string[] | undefined {
  const { added, removed } = change;
  const blocks = new Set(runningLines(before).filter((c) => c.context.length > 0).map((c) => c.context.join('\n')));
  if (added.length > 0 || removed.length === 0 || removed.some((r) => blocks.has(key(r)))) return undefined;
  return removed.flatMap((r) => ['configure terminal', ...r.context, r.line, 'end']);
}

const quote = (c: ConfigLine): string => `"${c.line}"${c.context.length > 0 ? ` (in ${c.context.join(' > ')})` : ''}`;

function list(items: readonly ConfigLine[], max = 4): string {
  const shown = items.slice(0, max).map(quote).join(', ');
  return items.length > max ? `${shown} and ${items.length - max} more` : shown;
}

/** One sentence: what was added (now taken out again) and what was removed (now put back). */
export function describeChange(added: readonly ConfigLine[], removed: readonly ConfigLine[], verb: { added: string; removed: string }): string {
  const parts: string[] = [];
  if (added.length > 0) parts.push(`${verb.added}: ${list(added)}`);
  if (removed.length > 0) parts.push(`${verb.removed}: ${list(removed)}`);
  return parts.join('; ');
}

/** The sentence for a frr-reload --test diff: lines to delete were added by hand, lines to add were removed. */
export function describeDrift(d: ReloadDiff): string {
  return describeChange(reloadLines(d.remove, true), reloadLines(d.add, false),
    { added: 'added by hand and taken out again', removed: 'removed by hand and put back' });
}
