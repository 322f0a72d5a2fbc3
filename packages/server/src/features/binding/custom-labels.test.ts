import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../shared/principal.js';
import { SYSTEM_CLI } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import { acmeOrg, type Browser, login, PASSWORD, vendorWithModels } from '../people/people.fixture.js';

/** Issue 15 item 2: a model's custom label template is also how its labels are read (docs/labels.md). */
describe.each(storageBackends())('custom-format labels on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let models: Record<string, string>;
  let vendorId: string;
  let bob: Browser;
  const toMe = (b: Browser) => ({ type: 'user', id: b.userId });
  const patchModel = (modelId: string, payload: object) =>
    h.app.inject({ method: 'PATCH', url: `/api/v1/models/${modelId}`, headers: bearer(h.operatorToken), payload });
  const createModel = (vid: string, payload: object) =>
    h.app.inject({ method: 'POST', url: `/api/v1/vendors/${vid}/models`, headers: bearer(h.operatorToken), payload });

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    ({ vendorId, models } = await vendorWithModels(h, [
      { name: 'Acme Sensor', productKey: 'pkCL1' },
      { name: 'Acme Relay', productKey: 'pkCL2' },
    ]));
    expect((await patchModel(models.pkCL1!, { label_format: 'custom', label_template: 'ACME;{pk};{sn}' })).statusCode).toBe(200);
    await h.services.devices.register(SYSTEM_CLI, models.pkCL1!, 'CL0001');
    await h.services.devices.register(SYSTEM_CLI, models.pkCL2!, 'CL0002');
    await acmeOrg(h, 'cl');
    bob = await login(h.app, 'bob.cl', PASSWORD, '10.9.0.3');
  });
  afterAll(async () => {
    await h?.close();
  });

  it.skipIf(skip)('a custom-template label resolves and binds like a Quectel label: with the verification code', async () => {
    const content = 'ACME;pkCL1;CL0001';
    const resolved = await bob.req('POST', '/api/v1/scan/resolve', { content });
    expect(resolved.statusCode).toBe(200);
    expect(resolved.json()).toMatchObject({
      kind: 'quectel',
      validity: 'ok',
      action: 'bind',
      device: { sn: 'CL0001', model_id: models.pkCL1, requires_verif_code: true },
    });
    const noCode = await bob.req('POST', '/api/v1/bind', { content, owner: toMe(bob) });
    expect(noCode.json().error.code).toBe('VERIF_CODE_REQUIRED');
    const wrong = await bob.req('POST', '/api/v1/bind', { content, owner: toMe(bob), verif_code: '000000x' });
    expect(wrong.json().error.code).toBe('VERIF_CODE_WRONG');
    const code = await h.services.binding.verifCode(SYSTEM_CLI, 'CL0001');
    const ok = await bob.req('POST', '/api/v1/bind', { content, owner: toMe(bob), verif_code: code });
    expect(ok.statusCode).toBe(201);
    expect(ok.json()).toMatchObject({ sn: 'CL0001', result: 'bound', method: 'quectel' });
  });

  it.skipIf(skip)('the product key must be the device model’s; other text still answers as before', async () => {
    // CL0002 belongs to a model without the template: a label naming pkCL1 does not reach it.
    const otherModel = await bob.req('POST', '/api/v1/scan/resolve', { content: 'ACME;pkCL1;CL0002' });
    expect(otherModel.json()).toMatchObject({ kind: 'quectel', validity: 'unknown' });
    const otherPk = await bob.req('POST', '/api/v1/scan/resolve', { content: 'ACME;pkCL2;CL0002' });
    expect(otherPk.json()).toMatchObject({ kind: 'unknown', validity: 'invalid' });
    const junk = await bob.req('POST', '/api/v1/scan/resolve', { content: 'ACME;pkCL1' });
    expect(junk.json()).toMatchObject({ kind: 'unknown', validity: 'invalid' });
    // A template stored before the read-back rules (no {pk}) is printed but never read: "hello" stays unknown.
    await h.deps.db.kysely
      .updateTable('models')
      .set({ label_format: 'custom', label_template: '{sn}' })
      .where('model_id', '=', models.pkCL2!)
      .execute();
    expect((await bob.req('POST', '/api/v1/scan/resolve', { content: 'hello' })).json()).toMatchObject({ kind: 'unknown' });
    const bind = await bob.req('POST', '/api/v1/bind', { content: 'hello', owner: toMe(bob) });
    expect(bind.statusCode).toBe(400);
    expect(bind.json().error.code).toBe('VALIDATION_FAILED');
    expect(bind.json().error.message).toMatch(/not a URL/);
    // Renaming such a model does not trip over its old template.
    expect((await patchModel(models.pkCL2!, { name: 'Acme Relay 2' })).statusCode).toBe(200);
    expect((await patchModel(models.pkCL2!, { label_format: 'wecom' })).statusCode).toBe(200);
  });

  it.skipIf(skip)('a template without {pk} or {sn} is refused at save', async () => {
    for (const label_template of ['ACME;{sn}', 'ACME;{pk};{hw_code}']) {
      const r = await patchModel(models.pkCL2!, { label_format: 'custom', label_template });
      expect(r.statusCode).toBe(400);
      expect(r.json().error.code).toBe('VALIDATION_FAILED');
      expect(r.json().error.message).toMatch(/must contain \{pk\} and \{sn\}/);
    }
    const c = await createModel(vendorId, { name: 'No PK', label_format: 'custom', label_template: 'X;{sn}' });
    expect(c.json().error.code).toBe('VALIDATION_FAILED');
  });

  it.skipIf(skip)('templates that could read the same text are refused at save, naming the other model', async () => {
    // Reading "ACME;pkCL1;pkCL2" as SN "ACME" of pkCL2 and as SN "pkCL2" of pkCL1: refused.
    const fine1 = await patchModel(models.pkCL2!, { label_format: 'custom', label_template: 'ACME;pkCL1;{sn};{pk}' });
    expect(fine1.statusCode).toBe(200); // an SN has no ';', so no text is read by both
    expect((await patchModel(models.pkCL2!, { label_format: 'wecom' })).statusCode).toBe(200);
    const overlap = await patchModel(models.pkCL2!, { label_format: 'custom', label_template: '{sn};pkCL1;{pk}' });
    expect(overlap.statusCode).toBe(400);
    expect(overlap.json().error.code).toBe('VALIDATION_FAILED');
    expect(overlap.json().error.message).toContain(`could also be read as labels of model Acme Sensor (${models.pkCL1}`);
    expect(overlap.json().error.details).toMatchObject({ conflicting_model_id: models.pkCL1 });
    expect((await h.services.models.get(SYSTEM_CLI, models.pkCL2!)).label_format).toBe('wecom');
    // {pk} of another vendor's model reading "ACME" text: a template whose literal is its own pk.
    const other = await vendorWithModels(h, [{ name: 'Zeta', productKey: 'ACME' }]);
    const r = await patchModel(other.models.ACME!, { label_format: 'custom', label_template: '{pk};pkCL1;{sn}' });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.code).toBe('VALIDATION_FAILED');
    expect(r.json().error.message).toContain(`Acme Sensor (${models.pkCL1},`);
    // A vendor is told only that the clash is with another vendor's model.
    const asVendor: Principal = { kind: 'vendor_key', vendorId: other.vendorId, tokenId: 't' };
    await expect(
      h.services.models.update(asVendor, other.models.ACME!, { label_format: 'custom', label_template: '{pk};pkCL1;{sn}' }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining("another vendor's model") });
    // Creating one is refused the same way; a distinct literal is fine.
    const created = await createModel(vendorId, {
      name: 'Copy',
      product_key: 'ACMX',
      label_format: 'custom',
      label_template: '{sn};pkCL1;{pk}',
    });
    expect(created.statusCode).toBe(400);
    expect(created.json().error.message).toContain('Acme Sensor');
    const fine = await createModel(vendorId, { name: 'Other', label_format: 'custom', label_template: 'ACME;{pk};{sn}' });
    expect(fine.statusCode).toBe(201);
  });
});
