// ASN.1 DER, as far as X.509 certificates and PKCS#10 requests need it:
// building values (pure, returns bytes) and reading them back as a tree of
// tag + bytes. Node verifies and reads certificates itself
// (crypto.X509Certificate) but has no way to build one or to read a CSR.

/** Tag bytes (universal, and the context-specific forms X.509 uses). */
export const TAG = {
  boolean: 0x01, integer: 0x02, bitString: 0x03, octetString: 0x04, null: 0x05, oid: 0x06,
  utf8String: 0x0c, printableString: 0x13, ia5String: 0x16, utcTime: 0x17, generalizedTime: 0x18,
  sequence: 0x30, set: 0x31,
} as const;

/** [n] EXPLICIT (constructed) and [n] IMPLICIT of a primitive value. */
export const explicitTag = (n: number): number => 0xa0 | n;
export const implicitTag = (n: number): number => 0x80 | n;

function lengthBytes(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

/** One value: tag, length, content. */
export function tlv(tag: number, content: Uint8Array | readonly Uint8Array[]): Buffer {
  const body = content instanceof Uint8Array ? Buffer.from(content) : Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag, ...lengthBytes(body.length)]), body]);
}

export const sequence = (...items: Uint8Array[]): Buffer => tlv(TAG.sequence, items);
export const set = (...items: Uint8Array[]): Buffer => tlv(TAG.set, items);
export const explicit = (n: number, inner: Uint8Array): Buffer => tlv(explicitTag(n), [inner]);
export const nullValue = (): Buffer => tlv(TAG.null, []);
export const boolean = (v: boolean): Buffer => tlv(TAG.boolean, Buffer.from([v ? 0xff : 0]));
export const octetString = (b: Uint8Array): Buffer => tlv(TAG.octetString, b);
export const utf8 = (s: string): Buffer => tlv(TAG.utf8String, Buffer.from(s, 'utf8'));
/** A BIT STRING of whole bytes, or `unused` low bits of the last byte unused (key usage). */
export const bitString = (b: Uint8Array, unused = 0): Buffer => tlv(TAG.bitString, [Buffer.from([unused]), b]);

/** A non-negative INTEGER from a number or big-endian bytes (a leading 0 added when the high bit is set). */
export function integer(v: number | Uint8Array): Buffer {
  const hex = typeof v === 'number' ? v.toString(16) : '';
  let b = typeof v === 'number' ? Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex') : Buffer.from(v);
  while (b.length > 1 && b[0] === 0 && ((b[1] ?? 0) & 0x80) === 0) b = b.subarray(1);
  return tlv(TAG.integer, (b[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const [a = 0, b = 0, ...rest] = parts;
  const out: number[] = [a * 40 + b];
  for (const p of rest) {
    const chunk: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(TAG.oid, Buffer.from(out));
}

/** UTCTime up to 2049, GeneralizedTime after (RFC 5280 4.1.2.5), to the second. */
export function time(d: Date): Buffer {
  const iso = d.toISOString();
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return d.getUTCFullYear() < 2050 ? tlv(TAG.utcTime, Buffer.from(digits.slice(2), 'ascii')) : tlv(TAG.generalizedTime, Buffer.from(digits, 'ascii'));
}

/** A value read back: its tag, its whole encoding, and its content. */
export interface Node {
  readonly tag: number;
  /** Tag, length and content: what a signature covers. */
  readonly raw: Buffer;
  readonly content: Buffer;
}

export class DerError extends Error {}

/** Reads the one value at the start of `buf`; throws DerError on anything malformed or truncated. */
export function read(buf: Buffer, at = 0): Node {
  const tag = buf[at];
  const first = buf[at + 1];
  if (tag === undefined || first === undefined) throw new DerError('truncated');
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not used here');
  let len = first;
  let head = 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4) throw new DerError('bad length');
    len = 0;
    for (let i = 0; i < n; i++) {
      const b = buf[at + 2 + i];
      if (b === undefined) throw new DerError('truncated');
      len = len * 256 + b;
    }
    if (len < 0x80) throw new DerError('length not in its shortest form');
    head += n;
  }
  if (at + head + len > buf.length) throw new DerError('truncated');
  return { tag, raw: buf.subarray(at, at + head + len), content: buf.subarray(at + head, at + head + len) };
}

/** The values inside a constructed one. */
export function children(node: Node): Node[] {
  const out: Node[] = [];
  for (let at = 0; at < node.content.length;) {
    const c = read(node.content, at);
    out.push(c);
    at += c.raw.length;
  }
  return out;
}

/** Reads `buf` as exactly one value (nothing after it). */
export function readAll(buf: Buffer): Node {
  const n = read(buf);
  if (n.raw.length !== buf.length) throw new DerError('bytes after the value');
  return n;
}

export function readOid(node: Node): string {
  if (node.tag !== TAG.oid) throw new DerError('expected an OBJECT IDENTIFIER');
  const b = node.content;
  const first = b[0] ?? 0;
  const parts = [Math.min(2, Math.floor(first / 40)), first - Math.min(2, Math.floor(first / 40)) * 40];
  let v = 0;
  for (let i = 1; i < b.length; i++) {
    const x = b[i] ?? 0;
    v = v * 128 + (x & 0x7f);
    if (!(x & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}
