import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a server, so a browser test can take the server away from the
 * browser and bring it back on the same address (the browser's origin, and so its cookies and local
 * storage, stay the same): `down()` stops listening and cuts every open connection, as a pulled cable
 * or a crashed server does; `up()` listens on the same port again. `loseResponses()` is the nastier
 * drop: requests still reach the server, but the connection is cut as its answer starts back, so the
 * browser never learns what the server did.
 */
export interface TcpProxy {
  port: number;
  base: string;
  /** Until `down()`: requests go through, answers are lost with their connection. */
  loseResponses(): void;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const open = new Set<Socket>();
  let server: Server | null = null;
  let port = 0;
  let losing = false;

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = connect(targetPort, targetHost);
        open.add(client);
        open.add(upstream);
        const end = () => {
          client.destroy();
          upstream.destroy();
          open.delete(client);
          open.delete(upstream);
        };
        client.on('error', end).on('close', end);
        upstream.on('error', end).on('close', end);
        client.pipe(upstream);
        upstream.on('data', (chunk: Buffer) => {
          if (losing) end();
          else if (!client.write(chunk)) upstream.pause();
        });
        client.on('drain', () => upstream.resume());
        upstream.on('end', () => client.end());
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        port = (s.address() as { port: number }).port;
        server = s;
        resolve();
      });
    });

  const down = async () => {
    const s = server;
    server = null;
    losing = false;
    if (!s) return;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    for (const sock of open) sock.destroy();
    open.clear();
    await closed;
  };

  await listen();
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    loseResponses: () => {
      losing = true;
    },
    down,
    up: () => (server ? Promise.resolve() : listen()),
    close: down,
  };
}
