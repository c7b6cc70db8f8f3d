// comlink 4.4.2 ships its ESM Node adapter without a declaration file next to it (its types sit
// beside the UMD build); this states the same signature for the ESM path.
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
