/**
 * Every error the engine reports, each with a stable code. Transports map codes to HTTP
 * statuses and gRPC status codes through the table below; docs/errors.md lists the same
 * codes (a test keeps them in sync).
 *
 * Errors cross worker-thread boundaries as plain objects ({ code, message }), so `instanceof`
 * is branded on a global symbol: an error rebuilt from another copy of this module still
 * matches.
 */

export const ERROR_CODES = {
  E_UNKNOWN_SERVABLE: { http: 404, grpc: 5, summary: 'no servable of that name is loaded' },
  E_UNKNOWN_METHOD: { http: 404, grpc: 5, summary: 'the servable has no method of that name' },
  E_UNKNOWN_VERSION: { http: 404, grpc: 5, summary: 'the requested version of the servable is not loaded' },
  E_INVALID_ARGUMENT: { http: 400, grpc: 3, summary: 'a request or API argument is malformed' },
  E_NO_INSTANCES: { http: 400, grpc: 3, summary: 'the request holds zero instances' },
  E_MISSING_INPUT: { http: 400, grpc: 3, summary: 'an instance lacks an input the method declares' },
  E_EXTRA_INPUT: { http: 400, grpc: 3, summary: 'an instance has an input the method does not declare' },
  E_INVALID_DTYPE: { http: 400, grpc: 3, summary: 'an input has a dtype the method or model does not accept' },
  E_INVALID_SHAPE: { http: 400, grpc: 3, summary: "an input's size or shape does not fit the method or model" },
  E_OVERLOADED: { http: 503, grpc: 8, summary: 'too many requests are queued; retry later' },
  E_DEADLINE_EXCEEDED: { http: 504, grpc: 4, summary: 'the request deadline passed before it completed' },
  E_CANCELLED: { http: 499, grpc: 1, summary: 'the client cancelled the request (its queued work was dropped)' },
  E_UNAVAILABLE: { http: 503, grpc: 14, summary: 'no device actor can serve the request now' },
  E_ACTOR_DIED: { http: 503, grpc: 14, summary: 'the device actor running the request died' },
  E_STAGE_FAILED: { http: 500, grpc: 13, summary: 'a stage function threw or returned an invalid value' },
  E_MODEL_FAILED: { http: 500, grpc: 13, summary: 'ONNX Runtime failed to run the model' },
  E_LOAD_FAILED: { http: 500, grpc: 13, summary: 'a servable or model could not be loaded' },
  E_CONFIG_INVALID: { http: 500, grpc: 13, summary: 'servable_config.ts or a start config is invalid' },
  E_STOPPED: { http: 503, grpc: 14, summary: 'the server is stopping or stopped' },
  E_INTERNAL: { http: 500, grpc: 13, summary: 'an internal error (a bug): please report it' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

const kBrand = Symbol.for('actorserve.ServingError');
const kInstanceErrorsBrand = Symbol.for('actorserve.InstanceErrors');

/** Plain, cloneable form of a ServingError (what crosses threads and processes). */
export interface ServingErrorData {
  code: ErrorCode;
  message: string;
}

export class ServingError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ServingError';
    this.code = code;
    Object.defineProperty(this, kBrand, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kBrand] === true;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }

  get grpcStatus(): number {
    return ERROR_CODES[this.code].grpc;
  }

  toData(): ServingErrorData {
    return { code: this.code, message: this.message };
  }

  static fromData(data: ServingErrorData): ServingError {
    return new ServingError(isErrorCode(data.code) ? data.code : 'E_INTERNAL', data.message);
  }
}

/** Raised by `infer()` when at least one instance failed; holds the per-instance outcome. */
export class InstanceErrors extends ServingError {
  readonly errors: ReadonlyArray<ServingError | undefined>;

  constructor(errors: ReadonlyArray<ServingError | undefined>) {
    const failed = errors.map((e, i) => (e ? i : -1)).filter((i) => i >= 0);
    const first = errors[failed[0]!]!;
    super(
      first.code,
      failed.length === 1 && errors.length === 1
        ? first.message
        : `${failed.length} of ${errors.length} instances failed; instance ${failed[0]}: ${first.message}`,
    );
    this.name = 'InstanceErrors';
    this.errors = errors;
    Object.defineProperty(this, kInstanceErrorsBrand, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return (
      typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kInstanceErrorsBrand] === true
    );
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** Turns anything thrown into a ServingError, keeping codes that already exist. */
export function toServingError(err: unknown, fallback: ErrorCode = 'E_INTERNAL'): ServingError {
  if (err instanceof ServingError) return err;
  if (typeof err === 'object' && err !== null && isErrorCode((err as { code?: unknown }).code)) {
    return ServingError.fromData(err as ServingErrorData);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ServingError(fallback, message, { cause: err });
}
