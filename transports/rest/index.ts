/** The RESTful transport: `startRestfulServer(engine, address, options)`. */
export { startRestfulServer, type RestServer, type RestServerOptions, type SSLConfig } from './server.js';
export { parseInstances } from './json-parse.js';
export type { ParsedRequest, ParsedValue } from './parsed-value.js';
export type { InstancesParser } from './json-codec.js';
