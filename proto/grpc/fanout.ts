// Fan-out: one update, encoded once, written to many response streams. The
// serialiser of serviceDefinition() passes PreEncoded bytes through, so the
// cost per extra stream is a buffer reference, not an encode.
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import { PreEncoded } from './definition.js';

/** The part of a grpc-js writable stream fan-out needs. */
export interface FanoutTarget<D extends DescMessage> {
  write(message: PreEncoded<D>): boolean;
  readonly writableEnded: boolean;
}

export interface FanoutResult<T> {
  /** How many streams got the bytes. */
  readonly written: number;
  /** Streams whose buffer is now full: wait for 'drain' before writing more. */
  readonly saturated: T[];
}

/**
 * Encodes `message` once and writes the same bytes to every open stream in
 * `targets`. Streams that have ended are skipped. Never throws for a valid
 * message.
 */
export function fanOut<D extends DescMessage, T extends FanoutTarget<D>>(
  schema: D,
  message: MessageShape<D> | PreEncoded<D>,
  targets: Iterable<T>,
): FanoutResult<T> {
  const encoded = message instanceof PreEncoded ? message : PreEncoded.encode(schema, message);
  let written = 0;
  const saturated: T[] = [];
  for (const target of targets) {
    if (target.writableEnded) continue;
    written++;
    if (!target.write(encoded)) saturated.push(target);
  }
  return { written, saturated };
}
