/**
 * @deprecated Not the transport's parser any more: the REST transport parses JSON bodies with
 * native/index.ts `parseInstances` (also exported by transports/rest/index.ts). This alias only
 * keeps cli/bench-input.ts compiling until it imports `parseInstances` from native/index.ts;
 * delete this file then.
 */
export { parseInstances } from '../../native/index.js';
