import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KyselyDevicesRepo, type NewDevice } from '../../features/devices/devices.repo.js';
import type { TestBackend } from '../../testing/backends.js';
import type { Db, DbOptions } from './database.js';
import { migrationsFor, registerMigration } from './migrations/index.js';

/**
 * The behaviour the storage layer must have on every backend: the repositories that exist,
 * unique violations as `caps` reports them, transactions, and migrations (repeated and
 * concurrent). Each case states the rule; the same code runs on SQLite and PostgreSQL.
 */
export interface FreshDatabase {
  /** How to reach the empty database, as a server process would be told. */
  options: DbOptions;
  /** Opens another handle (its own connections) on it. */
  open(): Db;
  /** Removes the database and everything in it. */
  drop(): Promise<void>;
}

let seq = 0;

const PROBE = '999_contract_probe';
let failProbe = false;
const probeStep = {
  async up(db: Kysely<unknown>): Promise<void> {
    if (!failProbe) return;
    await db.schema.createTable('contract_probe').addColumn('id', 'integer').execute();
    throw new Error('the probe step fails on purpose');
  },
};

const migrateChild = fileURLToPath(new URL('../../../test/support/migrate-child.ts', import.meta.url));

/**
 * Starts `n` real processes on one database and lets them migrate at the same moment: each opens
 * its connection and reports ready, then all are told to go together.
 */
async function migrateInProcesses(options: DbOptions, n: number): Promise<Array<{ code: number | null; stderr: string }>> {
  const children = Array.from({ length: n }, () => {
    const child = spawn(process.execPath, ['--import', 'tsx', migrateChild, JSON.stringify(options)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('ready')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`migrate child exited (${code}) before ready: ${stderr}`)));
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => {
      child.once('exit', (code) => resolve({ code, stderr }));
    });
    return { child, ready, exited };
  });
  await Promise.all(children.map((c) => c.ready));
  for (const c of children) c.child.stdin.end('go\n');
  return Promise.all(children.map((c) => c.exited));
}

