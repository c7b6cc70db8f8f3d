/**
 * MindSpore-shaped config constructors (`server.SSLConfig(...)`, the client's `SSLConfig(...)`):
 * one object of options, callable with or without `new` (MindSpore's Python has no `new`),
 * checked when made, returned frozen with the factory's prototype (so `instanceof` holds).
 */
import { ServingError } from '../engine/errors.js';

/** A config constructor: `Name(options)` and `new Name(options)` alike. */
export interface ConfigFactory<T> {
  (options: T): Readonly<T>;
  new (options: T): Readonly<T>;
  readonly prototype: Readonly<T>;
}

/**
 * `name` and `usage` word the refusal of anything but one object (`server.SSLConfig`,
 * `{ certificate, privateKey, customCa, verifyClient }`); `optional`: no argument means `{}`.
 * `check` refuses bad options (throwing) and returns them as kept.
 */
export function configFactory<T extends object>(name: string, usage: string, optional: boolean, check: (options: T) => T): ConfigFactory<T> {
  const factory = function (options?: T): Readonly<T> {
    const given: unknown = options === undefined && optional ? {} : options;
    if (typeof given !== 'object' || given === null || Array.isArray(given)) {
      const got = given === null ? 'null' : Array.isArray(given) ? 'a list' : typeof given;
      throw new ServingError('E_INVALID_ARGUMENT', `${name} takes one object: ${name}(${usage}), got ${got}`);
    }
    return Object.freeze(Object.assign(Object.create((factory as unknown as ConfigFactory<T>).prototype) as T, check(given as T)));
  };
  Object.defineProperty(factory, 'name', { value: name.slice(name.lastIndexOf('.') + 1) });
  return factory as unknown as ConfigFactory<T>;
}
