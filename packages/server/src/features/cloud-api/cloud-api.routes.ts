import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Services } from '../../services.js';

/**
 * The WeCom hardware cloud API (§B1–B2): POST JSON, tokens in the query, answers
 * {errcode, errmsg, …}. app.ts maps every AppError to errcode/errmsg on /cgi-bin paths.
 */
type Body = Record<string, unknown> | undefined;
const ok = <T extends object>(extra: T) => ({ errcode: 0, errmsg: 'ok', ...extra });

const cgi = { tags: ['wecom cloud api'], security: [] } as const;

export function cloudApiRoutes(s: Services) {
  return async function cloudApi(app: FastifyInstance) {
    const modelPrincipal = (req: FastifyRequest) =>
      s.models.authenticateModelToken((req.query as Record<string, unknown>).model_access_token);

    app.post<{ Body: Body }>(
      '/cgi-bin/openhw/get_model_token',
      { schema: { ...cgi, summary: 'model_id + model_secret + model_ticket → model_access_token (7 200 s)' } },
      async (req) => s.models.issueModelToken(req.body ?? {}),
    );

    app.post<{ Body: Body }>(
      '/cgi-bin/openhw/model/register_sn',
      { schema: { ...cgi, summary: "Register an SN under the token's model → qr_code (static bind URL)" } },
      async (req) => {
        const p = await modelPrincipal(req);
        const { device } = await s.devices.register(p, p.modelId, req.body?.device_sn);
        return ok({ qr_code: device.qr_code });
      },
    );

    app.post<{ Body: Body }>(
      '/cgi-bin/openhw/model/unregister_sn',
      { schema: { ...cgi, summary: 'Delete an SN that is not bound' } },
      async (req) => {
        await s.devices.unregister(await modelPrincipal(req), req.body?.device_sn);
        return ok({});
      },
    );

    app.post<{ Body: Body }>(
      '/cgi-bin/openhw/device/get_device_detail',
      { schema: { ...cgi, summary: 'model_name, default_name, qr_code, bind_status, auth_corp_info, remark_name' } },
      async (req) => ok({ device_detail: await s.devices.detail(await modelPrincipal(req), req.body?.device_sn) }),
    );
  };
}
