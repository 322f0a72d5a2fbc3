import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FleetDeviceSpec } from '@bindery/sdk/sim/fleet.js';
import { buildServices, closeDeps, composeDeps, loadConfig, SYSTEM_CLI } from '@bindery/server';
import { activeCodeColumns } from '@bindery/server/adapters/secrets/active-code.js';
import { newActiveCode, newHwCode } from '@bindery/server/shared/ids.js';
import { Redis } from 'ioredis';
import pg from 'pg';

export interface Provisioned {
  /** BINDERY_* env for every server process of this run (same database, key, Redis prefix). */
  env: Record<string, string>;
  /** Bound devices (active returns their secret) then unbound ones. */
  bound: FleetDeviceSpec[];
  unbound: FleetDeviceSpec[];
  operatorToken: string;
  orgId: string;
  modelId: string;
  cleanup(): Promise<void>;
}

const PG_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * A fresh Bindery database for one benchmark run, filled the way a factory would: one vendor and
 * model, `bound` devices already bound to an organisation (so `active` hands out their secret at
 * once) and `unbound` ones waiting for a person, all inserted in bulk with their SecretNos sealed
 * under this run's master key. PostgreSQL runs get their own schema and Redis key prefix.
 */
export async function provision(opts: {
  backend: 'sqlite' | 'postgres';
  /** Redis bus and presence (needed as soon as there is more than one server process); implied by postgres. */
  redis?: boolean;
  bound: number;
  unbound?: number;
  snPrefix?: string;
  /**
   * The bound devices registered and activated long ago (a fleet in the field): `register` and
   * `active` then answer without their first-time writes, as for every later connection of a device.
   */
  activated?: boolean;
}): Promise<Provisioned> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'bindery-bench-'));
  const tag = randomBytes(5).toString('hex');
  const env: Record<string, string> = {
    BINDERY_DATA_DIR: dataDir,
    BINDERY_MASTER_KEY: randomBytes(32).toString('hex'),
    BINDERY_PUBLIC_URL: 'http://127.0.0.1:8080',
    BINDERY_LOG_LEVEL: 'warn',
  };
  let schema: string | null = null;
  const redis = opts.redis || opts.backend === 'postgres';
  if (redis) {
    env.REDIS_URL = REDIS_URL;
    env.BINDERY_REDIS_PREFIX = `bench_${tag}`;
  } else {
    // One process on its in-process bus and limits, even when the shell has REDIS_URL set (it
    // would otherwise reach the server through the inherited environment, under no run prefix).
    env.REDIS_URL = '';
  }
  // Likewise a SQLite run's server must not pick up the shell's DATABASE_URL: it would serve the
  // shared database's default schema, where none of this run's devices exist.
  if (opts.backend === 'sqlite') env.DATABASE_URL = '';
  if (opts.backend === 'postgres') {
    schema = `bench_${tag}`;
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`CREATE SCHEMA ${schema}`);
    await c.end();
    const u = new URL(PG_URL);
    u.searchParams.set('options', `-c search_path=${schema}`);
    env.DATABASE_URL = u.toString();
  }
  const cleanup = async () => {
    rmSync(dataDir, { recursive: true, force: true });
    if (schema) {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    }
    if (redis) {
      const r = new Redis(REDIS_URL);
      for (;;) {
        const keys = await r.keys(`bench_${tag}:*`);
        if (keys.length === 0) break;
        for (let i = 0; i < keys.length; i += 1000) await r.del(...keys.slice(i, i + 1000));
      }
      await r.quit();
    }
  };

  try {
    const deps = await composeDeps(loadConfig(env), { migrate: true });
    const s = buildServices(deps);
    const vendor = await s.vendors.create(SYSTEM_CLI, { name: 'Bench Vendor' });
    const modelId = (await s.models.create(SYSTEM_CLI, vendor.id, { name: 'Bench Terminal' })).model.model_id;
    const orgId = `org_bench${tag}`;
    await deps.db.kysely
      .insertInto('organisations')
      .values({ id: orgId, name: 'Bench Corp', parent_id: null, mchid: null, merchant_shortname: null, created_at: 0 })
      .execute();
    const { token } = await s.accounts.createOperator(null, { username: `bench${tag}`, password: 'bench password 1' });

    const prefix = opts.snPrefix ?? `B${tag.toUpperCase()}`;
    const now = Date.now();
    const bound: FleetDeviceSpec[] = [];
    const unbound: FleetDeviceSpec[] = [];
    const total = opts.bound + (opts.unbound ?? 0);
    const CHUNK = 500;
    for (let at = 0; at < total; at += CHUNK) {
      const rows = [];
      for (let i = at; i < Math.min(total, at + CHUNK); i++) {
        const sn = `${prefix}${String(i).padStart(7, '0')}`;
        const secretNo = randomBytes(16).toString('hex');
        const isBound = i < opts.bound;
        (isBound ? bound : unbound).push({ sn, secretNo });
        rows.push({
          sn,
          sn_key: sn.toLowerCase(),
          model_id: modelId,
          vendor_id: vendor.id,
          secret_no_enc: deps.secrets.seal(secretNo),
          hw_code: newHwCode(),
          state: 'registered',
          registered_at: now,
          online: 0,
          secret_enc: isBound ? deps.secrets.seal(randomBytes(16).toString('hex')) : null,
          owner_type: isBound ? 'org' : null,
          owner_id: isBound ? orgId : null,
          bound_at: isBound ? now : null,
          bound_by: isBound ? 'bench' : null,
          ...(isBound && opts.activated ? { activated_at: now, registered_net_at: now } : {}),
          // As DevicesService.newDeviceRow does: the active_code is minted with the device, stored hashed and sealed.
          ...activeCodeColumns(deps.secrets, newActiveCode()),
        });
      }
      await deps.db.kysely.insertInto('devices').values(rows).execute();
    }
    await closeDeps(deps);
    return { env, bound, unbound, operatorToken: token, orgId, modelId, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
