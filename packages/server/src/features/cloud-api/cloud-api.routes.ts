import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Services } from '../../services.js';

/**
 * The WeCom hardware cloud API (§B1–B2): POST JSON, tokens in the query, answers
 * {errcode, errmsg, …}. app.ts maps every AppError to errcode/errmsg on /cgi-bin paths.
 */
type Body = Record<string, unknown> | undefined;
const ok = <T extends object>(extra: T) => ({ errcode: 0, errmsg: 'ok', ...extra });

const cgi = { tags: ['wecom cloud api'], security: [] } as const;
/** Each route checks its own access token (http/gate.ts stays out). */
const ext = { access: 'external' } as const;

export function cloudApiRoutes(s: Services) {
  return async function cloudApi(app: FastifyInstance) {
    const modelPrincipal = (req: FastifyRequest) =>
      s.models.authenticateModelToken((req.query as Record<string, unknown>).model_access_token);
    const devicePrincipal = (req: FastifyRequest) =>
      s.deviceTokens.authenticateDevice((req.query as Record<string, unknown>).device_access_token);

    app.post<{ Body: Body }>(
      '/cgi-bin/openhw/get_model_token',
      { config: ext, schema: { ...cgi, summary: 'model_id + model_secret + model_ticket → model_access_token (7 200 s)' } },
      // errcode 0 / errmsg 'ok' like every other /cgi-bin reply (finding 10; WeCom clients also accept it absent).
      async (req) => ok(await s.models.issueModelToken(req.body ?? {})),
    );

    app.post<{ Body: Body }>(
      '/cgi-bin/openhw/model/register_sn',
      { config: ext, schema: { ...cgi, summary: "Register an SN under the token's model → qr_code (static bind URL)" } },
      async (req) => {
        const p = await modelPrincipal(req);
        const { device } = await s.devices.register(p, p.modelId, req.body?.device_sn);
        return ok({ qr_code: device.qr_code });
      },
    );

    app.post<{ Body: Body }>(
      '/cgi-bin/openhw/model/unregister_sn',
      { config: ext, schema: { ...cgi, summary: 'Delete an SN that is not bound' } },
      async (req) => {
        await s.devices.unregister(await modelPrincipal(req), req.body?.device_sn);
        return ok({});
      },
    );

    // ── §B1 device secrets and tokens ──
    app.post<{ Body: Body }>(
      '/cgi-bin/openhw/get_device_secret',
      {
        config: ext,
        schema: {
          ...cgi,
          summary: 'auth_code (bind callback, single use, 10 min) → device_secret + device_access_token (7 200 s)',
        },
      },
      async (req) => ok(await s.deviceTokens.exchangeAuthCode(await modelPrincipal(req), req.body?.auth_code)),
    );

    app.post<{ Body: Body }>(
      '/cgi-bin/openhw/get_device_token',
      { config: ext, schema: { ...cgi, summary: 'device_sn + device_secret → a fresh device_access_token (7 200 s)' } },
      async (req) =>
        ok(await s.deviceTokens.issueDeviceToken(await modelPrincipal(req), req.body?.device_sn, req.body?.device_secret)),
    );

    app.post<{ Body: Body }>(
      '/cgi-bin/openhw/device/gen_id_dynamic_qrcode',
      {
        config: ext,
        schema: {
          ...cgi,
          summary: 'device_sn + state → dynamic identity (bind) QR content, 300 s; 1/min per SN shared with dynamic login codes',
        },
      },
      async (req) => ok(await s.cloudDevices.genIdDynamicQrcode(await modelPrincipal(req), req.body ?? {})),
    );

    // ── §B3 device-scoped (device_access_token) ──
    app.post<{ Body: Body }>(
      '/cgi-bin/openhw/device/report_device_status',
      {
        config: ext,
        schema: { ...cgi, summary: 'online_status 1/2, cur_version, upgradable_version + upgradable_version_desc' },
      },
      async (req) => {
        await s.cloudDevices.reportStatus(await devicePrincipal(req), req.body ?? {});
        return ok({});
      },
    );

    app.post<{ Body: Body }>(
      '/cgi-bin/openhw/device/get_userinfo_by_page',
      { config: ext, schema: { ...cgi, summary: 'The people who may use the device: cursor, limit (≤ 200), only_perm_version' } },
      async (req) => ok(await s.cloudDevices.userinfoByPage(await devicePrincipal(req), req.body ?? {})),
    );

    app.post<{ Body: Body }>(
      '/cgi-bin/openhw/device/get_userinfo_by_ids',
      { config: ext, schema: { ...cgi, summary: 'user_item[{open_userid, user_type}] → those of them who may use the device' } },
      async (req) => ok(await s.cloudDevices.userinfoByIds(await devicePrincipal(req), req.body ?? {})),
    );

    app.post<{ Body: Body }>(
      '/cgi-bin/openhw/device/report_firmware_upgrade_result',
      { config: ext, schema: { ...cgi, summary: 'oper_id, errcode (0 ok), errmsg, cur_version' } },
      async (req) => {
        await s.cloudDevices.firmwareResult(await devicePrincipal(req), req.body ?? {});
        return ok({});
      },
    );

    app.post<{ Body: Body }>(
      '/cgi-bin/openhw/device/gen_login_qrcode',
      {
        config: ext,
        schema: {
          ...cgi,
          summary: 'Seed 000: type 0 static / 1 dynamic (300 s) management QR content carrying state; 1/min per SN per type',
        },
      },
      async (req) => ok(await s.cloudDevices.genLoginQrcode(await devicePrincipal(req), req.body ?? {})),
    );

    app.post<{ Body: Body }>(
      '/cgi-bin/openhw/device/get_device_detail',
      { config: ext, schema: { ...cgi, summary: 'model_name, default_name, qr_code, bind_status, auth_corp_info, remark_name' } },
      async (req) => ok({ device_detail: await s.devices.detail(await modelPrincipal(req), req.body?.device_sn) }),
    );
  };
}
