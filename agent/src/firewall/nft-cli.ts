// The text seam of the firewall: `nft -f -` with our transaction on stdin.
// nft applies a file as one transaction, so a rejected file changes nothing;
// its complaint is traced back to the policy line that caused it.
import type { Runner } from '../../../common/run.js';
import type { Line } from './render.js';

export class NftRejectedError extends Error {
  override readonly name = 'NftRejectedError';
  constructor(
    /** What in the policy the failing line came from, e.g. "rule web-in". */
    readonly origin: string,
    /** nft's own message. */
    readonly nftMessage: string,
    /** 1-based line of the transaction, 0 when nft named none. */
    readonly line: number,
  ) {
    super(`${origin ? `${origin}: ` : ''}nft rejected the ruleset: ${nftMessage}`);
  }
}

const LOCATION = /^\/dev\/stdin:(\d+):\d+(?:-\d+)?: Error: (.*)$/m;

/** Parses nft's stderr into the first error's line and message. Pure. */
export function parseNftError(stderr: string): { line: number; message: string } {
  const m = LOCATION.exec(stderr);
  if (m?.[1] && m[2]) return { line: Number(m[1]), message: m[2].trim() };
  const plain = /Error: (.*)$/m.exec(stderr);
  return { line: 0, message: (plain?.[1] ?? stderr.trim().split('\n')[0] ?? 'unknown error').trim() };
}

export interface NftCli {
  /** Applies the lines as one transaction; throws NftRejectedError when nft refuses it. */
  apply(lines: readonly Line[]): Promise<void>;
  /** Checks the lines without applying (`nft -c`); throws NftRejectedError. */
  check(lines: readonly Line[]): Promise<void>;
  /** `nft list table inet hostnet` text, or undefined when the table does not exist. */
  listTable(): Promise<string | undefined>;
  /** The whole ruleset as `nft -j list ruleset` JSON. Throws when nft cannot list it. */
  listRuleset(): Promise<unknown>;
}

export function nftCli(run: Runner, nft = 'nft'): NftCli {
  async function feed(args: readonly string[], lines: readonly Line[]): Promise<void> {
    const text = `${lines.map((l) => l.text).join('\n')}\n`;
    const r = await run([nft, ...args, '-f', '-'], { stdin: text, allowFail: true, timeoutMs: 120_000 });
    if (r.code === 0) return;
    const { line, message } = parseNftError(r.stderr);
    throw new NftRejectedError(lines[line - 1]?.origin ?? '', message, line);
  }
  return {
    apply: (lines) => feed([], lines),
    check: (lines) => feed(['-c'], lines),
    async listTable() {
      const r = await run([nft, 'list', 'table', 'inet', 'hostnet'], { allowFail: true });
      return r.code === 0 ? r.stdout : undefined;
    },
    async listRuleset() {
      const r = await run([nft, '-j', 'list', 'ruleset'], { timeoutMs: 60_000 });
      return JSON.parse(r.stdout) as unknown;
    },
  };
}
