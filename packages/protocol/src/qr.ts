/**
 * The QR grammar (docs/protocol.md §Q): every URL Bindery prints or verifies, and the parser
 * the landing page, console and SDK share. Any host is accepted when parsing, so codes printed
 * for the real platform resolve too (P-Q-1).
 */

export type ScanKind =
  | { kind: 'static_bind'; hwCode: string }
  | { kind: 'dynamic_bind'; sn: string; timestamp: string; nonce?: string; signature: string; state?: string }
  | { kind: 'dynamic_login'; sn: string; timestamp: string; nonce?: string; signature: string; state: string }
  | { kind: 'static_login'; loginCode: string; state: string }
  | { kind: 'quectel'; pk: string; sn: string }
  | { kind: 'add_device' }
  /** Seed 001's constant QR `…/hw/f?t=bt`: find the device over Bluetooth (docs/protocol.md BT rules). */
  | { kind: 'bluetooth_discovery' }
  | { kind: 'unknown'; reason: string };

const CONNECT_PATH = '/connect/hardware';

function base(publicUrl: string): string {
  return publicUrl.replace(/\/+$/, '');
}

function q(params: Array<[string, string]>): string {
  return params.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
}

export function staticBindUrl(publicUrl: string, hwCode: string): string {
  return `${base(publicUrl)}${CONNECT_PATH}?${q([['hw_code', hwCode]])}`;
}

export function dynamicBindUrl(
  publicUrl: string,
  f: { sn: string; timestamp: string; nonce: string; signature: string },
): string {
  return `${base(publicUrl)}${CONNECT_PATH}?${q([
    ['sn', f.sn],
    ['timestamp', f.timestamp],
    ['nonce', f.nonce],
    ['signature', f.signature],
    ['type', 'qrcode'],
  ])}`;
}

/** Device-made login QR (§A8): has a nonce. Cloud-made ones (seed 000) have none. */
export function dynamicLoginUrl(
  publicUrl: string,
  f: { sn: string; timestamp: string; nonce?: string; signature: string; state: string },
): string {
  const params: Array<[string, string]> = [
    ['sn', f.sn],
    ['timestamp', f.timestamp],
  ];
  if (f.nonce !== undefined) params.push(['nonce', f.nonce]);
  params.push(['signature', f.signature], ['type', 'dynamic_login'], ['state', f.state]);
  return `${base(publicUrl)}${CONNECT_PATH}?${q(params)}`;
}

/** Cloud-issued identity QR (gen_id_dynamic_qrcode): type=qrcode with a state and no nonce. */
export function cloudIdentityUrl(
  publicUrl: string,
  f: { sn: string; timestamp: string; signature: string; state: string },
): string {
  return `${base(publicUrl)}${CONNECT_PATH}?${q([
    ['sn', f.sn],
    ['timestamp', f.timestamp],
    ['signature', f.signature],
    ['type', 'qrcode'],
    ['state', f.state],
  ])}`;
}

export function staticLoginUrl(publicUrl: string, loginCode: string, state: string): string {
  return `${base(publicUrl)}${CONNECT_PATH}?${q([
    ['type', 'static_login'],
    ['login_code', loginCode],
    ['state', state],
  ])}`;
}

export function quectelPayload(pk: string, sn: string): string {
  return `pk=${pk}&sn=${sn}&v=1`;
}

export type LabelFormat = 'wecom' | 'quectel' | 'custom';
export const LABEL_FORMATS: readonly LabelFormat[] = ['wecom', 'quectel', 'custom'];
/** What a device's printed label encodes, by its model's label format. */
export function labelContent(
  publicUrl: string,
  format: LabelFormat,
  template: string | null,
  d: { pk: string; sn: string; hwCode: string },
): string {
  switch (format) {
    case 'wecom':
      return staticBindUrl(publicUrl, d.hwCode);
    case 'quectel':
      return quectelPayload(d.pk, d.sn);
    case 'custom':
      return (template ?? '{sn}').replaceAll('{pk}', d.pk).replaceAll('{sn}', d.sn).replaceAll('{hw_code}', d.hwCode);
  }
}

/** Parses anything a person may scan: connect/hardware URLs, add-device links, Quectel payloads. */
export function parseScan(text: string): ScanKind {
  const t = text.trim();
  if (/^pk=/.test(t)) {
    const p = new URLSearchParams(t);
    const pk = p.get('pk');
    const sn = p.get('sn');
    if (!pk || !sn) return { kind: 'unknown', reason: 'Quectel payload without pk or sn' };
    return { kind: 'quectel', pk, sn };
  }
  let url: URL;
  try {
    url = new URL(t);
  } catch {
    return { kind: 'unknown', reason: 'not a URL' };
  }
  const path = url.pathname.replace(/\/+$/, '');
  if (path.endsWith('/hw/addDevice') || path.endsWith('/wwopen/connect/hardware/addDevice')) {
    return { kind: 'add_device' };
  }
  if (path.endsWith('/hw/f') && url.searchParams.get('t') === 'bt') return { kind: 'bluetooth_discovery' };
  if (!path.endsWith(CONNECT_PATH)) return { kind: 'unknown', reason: 'not a connect/hardware link' };
  return parseConnectParams(url.searchParams);
}

/** The query of a connect/hardware link, by kind (§A8). */
export function parseConnectParams(p: URLSearchParams): ScanKind {
  const type = p.get('type');
  const hwCode = p.get('hw_code');
  if (hwCode && !type) return { kind: 'static_bind', hwCode };
  if (type === 'static_login') {
    const loginCode = p.get('login_code');
    if (!loginCode) return { kind: 'unknown', reason: 'static_login without login_code' };
    return { kind: 'static_login', loginCode, state: p.get('state') ?? '' };
  }
  if (type === 'qrcode' || type === 'dynamic_login') {
    const sn = p.get('sn');
    const timestamp = p.get('timestamp');
    const signature = p.get('signature');
    if (!sn || !timestamp || !signature) return { kind: 'unknown', reason: `${type} without sn, timestamp or signature` };
    const nonce = p.get('nonce') ?? undefined;
    const state = p.get('state') ?? undefined;
    if (type === 'qrcode') return { kind: 'dynamic_bind', sn, timestamp, nonce, signature, state };
    return { kind: 'dynamic_login', sn, timestamp, nonce, signature, state: state ?? '' };
  }
  return { kind: 'unknown', reason: type ? `unknown type ${type}` : 'no hw_code and no type' };
}
