import {
  createPrivateKey,
  createPublicKey,
  createSign,
  createVerify,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import type { Kysely } from 'kysely';
import type { SecretBox } from '../../adapters/secrets/secret-box.js';
import type { Database } from '../../adapters/storage/schema.js';
import { createSelfSignedCertificate, newCertificateSerial } from './x509.js';

/**
 * WeChat Pay API v3 signatures (reference Part A1/A2): the request signature a merchant client
 * sends in `Authorization`, and the signature the platform puts on every reply.
 */
export const AUTH_SCHEME = 'WECHATPAY2-SHA256-RSA2048';
/** A request's timestamp may be this far from the server's clock, either way. */
export const SIGNATURE_WINDOW_SEC = 300;

export interface AuthorizationParams {
  mchid: string;
  nonce_str: string;
  timestamp: string;
  serial_no: string;
  signature: string;
}

const AUTH_KEYS = ['mchid', 'nonce_str', 'timestamp', 'serial_no', 'signature'] as const;

/**
 * Parses `WECHATPAY2-SHA256-RSA2048 k="v",k="v",…` by key, in any order (the two npm clients use
 * different orders); `mch_id` is accepted for `mchid` because the iotmanage doc page spells it so.
 */
export function parseAuthorization(
  header: string | undefined,
): { ok: true; params: AuthorizationParams } | { ok: false; issue: string } {
  if (!header) return { ok: false, issue: 'the Authorization header is missing' };
  const m = /^(\S+)\s+(.*)$/s.exec(header.trim());
  if (!m || m[1] !== AUTH_SCHEME) return { ok: false, issue: `the Authorization scheme must be ${AUTH_SCHEME}` };
  const found: Record<string, string> = {};
  const pair = /\s*([A-Za-z_]+)\s*=\s*"([^"]*)"\s*(,|$)/y;
  const rest = m[2]!;
  let at = 0;
  while (at < rest.length) {
    pair.lastIndex = at;
    const p = pair.exec(rest);
    if (!p) return { ok: false, issue: `cannot read the Authorization parameters from position ${at}` };
    const key = p[1] === 'mch_id' ? 'mchid' : p[1]!;
    if (key in found) return { ok: false, issue: `the Authorization parameter ${key} appears twice` };
    found[key] = p[2]!;
    at = pair.lastIndex;
    if (p[3] === '') break;
  }
  const missing = AUTH_KEYS.filter((k) => !found[k]);
  if (missing.length) return { ok: false, issue: `the Authorization header lacks ${missing.join(', ')}` };
  return {
    ok: true,
    params: {
      mchid: found.mchid!,
      nonce_str: found.nonce_str!,
      timestamp: found.timestamp!,
      serial_no: found.serial_no!,
      signature: found.signature!,
    },
  };
}

/** The five-line string a client signs: every line ends in \n, the body line too. */
export function requestMessage(method: string, url: string, timestamp: string, nonce: string, body: string): string {
  return `${method}\n${url}\n${timestamp}\n${nonce}\n${body}\n`;
}

/** The three-line string the platform signs over the exact reply body. */
export function replyMessage(timestamp: string, nonce: string, body: string): string {
  return `${timestamp}\n${nonce}\n${body}\n`;
}

export function verifySignature(message: string, signatureB64: string, publicKey: KeyObject): boolean {
  try {
    return createVerify('RSA-SHA256').update(message, 'utf8').verify(publicKey, signatureB64, 'base64');
  } catch {
    return false;
  }
}

export function sign(message: string, privateKey: KeyObject): string {
  return createSign('RSA-SHA256').update(message, 'utf8').sign(privateKey, 'base64');
}

/**
 * What the server reconstructed, echoed in a SIGN_ERROR's detail the way the real platform does,
 * so an integrator can diff it against what their client signed.
 */
export function signInformation(method: string, url: string, message: string) {
  return {
    method,
    url,
    sign_message_length: Buffer.byteLength(message, 'utf8'),
    truncated_sign_message: message.length > 256 ? message.slice(0, 256) : message,
  };
}

/** 32 lower-case hex, like the docs' Wechatpay-Nonce examples. */
export function replyNonce(): string {
  return randomBytes(16).toString('hex');
}

// ---------------------------------------------------------------------------------------------
// The platform key

export interface PlatformKey {
  /** The name in public-key mode: PUB_KEY_ID_ + 34 digits. */
  pubKeyId: string;
  /** The name in platform-certificate mode: the certificate's 40 upper-hex serial. */
  certSerial: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicKeyPem: string;
  certificatePem: string;
  notBefore: number;
  notAfter: number;
}

export const PUB_KEY_ID_RE = /^PUB_KEY_ID_\d{34}$/;
const CERT_VALID_MS = 5 * 365 * 24 * 3600 * 1000;
const ROW_ID = 'current';

function newPubKeyId(): string {
  const b = randomBytes(34);
  let digits = '';
  for (let i = 0; i < 34; i++) digits += String(b[i]! % 10);
  return `PUB_KEY_ID_${digits}`;
}

/**
 * The platform's RSA-2048 key, made on first use and kept sealed in the database so every
 * process signs with the same key. One key serves both modes: the public-key id and the
 * certificate serial are two names for it.
 */
export class PlatformKeyStore {
  private loading: Promise<PlatformKey> | null = null;

  constructor(private readonly deps: { db: Kysely<Database>; secrets: SecretBox; now: () => number }) {}

  current(): Promise<PlatformKey> {
    if (!this.loading) {
      this.loading = this.load().catch((e) => {
        this.loading = null;
        throw e;
      });
    }
    return this.loading;
  }

  private async load(): Promise<PlatformKey> {
    let row = await this.deps.db.selectFrom('platform_keys').selectAll().where('id', '=', ROW_ID).executeTakeFirst();
    if (!row) {
      const now = this.deps.now();
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const serial = newCertificateSerial();
      const notBefore = now - 60_000;
      const notAfter = now + CERT_VALID_MS;
      const certificatePem = createSelfSignedCertificate({
        privateKeyPem: privatePem,
        publicKeyPem: publicPem,
        serialHex: serial,
        commonName: 'Bindery Pay Platform',
        notBefore: new Date(notBefore),
        notAfter: new Date(notAfter),
      });
      // Two processes may race here: the first insert wins and both read it back.
      await this.deps.db
        .insertInto('platform_keys')
        .values({
          id: ROW_ID,
          pub_key_id: newPubKeyId(),
          cert_serial: serial,
          private_key_enc: this.deps.secrets.seal(privatePem),
          public_key_pem: publicPem,
          certificate_pem: certificatePem,
          not_before: notBefore,
          not_after: notAfter,
          created_at: now,
        })
        .onConflict((oc) => oc.column('id').doNothing())
        .execute();
      row = await this.deps.db.selectFrom('platform_keys').selectAll().where('id', '=', ROW_ID).executeTakeFirstOrThrow();
    }
    return {
      pubKeyId: row.pub_key_id,
      certSerial: row.cert_serial,
      privateKey: createPrivateKey(this.deps.secrets.open(row.private_key_enc)),
      publicKey: createPublicKey(row.public_key_pem),
      publicKeyPem: row.public_key_pem,
      certificatePem: row.certificate_pem,
      notBefore: Number(row.not_before),
      notAfter: Number(row.not_after),
    };
  }
}
