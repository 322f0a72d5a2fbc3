import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadOrCreateMasterKey, SecretBox } from './secret-box.js';

/** The sealed form's bytes, for tampering: iv(12) ‖ tag(16) ‖ ciphertext. */
const raw = (sealed: string): Buffer => Buffer.from(sealed.slice(3), 'base64url');
const reseal = (bytes: Buffer): string => `v1.${bytes.toString('base64url')}`;

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));

  it('round-trips any text: empty, ASCII, unicode, long', () => {
    for (const plain of ['', 'a1b2c3d4e5f60718293a4b5c6d7e8f90', '设备密钥 ✓', 'x'.repeat(100_000)]) {
      const sealed = box.seal(plain);
      expect(sealed.startsWith('v1.')).toBe(true);
      expect(box.open(sealed)).toBe(plain);
    }
  });

  it('never shows the plain text and uses a fresh IV each time', () => {
    const plain = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    const sealed = Array.from({ length: 50 }, () => box.seal(plain));
    expect(new Set(sealed).size).toBe(50);
    expect(new Set(sealed.map((s) => raw(s).subarray(0, 12).toString('hex'))).size).toBe(50);
    for (const s of sealed) {
      expect(s).not.toContain(plain);
      expect(raw(s).toString('latin1')).not.toContain(plain);
      expect(raw(s)).toHaveLength(12 + 16 + plain.length);
    }
  });

  it('detects tampering: any flipped byte of IV, tag or ciphertext makes open() throw', () => {
    const sealed = box.seal('secret number');
    const bytes = raw(sealed);
    for (let i = 0; i < bytes.length; i++) {
      const t = Buffer.from(bytes);
      t[i] = t[i]! ^ 0x01;
      expect(() => box.open(reseal(t)), `byte ${i}`).toThrow();
    }
  });

  it('refuses truncated, extended and malformed values', () => {
    const sealed = box.seal('');
    const bytes = raw(sealed);
    // A shortened tag must not pass as a weaker one (GCM accepts 4–16 byte tags unless pinned).
    for (const len of [0, 11, 12, 16, 20, 27]) {
      expect(() => box.open(reseal(bytes.subarray(0, len))), `length ${len}`).toThrow();
    }
    expect(() => box.open(reseal(Buffer.concat([bytes, Buffer.from([0])])))).toThrow();
    expect(() => box.open('v2.' + sealed.slice(3))).toThrow(/unknown sealed format/);
    expect(() => box.open('plain text')).toThrow(/unknown sealed format/);
  });

  it('a different key cannot open it', () => {
    const sealed = box.seal('secret number');
    expect(() => new SecretBox(randomBytes(32)).open(sealed)).toThrow();
  });

  it('accepts only 32-byte keys', () => {
    for (const n of [0, 16, 31, 33, 64]) expect(() => new SecretBox(randomBytes(n))).toThrow(/32 bytes/);
  });
});

describe('loadOrCreateMasterKey', () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const d = mkdtempSync(path.join(tmpdir(), 'bindery-key-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('creates master.key (mode 0600) once, then reads the same key back', () => {
    const dataDir = path.join(tempDir(), 'nested', 'data'); // the data dir need not exist yet
    const first = loadOrCreateMasterKey(dataDir);
    expect(first.created).toBe(true);
    expect(first.key).toHaveLength(32);
    const file = path.join(dataDir, 'master.key');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toBe(`${first.key.toString('hex')}\n`);

    const second = loadOrCreateMasterKey(dataDir);
    expect(second.created).toBe(false);
    expect(second.key.equals(first.key)).toBe(true);
    // What one start sealed, the next start opens.
    expect(new SecretBox(second.key).open(new SecretBox(first.key).seal('kept'))).toBe('kept');
  });

  it('gives each data dir its own key', () => {
    expect(loadOrCreateMasterKey(tempDir()).key.equals(loadOrCreateMasterKey(tempDir()).key)).toBe(false);
  });

  it('refuses a master.key that does not hold a 32-byte hex key, and leaves it untouched', () => {
    const dir = tempDir();
    const file = path.join(dir, 'master.key');
    for (const content of ['', 'not hex at all', 'ab'.repeat(31), 'ab'.repeat(33)]) {
      writeFileSync(file, content);
      expect(() => loadOrCreateMasterKey(dir)).toThrow(/32-byte hex key/);
      expect(readFileSync(file, 'utf8')).toBe(content);
    }
  });

  it('reads a key file written by hand without a trailing newline', () => {
    const dir = tempDir();
    const key = randomBytes(32);
    writeFileSync(path.join(dir, 'master.key'), key.toString('hex'));
    chmodSync(path.join(dir, 'master.key'), 0o600);
    const got = loadOrCreateMasterKey(dir);
    expect(got.created).toBe(false);
    expect(got.key.equals(key)).toBe(true);
  });
});
