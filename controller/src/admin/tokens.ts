// Bearer tokens for the admin API: a YAML file of tokens, each bound to a
// role (operator, or tenant-admin of one tenant). Tokens are compared as
// SHA-256 digests in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import { ConfigError, type Fields, compileYaml } from '../../../common/config.js';
import { unauthenticated } from '../../../proto/grpc/errors.js';
import type { Caller } from '../validate.js';

interface TokenEntry {
  /** Hex SHA-256 of the token (a string: config values are deep-frozen). */
  readonly digest: string;
  readonly caller: Caller;
  readonly name: string;
}

const digest = (token: string): string => createHash('sha256').update(token).digest('hex');

export class Tokens {
  private constructor(private readonly entries: readonly TokenEntry[]) {}

  /** Parses the tokens file; throws ConfigError naming the bad field. */
  static parse(text: string, source: string): Tokens {
    return compileYaml(text, source, (root: Fields) => {
      const list = root.objectList('tokens');
      if (list.length === 0) throw new ConfigError('tokens', 'at least one token is required');
      const entries = list.map((f, i) => {
        const token = f.string('token');
        if (token.length < 16) throw new ConfigError(`tokens[${i}].token`, 'must be at least 16 characters');
        const role = f.oneOf('role', ['operator', 'tenant-admin'] as const);
        const name = f.string('name', { default: `token ${i}` });
        const caller: Caller = role === 'operator' ? { role } : { role, tenant: f.string('tenant', { pattern: /^[a-z][a-z0-9-]{0,62}$/, hint: 'a tenant id' }) };
        f.done();
        return { digest: digest(token), caller, name };
      });
      return new Tokens(entries);
    });
  }

  static of(entries: readonly { token: string; caller: Caller; name?: string }[]): Tokens {
    return new Tokens(entries.map((e, i) => ({ digest: digest(e.token), caller: e.caller, name: e.name ?? `token ${i}` })));
  }

  /** The caller of an "authorization: Bearer TOKEN" header value; throws UNAUTHENTICATED. */
  authenticate(header: string | undefined): Caller {
    if (!header) throw unauthenticated('missing "authorization: Bearer TOKEN" metadata');
    const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
    if (!m?.[1]) throw unauthenticated('the authorization metadata must be "Bearer TOKEN"');
    const d = Buffer.from(digest(m[1]), 'hex');
    const hit = this.entries.find((e) => timingSafeEqual(Buffer.from(e.digest, 'hex'), d));
    if (!hit) throw unauthenticated('unknown token');
    return hit.caller;
  }
}
