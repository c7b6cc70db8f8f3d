/**
 * MindSpore Serving 1.3's `server.SSLConfig(...)`, which builds checked server-side TLS
 * settings (`sslConfig`) for both transports; the settings and their check live in
 * engine/ssl-config.ts (the agent link of distributed servables takes them too).
 *
 *   const ssl = server.SSLConfig({ certificate: 'server.crt', privateKey: 'server.key' });   // `new` optional
 *   await server.startGrpcServer('0.0.0.0:5500', { sslConfig: ssl });                       // a plain object works too
 */
import { checkOptions, invalidArgument } from '../engine/option-schema.js';
import { SSL_CONFIG_OPTIONS, type SSLConfig as SSLSettings, checkSslConfig } from '../engine/ssl-config.js';
import { type ConfigFactory, configFactory } from './config-factory.js';

export { SSL_CONFIG_OPTIONS, type TlsPem, checkSslConfig } from '../engine/ssl-config.js';
export type SSLConfig = SSLSettings;

/** `server.SSLConfig`: callable with or without `new` (MindSpore's Python has no `new`). */
export type SSLConfigFactory = ConfigFactory<SSLConfig>;

/**
 * Server TLS settings, checked now: the option kinds (unknown keys refused with the closest
 * known one), `verifyClient` with `customCa`, and the files themselves (readable PEM, the key
 * matching the certificate). Returns a frozen object (`instanceof SSLConfig` holds) that
 * `startRestfulServer` and `startGrpcServer` take as `sslConfig`, as they take a plain object.
 */
export const SSLConfig: SSLConfigFactory = configFactory<SSLConfig>('server.SSLConfig', '{ certificate, privateKey, customCa, verifyClient }', false, (options) => {
  const settings: SSLConfig = checkOptions(SSL_CONFIG_OPTIONS, options, invalidArgument('server.SSLConfig'));
  checkSslConfig(settings, 'server.SSLConfig');
  return settings;
});
