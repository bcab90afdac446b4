// Config loading for both daemons: YAML in, unknown keys rejected, then each
// daemon's compileConfig() turns the raw document into a readonly value with
// normalised units (milliseconds, canonical prefixes). Every error names the
// field it is about, e.g. "controller.addresses[1]: ...".
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { PrefixError, canonicalPrefix } from './prefix.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly field: string, readonly reason: string, options?: { cause?: unknown }) {
    super(field ? `${field}: ${reason}` : reason, options);
  }
}

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);


const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * One mapping of the config, read field by field. Each accessor marks its key
 * as known; done() throws for any key nobody asked for.
 */
export class Fields {
  private readonly seen = new Set<string>();

  private constructor(private readonly raw: Record<string, unknown>, readonly path: string) {}

  /** Wraps the document root; throws ConfigError unless it is a mapping (an empty document is {}). */
  static root(raw: unknown): Fields {
    if (raw === null || raw === undefined) return new Fields({}, '');
    if (!isMapping(raw)) throw new ConfigError('', 'the config must be a mapping of keys to values');
    return new Fields(raw, '');
  }

  field(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  private take(key: string): unknown {
    this.seen.add(key);
    return this.raw[key];
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  string(key: string, opts: { default?: string; pattern?: RegExp; hint?: string } = {}): string {
    const v = this.take(key);
    if (v === undefined || v === null) {
      if (opts.default !== undefined) return opts.default;
      throw new ConfigError(this.field(key), 'is required');
    }
    if (typeof v !== 'string' || v === '') throw new ConfigError(this.field(key), 'must be a non-empty string');
    if (opts.pattern && !opts.pattern.test(v)) {
      throw new ConfigError(this.field(key), `"${v}" is not valid${opts.hint ? ` (${opts.hint})` : ''}`);
    }
    return v;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], def?: T): T {
    const v = this.string(key, def === undefined ? {} : { default: def });
    if (!(allowed as readonly string[]).includes(v)) {
      throw new ConfigError(this.field(key), `"${v}" is not one of ${allowed.join(', ')}`);
    }
    return v as T;
  }

  int(key: string, opts: { min: number; max: number; default?: number }): number {
    const v = this.take(key);
    if (v === undefined || v === null) {
      if (opts.default !== undefined) return opts.default;
      throw new ConfigError(this.field(key), 'is required');
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v < opts.min || v > opts.max) {
      throw new ConfigError(this.field(key), `must be an integer from ${opts.min} to ${opts.max}`);
    }
    return v;
  }

  bool(key: string, def: boolean): boolean {
    const v = this.take(key);
    if (v === undefined || v === null) return def;
    if (typeof v !== 'boolean') throw new ConfigError(this.field(key), 'must be true or false');
    return v;
  }

  /** A duration such as "500ms", "30s", "2m"; returned in milliseconds. */
  durationMs(key: string, def: string): number {
    const text = this.string(key, { default: def });
    const m = DURATION.exec(text);
    if (!m?.[1] || !m[2]) throw new ConfigError(this.field(key), `"${text}" is not a duration like 500ms, 30s or 2m`);
    return Math.round(Number(m[1]) * (UNIT_MS[m[2]] ?? 1));
  }

  stringList(
    key: string,
    opts: { default?: readonly string[]; nonEmpty?: boolean; pattern?: RegExp; hint?: string } = {},
  ): readonly string[] {
    const v = this.take(key);
    if (v === undefined || v === null) {
      if (opts.default !== undefined) return opts.default;
      throw new ConfigError(this.field(key), 'is required');
    }
    if (!Array.isArray(v)) throw new ConfigError(this.field(key), 'must be a list');
    if (opts.nonEmpty && v.length === 0) throw new ConfigError(this.field(key), 'must not be empty');
    return v.map((item, i) => {
      const field = `${this.field(key)}[${i}]`;
      if (typeof item !== 'string' || item === '') throw new ConfigError(field, 'must be a non-empty string');
      if (opts.pattern && !opts.pattern.test(item)) {
        throw new ConfigError(field, `"${item}" is not valid${opts.hint ? ` (${opts.hint})` : ''}`);
      }
      return item;
    });
  }

  /** One prefix, returned canonical. */
  prefix(key: string): string {
    const text = this.string(key);
    try {
      return canonicalPrefix(text);
    } catch (err) {
      throw new ConfigError(this.field(key), err instanceof PrefixError ? err.message : 'is not a prefix', { cause: err });
    }
  }

  /** A list of prefixes, returned canonical; a malformed one names its index. */
  prefixList(key: string, def: readonly string[] = []): readonly string[] {
    return this.stringList(key, { default: def }).map((p, i) => {
      try {
        return canonicalPrefix(p);
      } catch (err) {
        const reason = err instanceof PrefixError ? err.message : 'is not a prefix';
        throw new ConfigError(`${this.field(key)}[${i}]`, reason, { cause: err });
      }
    });
  }

  /** A nested mapping; an absent one reads as empty so its defaults apply. */
  object(key: string): Fields {
    const v = this.take(key);
    if (v === undefined || v === null) return new Fields({}, this.field(key));
    if (!isMapping(v)) throw new ConfigError(this.field(key), 'must be a mapping');
    return new Fields(v, this.field(key));
  }

  /** A list of mappings, each read field by field (call done() on each). */
  objectList(key: string): Fields[] {
    const v = this.take(key);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw new ConfigError(this.field(key), 'must be a list');
    return v.map((item, i) => {
      if (!isMapping(item)) throw new ConfigError(`${this.field(key)}[${i}]`, 'must be a mapping');
      return new Fields(item, `${this.field(key)}[${i}]`);
    });
  }

  /** Throws ConfigError naming the first key that no accessor read. */
  done(): void {
    for (const key of Object.keys(this.raw)) {
      if (!this.seen.has(key)) throw new ConfigError(this.field(key), 'unknown key');
    }
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Parses YAML `text` and compiles it with `compile`; the result is deeply
 * frozen. Throws ConfigError (with `source` and the line for YAML syntax
 * errors, the field otherwise).
 */
export function compileYaml<T>(text: string, source: string, compile: (root: Fields) => T): T {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const line = first.linePos?.[0]?.line;
    throw new ConfigError('', `${source}${line ? `:${line}` : ''}: ${first.message.split('\n')[0]}`);
  }
  const root = Fields.root(doc.toJS());
  const value = compile(root);
  root.done();
  return deepFreeze(value);
}

/** Reads and compiles a config file; a missing file is a ConfigError too. */
export async function loadConfigFile<T>(path: string, compile: (root: Fields) => T): Promise<T> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError('', `cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
  return compileYaml(text, path, compile);
}
