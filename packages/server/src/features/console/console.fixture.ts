import { SYSTEM_CLI } from '../../shared/principal.js';
import { sqliteBackend } from '../../testing/backends.js';
import { type Harness, startHarness } from '../../testing/harness.js';
import { acmeOrg, type OrgFixture, PASSWORD, vendorWithModels } from '../people/people.fixture.js';

/**
 * A world for the console's browser tests (and for looking at the console by hand): the real app
 * on SQLite with the real clock (dynamic QR codes are signed "now"), listening on 127.0.0.1, with
 * a vendor, two models, registered devices, organisation Acme (people.fixture) and firmware.
 */
export interface ConsoleWorld {
  h: Harness;
  baseUrl: string;
  org: OrgFixture;
  /** Organisation whose members may bind. */
  openOrg: OrgFixture;
  models: Record<string, string>;
  devices: Map<string, { secretNo: string; hwCode: string; id: number }>;
  password: string;
  close(): Promise<void>;
}

export const CONSOLE_SNS = ['CON0001', 'CON0002', 'CON0003', 'CON0004', 'CON0005', 'CON0006', 'CON0007', 'CON0008'];
export const CODE_SN = 'VER0001';

export async function startConsoleWorld(): Promise<ConsoleWorld> {
  // http public URL: session cookies are not Secure, so the browser sends them to http://127.0.0.1.
  const h = await startHarness(sqliteBackend, { realClock: true, config: { BINDERY_PUBLIC_URL: 'http://127.0.0.1:8080' } });
  try {
    const { models } = await vendorWithModels(h, [
      { name: 'Smart Door Lock S2', productKey: 'pkLock' },
      { name: 'Meeting Room Screen', productKey: 'pkCode' },
    ]);
    // The lock model takes a typed SN alone (its vendor chose "SN only", low security); the
    // meeting-room model keeps the default, the verification code (issue 11).
    await h.services.binding.putBindSettings(SYSTEM_CLI, models.pkLock!, { typedSnMode: 'sn_only' });
    await h.services.binding.putBindSettings(SYSTEM_CLI, models.pkCode!, { typedSnMode: 'verif_code' });
    const devices = new Map<string, { secretNo: string; hwCode: string; id: number }>();
    const register = async (modelId: string, sn: string) => {
      const r = await h.services.devices.register(SYSTEM_CLI, modelId, sn);
      const row = await h.deps.db.kysely.selectFrom('devices').select('id').where('sn', '=', sn).executeTakeFirstOrThrow();
      devices.set(sn, { secretNo: r.secret_no, hwCode: r.device.hw_code, id: Number(row.id) });
    };
    for (const sn of CONSOLE_SNS) await register(models.pkLock!, sn);
    await register(models.pkCode!, CODE_SN);
    await h.services.firmware.publishUrl(SYSTEM_CLI, models.pkLock!, {
      version: '2.4.0',
      download_url: 'https://firmware.example/lock-2.4.0.bin',
      md5sum: '0123456789abcdef0123456789abcdef',
      size: 1_048_576,
      make_current: true,
    });
    const con3 = devices.get('CON0003')!;
    await h.services.deviceLogs.recordError(SYSTEM_CLI, { id: con3.id, sn: 'CON0003' }, 600010, 'door motor stalled');
    const org = await acmeOrg(h, 'con');
    const openOrg = await acmeOrg(h, 'open', { memberBinding: true });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const addr = h.app.server.address();
    if (!addr || typeof addr === 'string') throw new Error('no listening address');
    return {
      h,
      baseUrl: `http://127.0.0.1:${addr.port}`,
      org,
      openOrg,
      models,
      devices,
      password: PASSWORD,
      close: () => h.close(),
    };
  } catch (e) {
    await h.close();
    throw e;
  }
}
