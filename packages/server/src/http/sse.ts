import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Comment lines keep proxies and browsers from timing an idle stream out. */
export const HEARTBEAT_MS = 25_000;

export interface EventStream {
  /** Writes raw SSE text (nothing once the stream has ended). */
  write(chunk: string): void;
  /** Runs when the stream ends, whoever ends it (the client, the server closing); at once if it has. */
  onEnd(f: () => void): void;
}

/**
 * The streams a plugin opens: a closing server ends them itself instead of waiting out its grace
 * period (streams never go idle). Call once per plugin; `open` hijacks the reply and starts one.
 */
export function eventStreams(app: FastifyInstance): { open(req: FastifyRequest, reply: FastifyReply): EventStream } {
  const live = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of [...live]) end();
  });
  return {
    open(req, reply) {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        'x-request-id': req.id,
      });
      let closed = false;
      const onEnd: Array<() => void> = [];
      const write = (chunk: string) => {
        if (!closed) res.write(chunk);
      };
      const heartbeat = setInterval(() => write(': ping\n\n'), HEARTBEAT_MS);
      const stop = () => {
        if (closed) return;
        closed = true;
        live.delete(end);
        clearInterval(heartbeat);
        for (const f of onEnd) f();
      };
      const end = () => {
        stop();
        res.end();
      };
      live.add(end);
      req.raw.on('close', stop);
      res.on('error', stop);
      write('retry: 5000\n\n');
      // A client gone before the caller subscribed still gets its subscription undone.
      return { write, onEnd: (f) => (closed ? f() : void onEnd.push(f)) };
    },
  };
}
