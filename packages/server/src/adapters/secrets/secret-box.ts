import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Encrypts secrets at rest (SecretNo, seed SecretNo, device secrets) with AES-256-GCM under the
 * master key. Stored form: "v1." + base64url(iv ‖ tag ‖ ciphertext).
 */
export class SecretBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('master key must be 32 bytes');
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return `v1.${Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64url')}`;
  }

  open(sealed: string): string {
    if (!sealed.startsWith('v1.')) throw new Error('unknown sealed format');
    const raw = Buffer.from(sealed.slice(3), 'base64url');
    if (raw.length < 28) throw new Error('sealed value is truncated');
    // The tag length is pinned: GCM would otherwise accept a tag cut to 4 bytes, and a forger
    // would need only 2^32 tries.
    const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12), { authTagLength: 16 });
    d.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
  }

  /** A 32-byte key for one purpose (HKDF of the master key), so a MAC never reuses the sealing key. */
  deriveKey(purpose: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.key, Buffer.alloc(0), `bindery:${purpose}`, 32));
  }
}

/** Reads dataDir/master.key, creating it (mode 0600) on first start. */
export function loadOrCreateMasterKey(dataDir: string): { key: Buffer; created: boolean } {
  return loadOrCreateMasterKeyFile(path.join(dataDir, 'master.key'));
}

/**
 * Reads the master key file (BINDERY_MASTER_KEY_FILE, by default dataDir/master.key), creating
 * it on first start: 0600 in a 0700 directory. An existing file others may read is narrowed.
 */
export function loadOrCreateMasterKeyFile(file: string): { key: Buffer; created: boolean; tightened: boolean } {
  if (existsSync(file)) {
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
    if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte hex key`);
    const loose = (statSync(file).mode & 0o077) !== 0;
    if (loose) chmodSync(file, 0o600);
    return { key, created: false, tightened: loose };
  }
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  writeFileSync(file, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  return { key, created: true, tightened: false };
}
