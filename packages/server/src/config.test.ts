import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('config', () => {
  it('starts with nothing set: port 8080, SQLite in ./data, in-process bus', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.publicUrl).toBe('http://localhost:8080');
    expect(c.databaseUrl).toBeNull();
    expect(c.redisUrl).toBeNull();
    expect(c.sqlitePath).toMatch(/data\/bindery\.sqlite$/);
    expect(c.masterKey).toBeNull();
  });

  it('derives the public URL from the port and strips trailing slashes from a given one', () => {
    expect(loadConfig({ BINDERY_PORT: '9000' }).publicUrl).toBe('http://localhost:9000');
    expect(loadConfig({ BINDERY_PUBLIC_URL: 'https://hw.example.com/' }).publicUrl).toBe('https://hw.example.com');
  });

  it('reports every problem at once', () => {
    try {
      loadConfig({
        BINDERY_PORT: 'eighty',
        DATABASE_URL: 'mysql://x',
        REDIS_URL: 'http://x',
        BINDERY_MASTER_KEY: 'short',
        BINDERY_PUBLIC_URL: 'not a url',
        BINDERY_TLS_CERT: '/x.pem',
      });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const problems = (e as ConfigError).problems;
      expect(problems).toHaveLength(6);
      expect(problems.join('\n')).toMatch(/BINDERY_PORT.*eighty/);
      expect(problems.join('\n')).toMatch(/DATABASE_URL/);
      expect(problems.join('\n')).toMatch(/BINDERY_TLS_CERT and BINDERY_TLS_KEY/);
    }
  });

  it('accepts a hex master key', () => {
    const c = loadConfig({ BINDERY_MASTER_KEY: 'ab'.repeat(32), DATABASE_URL: 'postgres://u@h/db' });
    expect(c.masterKey?.length).toBe(32);
    expect(c.databaseUrl).toBe('postgres://u@h/db');
  });
});
