import WebSocket from 'ws';

/** What the device needs from a socket; the default is a real `ws` client. */
export interface DeviceSocket {
  send(data: string | Buffer): void;
  close(code?: number, reason?: string): void;
  /** Drops the connection without a closing handshake (a device losing its network). */
  terminate(): void;
}

export interface SocketHandlers {
  open(): void;
  message(data: Buffer, isBinary: boolean): void;
  /** Called once, whether the socket closed cleanly, failed to connect, or was terminated. */
  close(code: number, reason: string): void;
  error(err: Error): void;
}

export type SocketFactory = (url: string, handlers: SocketHandlers) => DeviceSocket;

export interface WsFactoryOptions {
  /** Source address to connect from (the fleet spreads sockets over 127.0.0.2… to avoid running out of ports). */
  localAddress?: string;
  /** Sub-protocol; Lombo firmware sends "protocol" (§A1), the server must not care. */
  protocol?: string;
  handshakeTimeoutMs?: number;
}

/** A `ws` client per connection, without permessage-deflate (firmware doesn't negotiate it). */
export function wsSocketFactory(opts: WsFactoryOptions = {}): SocketFactory {
  return (url, h) => {
    const ws = new WebSocket(url, opts.protocol ? [opts.protocol] : [], {
      perMessageDeflate: false,
      handshakeTimeout: opts.handshakeTimeoutMs ?? 10_000,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
    });
    ws.binaryType = 'nodebuffer';
    ws.on('open', () => h.open());
    ws.on('message', (data, isBinary) => h.message(data as Buffer, isBinary));
    ws.on('error', (err) => h.error(err));
    ws.on('close', (code, reason) => h.close(code, reason.toString('utf8')));
    return {
      send: (data) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(data, { binary: typeof data !== 'string' });
      },
      close: (code, reason) => {
        if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
        else ws.close(code, reason);
      },
      terminate: () => ws.terminate(),
    };
  };
}
