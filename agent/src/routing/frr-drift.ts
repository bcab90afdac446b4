// What a hand edit of FRR changed, in words: frr-reload's --test output lists
// lines to delete and to add with their parent contexts ("router bgp 65101",
// " address-family ipv6 unicast") as bare lines; those are where a change
// is, not the change. A line is a change when no more indented line follows
// it. Pure.
import type { ReloadDiff } from './frr-apply.js';

interface Change {
  readonly line: string;
  readonly context: readonly string[];
}

const indent = (l: string): number => l.length - l.trimStart().length;

/** The leaf lines of one section, each with the contexts it sits in. */
function changes(lines: readonly string[], stripNo: boolean): Change[] {
  const out: Change[] = [];
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

const quote = (c: Change): string => `"${c.line}"${c.context.length > 0 ? ` (in ${c.context.join(' > ')})` : ''}`;

function list(items: readonly Change[], max = 4): string {
  const shown = items.slice(0, max).map(quote).join(', ');
  return items.length > max ? `${shown} and ${items.length - max} more` : shown;
}

/**
 * One sentence for a drift: what was added by hand (now taken out again) and
 * what was removed by hand (now put back). Empty diff: empty string.
 */
export function describeDrift(d: ReloadDiff): string {
  const added = changes(d.remove, true);
  const removed = changes(d.add, false);
  const parts: string[] = [];
  if (added.length > 0) parts.push(`added by hand and taken out again: ${list(added)}`);
  if (removed.length > 0) parts.push(`removed by hand and put back: ${list(removed)}`);
  return parts.join('; ');
}
