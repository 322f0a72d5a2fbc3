import pino, { type Logger } from 'pino';
import type { Config } from '../config.js';
import { REDACT_PATHS, redactObject, redactUrl } from '../http/redact.js';

/**
 * The process logger. Request URLs lose their credential parameters before they are printed, and
 * any logged property whose name looks like a credential (http/redact.ts SENSITIVE_KEY) is
 * censored, however deep in the object it sits (finding 10).
 */
export function createLogger(config: Pick<Config, 'logLevel' | 'nodeId'>, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { node: config.nodeId },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { log: (obj) => redactObject(obj) },
      serializers: {
        req: (req: { method: string; url: string; id?: string; ip?: string }) => ({
          id: req.id,
          method: req.method,
          url: redactUrl(req.url),
          ip: req.ip,
        }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
        err: pino.stdSerializers.err,
      },
    },
    destination,
  );
}
