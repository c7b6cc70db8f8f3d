/**
 * Types for comlink's Node adapter (a worker_threads MessagePort as a comlink Endpoint).
 * comlink ships them as dist/esm/node-adapter.d.ts, which TypeScript does not pair with the
 * `.mjs` file that Node must import, so the import would be untyped without this.
 */
declare module 'comlink/dist/esm/node-adapter.mjs' {
  import type { Endpoint } from 'comlink';
  import type { MessagePort } from 'node:worker_threads';

  export default function nodeEndpoint(port: MessagePort): Endpoint;
}
