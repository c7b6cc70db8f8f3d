// Free loopback ports for tests that must name ports up front (agents listen on a start port
// and the ones after it).
import net from 'node:net';

/** A port base where `n` consecutive loopback ports are free now. */
export async function freePorts(n: number): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    let ok = true;
    for (let p = base; p < base + n && ok; p++) ok = await free(p);
    if (ok) return base;
  }
  throw new Error('no free ports');
}
