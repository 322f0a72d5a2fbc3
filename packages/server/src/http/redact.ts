/** Query parameters that carry credentials; logs show them as [redacted]. */
const SECRET_PARAMS = /([?&](?:model_access_token|device_access_token|access_token|token|login_code|hw_code|signature)=)[^&]*/gi;

export function redactUrl(url: string): string {
  return url.replace(SECRET_PARAMS, '$1[redacted]');
}

/** Body and header paths pino must never print. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  '*.secret_no',
  '*.secret',
  '*.model_secret',
  '*.password',
  '*.device_secret',
  '*.seed_secret_no',
];
