// Errors that cross the gRPC edge: a status code plus a typed ErrorDetail in
// the binary trailer `hostnet-error-detail-bin`. Anything that is not a
// HostnetError leaves the server as INTERNAL with an incident id only; the
// real message and stack stay in the server's log.
import { randomUUID } from 'node:crypto';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Metadata, status as Status, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { type ErrorDetail, ErrorDetailSchema } from '../gen/hostnet/v1/errors_pb.js';

export const ERROR_DETAIL_TRAILER = 'hostnet-error-detail-bin';

export interface ErrorDetailInit {
  reason: string;
  message: string;
  field?: string;
  resource?: string;
  referencedBy?: string[];
  incidentId?: string;
}

/** An error meant for the caller: its code and detail are sent as they are. */
export class HostnetError extends Error {
  override readonly name = 'HostnetError';
  readonly detail: ErrorDetail;

  constructor(readonly code: Status, init: ErrorDetailInit, options?: { cause?: unknown }) {
    super(init.message, options);
    this.detail = create(ErrorDetailSchema, init);
  }

  /** Normalises any value into a HostnetError; unknown values become INTERNAL. */
  static from(err: unknown): HostnetError {
    if (err instanceof HostnetError) return err;
    if (isServiceError(err)) return fromServiceError(err);
    return new HostnetError(Status.INTERNAL, { reason: 'INTERNAL', message: 'internal error' }, { cause: err });
  }
}

export const invalidArgument = (field: string, message: string): HostnetError =>
  new HostnetError(Status.INVALID_ARGUMENT, { reason: 'FIELD_INVALID', field, message: `${field}: ${message}` });

export const notFound = (resource: string, field = ''): HostnetError =>
  new HostnetError(Status.NOT_FOUND, { reason: 'NOT_FOUND', resource, field, message: `${field ? `${field}: ` : ''}${resource} not found` });

export const alreadyExists = (resource: string): HostnetError =>
  new HostnetError(Status.ALREADY_EXISTS, { reason: 'ALREADY_EXISTS', resource, message: `${resource} already exists` });

export const permissionDenied = (message: string, resource = '', field = ''): HostnetError =>
  new HostnetError(Status.PERMISSION_DENIED, { reason: 'PERMISSION_DENIED', resource, field, message });

export const unauthenticated = (message: string): HostnetError =>
  new HostnetError(Status.UNAUTHENTICATED, { reason: 'UNAUTHENTICATED', message });

export const stillReferenced = (resource: string, referencedBy: string[]): HostnetError =>
  new HostnetError(Status.FAILED_PRECONDITION, {
    reason: 'STILL_REFERENCED',
    resource,
    referencedBy,
    message: `${resource} is still referenced by ${referencedBy.join(', ')}`,
  });

const hasCode = (code: Status) => (err: unknown): boolean => err instanceof HostnetError && err.code === code;
export const isNotFound = hasCode(Status.NOT_FOUND);
export const isInvalidArgument = hasCode(Status.INVALID_ARGUMENT);
export const isPermissionDenied = hasCode(Status.PERMISSION_DENIED);

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number'
    && (err as Partial<ServiceError>).metadata instanceof Metadata;
}

/** Reads the typed detail a hostnet server put into the trailers, if any. */
export function fromServiceError(err: ServiceError): HostnetError {
  const raw = err.metadata.get(ERROR_DETAIL_TRAILER)[0];
  if (Buffer.isBuffer(raw)) {
    try {
      const detail = fromBinary(ErrorDetailSchema, raw);
      return new HostnetError(err.code, detail, { cause: err });
    } catch {
      // fall through: a malformed detail is treated as no detail
    }
  }
  // grpc-js refuses a message over the server's limit before any handler sees it, with no detail.
  const tooLarge = /^Received message larger than max \((\d+) vs\.? \d+\)/.exec(err.details);
  if (err.code === Status.RESOURCE_EXHAUSTED && tooLarge) {
    return new HostnetError(err.code, {
      reason: 'MESSAGE_TOO_LARGE',
      message: `the request is ${tooLarge[1]} bytes, far more than the server accepts: split it (several files, smaller objects)`,
    }, { cause: err });
  }
  const message = err.details || Status[err.code] || 'error';
  return new HostnetError(err.code, { reason: Status[err.code] ?? 'UNKNOWN', message }, { cause: err });
}

export interface ErrorLogger {
  error(obj: object, msg: string): void;
}

/**
 * Turns whatever a handler threw into the status sent to the caller. A
 * HostnetError goes out with its detail; anything else is logged with a new
 * incident id and goes out as INTERNAL carrying only that id.
 */
export function toStatus(err: unknown, log: ErrorLogger, method: string): Partial<StatusObject> & { code: Status } {
  let e: HostnetError;
  if (err instanceof HostnetError) {
    e = err;
  } else {
    const incidentId = randomUUID();
    log.error({ err, method, incidentId }, 'handler failed');
    e = new HostnetError(Status.INTERNAL, {
      reason: 'INTERNAL',
      incidentId,
      message: `internal error (incident ${incidentId})`,
    });
  }
  const metadata = new Metadata();
  metadata.set(ERROR_DETAIL_TRAILER, Buffer.from(toBinary(ErrorDetailSchema, e.detail)));
  return { code: e.code, details: e.detail.message, metadata };
}
