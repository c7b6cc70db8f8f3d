/**
 * The server users hold: the engine facade plus the MindSpore-shaped transport starters.
 * Composed here, at the top of the layers, so the facade (facade/engine.ts) knows no
 * transport and each transport knows only the facade.
 *
 *   const server = new ServingServer();
 *   await server.startServables(new server.ServableStartConfig({ servableDirectory, servableName: 'add' }));
 *   await server.startGrpcServer('127.0.0.1:5500');
 *   await server.startRestfulServer('127.0.0.1:1500');
 *   await server.startGrpcServer('0.0.0.0:5501', { sslConfig: server.SSLConfig({ certificate, privateKey }) });
 *   ...
 *   await server.stop();   // closes the transports, then the servables
 */
import { ServingEngine } from './facade/engine.js';
import { type GrpcServer, type GrpcServerOptions, startGrpcServer } from './transports/grpc/server.js';
import { type RestServer, type RestServerOptions, startRestfulServer } from './transports/rest/server.js';
import { SSLConfig, type SSLConfigFactory } from './transports/ssl-config.js';

export class ServingServer extends ServingEngine {
  /**
   * MindSpore's `server.SSLConfig`: checked TLS settings for `sslConfig` (`new` optional).
   * A plain `{ certificate, privateKey, customCa, verifyClient }` object works as well.
   */
  readonly SSLConfig: SSLConfigFactory = SSLConfig;

  /**
   * Starts the REST transport (MindSpore RESTful protocol, msgpack, /healthz, /readyz,
   * /metrics) on `host:port` or `unix:/path`. It stops with `stop()`/`drain()`.
   */
  async startRestfulServer(address: string, options?: RestServerOptions): Promise<RestServer> {
    const listener = await startRestfulServer(this, address, options);
    this.attachListener(listener);
    return listener;
  }

  /**
   * Starts the gRPC transport (MindSpore-compatible `MSService.Predict` and our streaming
   * `actorserve.v1` service) on `host:port` or `unix:/path`. It stops with `stop()`/`drain()`.
   */
  async startGrpcServer(address: string, options?: GrpcServerOptions): Promise<GrpcServer> {
    const listener = await startGrpcServer(this, address, options);
    this.attachListener(listener);
    return listener;
  }
}

/** A new, independent server (tests, or several servers in one process). */
export function createServer(): ServingServer {
  return new ServingServer();
}