export function storageContract(
  backend: TestBackend,
  freshDatabase: () => Promise<FreshDatabase>,
  skip: string | undefined,
): void {
  describe(`storage contract on ${backend.name}`, () => {
    let db: Db;
    let cleanup: (() => Promise<void>) | undefined;
    let repo: KyselyDevicesRepo;
    const now = Date.UTC(2026, 10, 21, 12, 0, 0);

    beforeAll(async () => {
      if (skip) return;
      ({ db, cleanup } = await backend.open());
      repo = new KyselyDevicesRepo(db.kysely, db.caps);
      const k = db.kysely;
      await k
        .insertInto('vendors')
        .values([
          { id: 'ven_1', name: 'Acme', created_at: now },
          { id: 'ven_2', name: 'Other', created_at: now },
        ])
        .execute();
      const model = (model_id: string, vendor_id: string) => ({
        model_id,
        vendor_id,
        name: model_id,
        product_key: `pk_${model_id}`,
        category_code: '2',
        class_code: '101',
        secret_hash: 'x',
        seed_secret_no_enc: null,
        label_format: 'wecom',
        label_template: null,
        binding_mode: 'owner_only',
        require_check_char: 0,
        created_at: now,
      });
      await k
        .insertInto('models')
        .values([model('mod_1', 'ven_1'), model('mod_2', 'ven_1'), model('mod_3', 'ven_2')])
        .execute();
      await k
        .insertInto('batches')
        .values({
          id: 'bat_1',
          model_id: 'mod_1',
          vendor_id: 'ven_1',
          count: 2,
          pattern: 'B{seq}',
          state: 'done',
          error: null,
          downloads: 0,
          created_at: now,
          finished_at: now,
        })
        .execute();
    });
    afterAll(async () => {
      await cleanup?.();
    });

    /** A device row; every call gets its own hw_code. */
    const device = (sn: string, over: Partial<NewDevice> = {}): NewDevice => ({
      sn,
      sn_key: sn.toLowerCase(),
      model_id: 'mod_1',
      vendor_id: 'ven_1',
      secret_no_enc: 'v1.sealed',
      hw_code: `hw_${backend.name}_${++seq}`,
      state: 'registered',
      registered_at: now,
      online: 0,
      ...over,
    });
    const count = async (): Promise<number> => {
      const r = await db.kysely
        .selectFrom('devices')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .executeTakeFirstOrThrow();
      return Number(r.n);
    };
    /** The error a promise rejects with (fails the case if it resolves). */
    const rejection = async (p: Promise<unknown>): Promise<unknown> => {
      try {
        await p;
      } catch (e) {
        return e;
      }
      throw new Error('expected the operation to fail');
    };

    it.skipIf(skip)('insert returns the stored row with a fresh, increasing id', async () => {
      const a = await repo.insert(device('INS1'));
      const b = await repo.insert(device('INS2', { camera_sn: 'CAM-1' }));
      expect(typeof a.id).toBe('number');
      expect(b.id).toBeGreaterThan(a.id);
      expect(b).toMatchObject({ sn: 'INS2', sn_key: 'ins2', camera_sn: 'CAM-1', online: 0, owner_id: null });
      // Epoch-millisecond BIGINTs come back as numbers on both backends.
      expect(b.registered_at).toBe(now);
    });

    it.skipIf(skip)('insertMany stores 3 000 rows over several chunks', async () => {
      const rows = Array.from({ length: 3000 }, (_, i) => device(`BULK${String(i).padStart(5, '0')}`, { batch_id: null }));
      const perChunk = db.caps.insertChunk(Object.keys(rows[0]!).length);
      expect(perChunk).toBeLessThan(rows.length); // so this really spans several statements
      const before = await count();
      await repo.insertMany(rows);
      expect(await count()).toBe(before + 3000);
      const found = await repo.findBySnKeys(rows.map((r) => r.sn_key));
      expect(new Set(found.map((f) => f.sn_key))).toEqual(new Set(rows.map((r) => r.sn_key)));
      await expect(repo.insertMany([])).resolves.toBeUndefined();
    });

    it.skipIf(skip)('findBySn ignores case', async () => {
      const d = await repo.insert(device('HSA1RF5A0700165'));
      for (const q of ['HSA1RF5A0700165', 'hsa1rf5a0700165', 'hSa1Rf5A0700165']) {
        expect((await repo.findBySn(q))?.id).toBe(d.id);
      }
      expect(await repo.findBySn('HSA1RF5A070016')).toBeUndefined();
    });

    it.skipIf(skip)('findBySnKeys returns the keys that exist, with their device key and model', async () => {
      await repo.insert(device('KEYS1', { device_key: '86123', device_key_norm: '86123' }));
      await repo.insert(device('KEYS2', { model_id: 'mod_2' }));
      const got = await repo.findBySnKeys(['keys1', 'keys2', 'keys-missing']);
      expect(got.sort((x, y) => x.sn_key.localeCompare(y.sn_key))).toEqual([
        { sn_key: 'keys1', device_key_norm: '86123', model_id: 'mod_1' },
        { sn_key: 'keys2', device_key_norm: null, model_id: 'mod_2' },
      ]);
      expect(await repo.findBySnKeys([])).toEqual([]);
    });

    it.skipIf(skip)('findByHwCode matches exactly (hw_codes are case-sensitive)', async () => {
      const d = await repo.insert(device('HW1', { hw_code: 'AbCdEfGhIjKlMnOpQrStUv' }));
      expect((await repo.findByHwCode('AbCdEfGhIjKlMnOpQrStUv'))?.id).toBe(d.id);
      expect(await repo.findByHwCode('abcdefghijklmnopqrstuv')).toBeUndefined();
      expect(await repo.findByHwCode('AbCdEfGhIjKlMnOpQrStU')).toBeUndefined();
    });

    it.skipIf(skip)(
      'list filters by vendor, model and batch, searches SN and device key by prefix, and pages by SN key',
      async () => {
        const made = [];
        made.push(await repo.insert(device('LST-A1', { vendor_id: 'ven_2', model_id: 'mod_3' })));
        made.push(await repo.insert(device('LSTB2', { vendor_id: 'ven_2', model_id: 'mod_3', device_key_norm: 'imei8612' })));
        made.push(await repo.insert(device('LSTC3', { vendor_id: 'ven_2', model_id: 'mod_3' })));
        made.push(await repo.insert(device('LSTXB', { vendor_id: 'ven_2', model_id: 'mod_3' })));
        const b1 = await repo.insert(device('BATCHED1', { batch_id: 'bat_1' }));
        const b2 = await repo.insert(device('BATCHED2', { batch_id: 'bat_1' }));

        const sns = (rows: Array<{ sn: string }>) => rows.map((r) => r.sn);
        expect(sns(await repo.list({ vendorId: 'ven_2', limit: 100 }))).toEqual(['LST-A1', 'LSTB2', 'LSTC3', 'LSTXB']);
        expect(sns(await repo.list({ modelId: 'mod_3', limit: 100 }))).toEqual(['LST-A1', 'LSTB2', 'LSTC3', 'LSTXB']);
        expect((await repo.list({ modelId: 'mod_2', vendorId: 'ven_2', limit: 100 })).length).toBe(0);
        expect(sns(await repo.list({ batchId: 'bat_1', limit: 100 }))).toEqual(['BATCHED1', 'BATCHED2']);
        expect((await repo.list({ batchId: 'bat_1', limit: 100 })).map((r) => r.id)).toEqual([b1.id, b2.id]);

        // Prefix search, case-insensitive, on the SN or the normalised device key.
        expect(sns(await repo.list({ vendorId: 'ven_2', search: 'lstc', limit: 100 }))).toEqual(['LSTC3']);
        expect(sns(await repo.list({ vendorId: 'ven_2', search: 'IMEI86', limit: 100 }))).toEqual(['LSTB2']);
        expect(sns(await repo.list({ vendorId: 'ven_2', search: 'STC', limit: 100 }))).toEqual([]);
        // LIKE wildcards in the query are not wildcards: "lst_b" is not "lst?b".
        expect(sns(await repo.list({ vendorId: 'ven_2', search: 'lst_b', limit: 100 }))).toEqual(['LSTB2']);
        expect(sns(await repo.list({ vendorId: 'ven_2', search: 'l%3', limit: 100 }))).toEqual([]);

        // Keyset pages: ordered by SN key, each page continues after the last key of the previous one.
        const p1 = await repo.list({ vendorId: 'ven_2', limit: 3 });
        expect(sns(p1)).toEqual(['LST-A1', 'LSTB2', 'LSTC3']);
        const p2 = await repo.list({ vendorId: 'ven_2', limit: 3, after: p1.at(-1)!.sn_key });
        expect(sns(p2)).toEqual(['LSTXB']);
        expect(await repo.list({ vendorId: 'ven_2', limit: 3, after: p2.at(-1)!.sn_key })).toEqual([]);
        expect(made.map((m) => m.id)).toEqual([...p1, ...p2].map((r) => r.id));
      },
    );

    it.skipIf(skip)('deleteById removes that row only', async () => {
      const a = await repo.insert(device('DEL1'));
      const b = await repo.insert(device('DEL2'));
      await repo.deleteById(a.id);
      expect(await repo.findBySn('DEL1')).toBeUndefined();
      expect((await repo.findBySn('DEL2'))?.id).toBe(b.id);
      await expect(repo.deleteById(a.id)).resolves.toBeUndefined();
      // The freed SN can be registered again.
      expect((await repo.insert(device('del1'))).id).toBeGreaterThan(b.id);
    });

    it.skipIf(skip)(
      'caps.skipLockedRows: a bulk update takes the rows no other transaction holds, without waiting for it',
      async () => {
        for (const sn of ['LOCK1', 'LOCK2', 'LOCK3']) await repo.insert(device(sn, { online: 1 }));
        const k = db.kysely;
        const bulk = () =>
          k
            .updateTable('devices')
            .set({ online: 0 })
            .where('id', 'in', db.caps.skipLockedRows(k.selectFrom('devices').select('id').where('sn', 'like', 'LOCK%')))
            .executeTakeFirst();
        const online = async () =>
          (await k.selectFrom('devices').select(['sn', 'online']).where('sn', 'like', 'LOCK%').orderBy('sn').execute()).map(
            (r) => `${r.sn}:${r.online}`,
          );
        if (db.caps.backend === 'sqlite') {
          // One writer at a time: no other transaction can hold a row while this one writes.
          expect(Number((await bulk()).numUpdatedRows)).toBe(3);
          expect(await online()).toEqual(['LOCK1:0', 'LOCK2:0', 'LOCK3:0']);
          return;
        }
        // Another transaction is writing LOCK1 and has not committed: the bulk update passes it by.
        let locked!: () => void;
        let release!: () => void;
        const isLocked = new Promise<void>((r) => (locked = r));
        const held = new Promise<void>((r) => (release = r));
        const writer = k.transaction().execute(async (trx) => {
          await trx.updateTable('devices').set({ last_seen_at: now }).where('sn', '=', 'LOCK1').execute();
          locked();
          await held;
        });
        await isLocked;
        try {
          expect(Number((await bulk()).numUpdatedRows)).toBe(2);
        } finally {
          release();
          await writer;
        }
        expect(await online()).toEqual(['LOCK1:1', 'LOCK2:0', 'LOCK3:0']);
      },
    );

    it.skipIf(skip)('caps.isUniqueViolation recognises duplicate sn_key and hw_code, and nothing else', async () => {
      const first = await repo.insert(device('UNIQ1'));
      const dupSn = await rejection(repo.insert(device('uniq1')));
      expect(db.caps.isUniqueViolation(dupSn)).toBe(true);
      const dupHw = await rejection(repo.insert(device('UNIQ2', { hw_code: first.hw_code })));
      expect(db.caps.isUniqueViolation(dupHw)).toBe(true);
      const dupInMany = await rejection(repo.insertMany([device('UNIQ3'), device('UNIQ3')]));
      expect(db.caps.isUniqueViolation(dupInMany)).toBe(true);

      const badModel = await rejection(repo.insert(device('FK1', { model_id: 'mod_missing' })));
      expect(db.caps.isUniqueViolation(badModel)).toBe(false);
      const notNull = await rejection(
        db.kysely
          .insertInto('devices')
          .values({ ...device('NN1'), state: null as unknown as string })
          .execute(),
      );
      expect(db.caps.isUniqueViolation(notNull)).toBe(false);
      for (const other of [new Error('unique'), null, undefined, 'SQLITE_CONSTRAINT_UNIQUE', { code: 23505 }]) {
        expect(db.caps.isUniqueViolation(other)).toBe(false);
      }
      // None of the failed writes left a row.
      expect(await repo.findBySn('UNIQ2')).toBeUndefined();
      expect(await repo.findBySn('UNIQ3')).toBeUndefined();
      expect(await repo.findBySn('FK1')).toBeUndefined();
    });

    it.skipIf(skip)('hundreds of queries in flight with transactions among them all answer, each in isolation', async () => {
      // A fleet powering on: many short reads at once, batched writes in transactions between
      // them, one of which fails. Nothing may hang, leak a half-done write or see one.
      const before = await count();
      const boom = new Error('roll this one back');
      const work: Array<Promise<unknown>> = [];
      for (let i = 0; i < 600; i++) {
        if (i % 150 === 75) {
          const batch = Array.from({ length: 20 }, (_, j) => device(`FLT${i}_${j}`));
          const fail = i === 225;
          work.push(
            db.kysely
              .transaction()
              .execute(async (trx) => {
                await repo.with(trx).insertMany(batch);
                // Inside: all 20 or none, whatever ran outside meanwhile.
                expect(await repo.with(trx).findBySnKeys(batch.map((b) => b.sn_key))).toHaveLength(20);
                if (fail) throw boom;
              })
              .then(
                () => 'committed',
                (e: unknown) => (e === boom ? 'rolled back' : Promise.reject(e)),
              ),
          );
        } else {
          work.push(
            repo.findBySnKeys(['flt75_0', 'flt75_19', 'flt225_0']).then((rows) => {
              const sns = rows.map((r) => r.sn_key);
              // Never half a batch, and never the rolled-back one.
              expect(sns.includes('flt75_0')).toBe(sns.includes('flt75_19'));
              expect(sns).not.toContain('flt225_0');
            }),
          );
        }
      }
      const outcomes = (await Promise.all(work)).filter((x) => typeof x === 'string');
      expect(outcomes).toEqual(['committed', 'rolled back', 'committed', 'committed']);
      expect(await count()).toBe(before + 60);
    });

    it.skipIf(skip)('a transaction that throws leaves nothing behind', async () => {
      const before = await count();
      const boom = new Error('stop after writing');
      const err = await rejection(
        db.kysely.transaction().execute(async (trx) => {
          const r = repo.with(trx);
          await r.insertMany(Array.from({ length: 2500 }, (_, i) => device(`TX${i}`)));
          await r.insert(device('TXLAST'));
          expect(await r.findBySn('TXLAST')).toBeDefined(); // visible inside the transaction
          throw boom;
        }),
      );
      expect(err).toBe(boom);
      expect(await count()).toBe(before);
      expect(await repo.findBySn('TX0')).toBeUndefined();
    });

    it.skipIf(skip)(
      'a transaction failing on a unique violation in its last chunk keeps none of the earlier chunks',
      async () => {
        const taken = await repo.insert(device('TAKEN1'));
        const before = await count();
        const rows = Array.from({ length: 2500 }, (_, i) => device(`TXU${i}`));
        rows.push(device('taken1'));
        const err = await rejection(db.kysely.transaction().execute((trx) => repo.with(trx).insertMany(rows)));
        expect(db.caps.isUniqueViolation(err)).toBe(true);
        expect(await count()).toBe(before);
        expect((await repo.findBySn('TAKEN1'))?.id).toBe(taken.id);
        // The connection is usable afterwards (the failed transaction was rolled back, not left open).
        expect((await repo.insert(device('AFTERTX'))).sn).toBe('AFTERTX');
      },
    );

    it.skipIf(skip)('migrate() a second time is a no-op that keeps the data', async () => {
      const before = await count();
      const applied = async () =>
        (
          await db.kysely
            .selectFrom('bindery_migrations' as never)
            .select('name' as never)
            .execute()
        ).map((r) => (r as { name: string }).name);
      const first = await applied();
      await db.migrate();
      await db.migrate();
      expect(await applied()).toEqual(first);
      expect([...first].sort()).toEqual(Object.keys(migrationsFor(db.caps)).sort());
      expect(await count()).toBe(before);
    });

    it.skipIf(skip)('a migration run that fails part-way leaves no half-made tables', async () => {
      // Registered once per process; it only fails (after creating a table) while `failProbe` is set.
      registerMigration(PROBE, probeStep);
      const fresh = await freshDatabase();
      const h = fresh.open();
      try {
        failProbe = true;
        await expect(h.migrate()).rejects.toThrow(/999_contract_probe/);
        failProbe = false;
        // None of the tables the run created survived (introspection would list other schemas too, so ask directly).
        for (const table of ['users', 'devices', 'contract_probe', 'bindery_migrations']) {
          await expect(
            h.kysely
              .selectFrom(table as 'users')
              .select('id')
              .execute(),
            table,
          ).rejects.toThrow();
        }
        // Fixed, it migrates from the start.
        await h.migrate();
        expect(await h.kysely.selectFrom('devices').select('id').execute()).toEqual([]);
      } finally {
        failProbe = false;
        await h.close();
        await fresh.drop();
      }
    });

    it.skipIf(skip)('two processes migrating one fresh database at once both succeed, each step applied once', async () => {
      const fresh = await freshDatabase();
      try {
        const outcomes = await migrateInProcesses(fresh.options, 2);
        expect(outcomes).toEqual([
          { code: 0, stderr: '' },
          { code: 0, stderr: '' },
        ]);
        const one = fresh.open();
        const two = fresh.open();
        try {
          const names = (
            await one.kysely
              .selectFrom('bindery_migrations' as never)
              .select('name' as never)
              .execute()
          ).map((r) => (r as { name: string }).name);
          // (The children never register this file's probe step.)
          const expected = Object.keys(migrationsFor(one.caps)).filter((n) => n !== PROBE);
          expect(names.sort()).toEqual(expected.sort());
          // The schema is complete and usable from either handle.
          await one.kysely.insertInto('vendors').values({ id: 'ven_f', name: 'Fresh', created_at: now }).execute();
          const seen = await two.kysely.selectFrom('vendors').select('name').where('id', '=', 'ven_f').executeTakeFirst();
          expect(seen?.name).toBe('Fresh');
        } finally {
          await Promise.allSettled([one.close(), two.close()]);
        }
      } finally {
        await fresh.drop();
      }
    });
  });
}
