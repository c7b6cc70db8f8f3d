/** The RESTful transport: `startRestfulServer(engine, address, options)`. */
export { startRestfulServer, type RestServer, type RestServerOptions, type SSLConfig } from './server.js';
/** The default JSON body parser (the `parseInstances` option's default) and its types: native/index.ts's. */
export { parseInstances, type ParsedRequest, type ParsedValue } from '../../native/index.js';
export type { InstancesParser } from './json-codec.js';
