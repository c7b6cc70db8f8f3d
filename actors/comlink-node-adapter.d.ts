/**
 * Types for comlink's Node adapter (a worker_threads MessagePort or Worker as a comlink
 * Endpoint). comlink 4.4.2 ships them beside its UMD build, which TypeScript does not pair with
 * the `.mjs` file that Node must import, so the import would be untyped without this.
 */
declare module 'comlink/dist/esm/node-adapter.mjs' {
  import type { Endpoint } from 'comlink';

  /** A worker_threads MessagePort or Worker. */
  export interface NodeEndpoint {
    postMessage(message: unknown, transfer?: readonly unknown[]): void;
    on(type: 'message', listener: (value: unknown) => void): void;
    off(type: 'message', listener: (value: unknown) => void): void;
    start?: () => void;
  }

  export default function nodeEndpoint(endpoint: NodeEndpoint): Endpoint;
}
