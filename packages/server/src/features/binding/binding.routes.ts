import { createReadStream } from 'node:fs';
import { staticLoginUrl } from '@bindery/protocol';
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import type { OwnerType } from '../../shared/domain-events.js';
import type { Owner } from './binding.service.js';
import { deviceCard, devicePageOf } from './device-card.schema.js';
import type { DeviceListQuery } from './manage.service.js';

/**
 * Binding routes. The first two are the operator door over the binding core (bind a device to an
 * owner, operators only and audited as `device.bind.operator`; unbind it — also how people unbind:
 * admins, or the member who bound the device). People bind through POST /api/v1/bind. The rest
 * are the people-facing doors of issue 4 (docs/binding.md). The device gets push_bind_corp /
 * push_unbind_corp through the gateway, wherever it is connected.
 */
export function bindingRoutes(s: Services) {
  return async function binding(app: FastifyInstance) {
    app.post<{ Params: { sn: string }; Body: { owner_type: OwnerType; owner_id: string; remark_name?: string } }>(
      '/api/v1/devices/:sn/bind',
      {
        schema: {
          tags: ['binding'],
          summary: 'Bind a device to an organisation or a personal space without proof of possession (operators only)',
          description: 'People bind with POST /api/v1/bind (verification code or label scan); anyone else gets 403 FORBIDDEN.',
          body: {
            type: 'object',
            required: ['owner_type', 'owner_id'],
            additionalProperties: false,
            properties: {
              owner_type: { type: 'string', enum: ['org', 'user'] },
              owner_id: { type: 'string', minLength: 1, maxLength: 64 },
              remark_name: { type: 'string', maxLength: 64 },
            },
          },
        },
      },
      async (req, reply) => {
        const { owner_type, owner_id, remark_name } = req.body;
        await s.binding.bind(principalOf(req), req.params.sn, { type: owner_type, id: owner_id }, { remarkName: remark_name });
        return reply.status(204).send();
      },
    );

    app.delete<{ Params: { sn: string } }>(
      '/api/v1/devices/:sn/bind',
      { schema: { tags: ['binding'], summary: 'Unbind a device; its secret is revoked' } },
      async (req, reply) => {
        await s.binding.unbind(principalOf(req), req.params.sn);
        return reply.status(204).send();
      },
    );

    app.delete<{ Params: { sn: string; userId: string } }>(
      '/api/v1/devices/:sn/users/:userId',
      {
        schema: {
          tags: ['binding'],
          summary: 'Stop sharing a personal device with someone (its owner), or leave it (yourself)',
          params: {
            type: 'object',
            required: ['sn', 'userId'],
            properties: { sn: { type: 'string', maxLength: 64 }, userId: { type: 'string', maxLength: 64 } },
          },
        },
      },
      async (req, reply) => {
        await s.binding.removeUser(principalOf(req), req.params.sn, req.params.userId);
        return reply.status(204).send();
      },
    );

    // ── people binding (issue 4): every method, one service ──────────────────

    app.post<{ Body: BindBody }>(
      '/api/v1/bind',
      {
        schema: {
          tags: ['binding'],
          summary: 'Bind a device by typed SN or scanned code to your personal space or an organisation',
          description:
            "Give `sn` (optionally with `product_key`; `verif_code` unless the model is `sn_only`), `content` (the scanned text: a connect/hardware URL or a Quectel label) or `bluetooth_ticket` (from POST /api/v1/bluetooth/identity; proves possession, 400 BT_TICKET_INVALID when used, expired or another account's). Taking over or joining a personal device needs a label or screen scan. Wrong SNs and codes lock an account after 10 in 15 minutes (an address after 100); typed-SN claims are limited to 20 an hour per account.",
          body: bindBody,
        },
      },
      async (req, reply) => {
        const actor = principalOf(req);
        const b = req.body;
        const outcome = await s.binding.bindDevice(
          actor,
          {
            owner: b.owner,
            sn: b.sn,
            productKey: b.product_key,
            content: b.content,
            bluetoothTicket: b.bluetooth_ticket,
            verifCode: b.verif_code,
            remarkName: b.remark_name,
            visibleTo: b.visible_to,
            enableApp: b.enable_app,
          },
          { ip: req.ip },
        );
        return reply.status(201).send({ ...outcome, device: await s.management.card(actor, outcome.sn) });
      },
    );

    app.post<{
      Params: { sn: string };
      Body: Omit<BindBody, 'sn' | 'product_key' | 'content' | 'bluetooth_ticket' | 'verif_code'>;
    }>(
      '/api/v1/devices/:sn/transfer',
      {
        schema: {
          tags: ['binding'],
          summary: 'Move a device to another owner: an unbind plus a bind, recorded as one',
          body: {
            type: 'object',
            required: ['owner'],
            properties: {
              owner: bindBody.properties.owner,
              remark_name: bindBody.properties.remark_name,
              visible_to: bindBody.properties.visible_to,
              enable_app: bindBody.properties.enable_app,
            },
          },
        },
      },
      async (req) =>
        s.binding.transfer(principalOf(req), req.params.sn, req.body.owner, {
          remarkName: req.body.remark_name,
          visibleTo: req.body.visible_to,
          enableApp: req.body.enable_app,
        }),
    );

    app.get<{ Querystring: ListQuery }>(
      '/api/v1/me/devices',
      {
        schema: {
          tags: ['binding'],
          summary: 'My devices: personal space, shared with me, and organisation devices I bound',
          querystring: listQuery,
          response: { 200: devicePageOf(deviceCard) },
        },
      },
      async (req) => s.management.listMine(principalOf(req), toListQuery(req.query)),
    );

    // An organisation's device list, its csv and bulk actions: org-devices.routes.ts.

    app.get<{ Params: { sn: string } }>(
      '/api/v1/devices/:sn/page',
      {
        schema: {
          tags: ['binding'],
          summary: 'The device page: model, state, firmware, owner, admins, visibility, errors, logs and what you may do',
        },
      },
      async (req) => s.management.overview(principalOf(req), req.params.sn),
    );

    app.put<{ Params: { sn: string }; Body: { remark_name: string | null } }>(
      '/api/v1/devices/:sn/remark-name',
      {
        schema: {
          tags: ['binding'],
          summary: 'Rename a device (its remark name); null clears it',
          body: {
            type: 'object',
            required: ['remark_name'],
            properties: { remark_name: { type: ['string', 'null'], maxLength: 64 } },
          },
        },
      },
      async (req) => ({ device: await s.management.rename(principalOf(req), req.params.sn, req.body.remark_name) }),
    );

    app.post<{ Params: { sn: string } }>(
      '/api/v1/devices/:sn/actions/upgrade-firmware',
      {
        schema: {
          tags: ['binding'],
          summary: "Ask the device to upgrade to its model's current firmware (push_update_firmware)",
        },
      },
      async (req, reply) => reply.status(202).send(await s.management.upgradeFirmware(principalOf(req), req.params.sn)),
    );

    app.post<{ Params: { sn: string } }>(
      '/api/v1/devices/:sn/actions/reboot',
      { schema: { tags: ['binding'], summary: 'Reboot the device (push_restart_device; admins)' } },
      async (req, reply) => reply.status(202).send(await s.management.reboot(principalOf(req), req.params.sn)),
    );

    app.post<{ Params: { sn: string }; Body: { hint?: string } }>(
      '/api/v1/devices/:sn/actions/fetch-log',
      {
        schema: {
          tags: ['binding'],
          summary: 'Ask the device for its logs (push_fetch_log; admins); the upload appears on the device page',
          body: { type: 'object', properties: { hint: { type: 'string', maxLength: 256 } } },
        },
      },
      async (req, reply) =>
        reply.status(202).send(await s.management.fetchLog(principalOf(req), req.params.sn, req.body?.hint ?? '')),
    );

    app.get<{ Params: { sn: string; logId: string } }>(
      '/api/v1/devices/:sn/page/logs/:logId',
      { schema: { tags: ['binding'], summary: 'Download a log the device uploaded (admins of the device)' } },
      async (req, reply) => {
        const f = await s.management.logFile(principalOf(req), req.params.sn, req.params.logId);
        reply.header('content-type', 'text/plain; charset=utf-8');
        reply.header('content-disposition', `attachment; filename="${f.name}"`);
        reply.header('content-length', String(f.size));
        return reply.send(createReadStream(f.path));
      },
    );

    app.get<{ Params: { modelId: string } }>(
      '/api/v1/models/:modelId/bind-settings',
      {
        schema: {
          tags: ['binding'],
          summary: "A model's binding options: typed-SN proof (typed_sn_mode: verif_code | sn_only), associated application",
        },
      },
      async (req) => s.binding.getBindSettings(principalOf(req), req.params.modelId),
    );

    app.put<{
      Params: { modelId: string };
      Body: {
        typed_sn_mode?: 'verif_code' | 'sn_only';
        require_verif_code?: boolean;
        app_key?: string | null;
        app_name?: string | null;
      };
    }>(
      '/api/v1/models/:modelId/bind-settings',
      {
        schema: {
          tags: ['binding'],
          summary:
            "Set a model's binding options (its vendor); typed_sn_mode 'sn_only' lets a typed SN bind without the code (low security)",
          body: {
            type: 'object',
            additionalProperties: false,
            properties: {
              typed_sn_mode: { type: 'string', enum: ['verif_code', 'sn_only'] },
              require_verif_code: { type: 'boolean' },
              app_key: { type: ['string', 'null'], maxLength: 64 },
              app_name: { type: ['string', 'null'], maxLength: 128 },
            },
          },
        },
      },
      async (req) =>
        s.binding.putBindSettings(principalOf(req), req.params.modelId, {
          typedSnMode: req.body.typed_sn_mode,
          requireVerifCode: req.body.require_verif_code,
          appKey: req.body.app_key,
          appName: req.body.app_name,
        }),
    );

    app.get<{ Params: { sn: string } }>(
      '/api/v1/devices/:sn/verif-code',
      { schema: { tags: ['binding'], summary: "The device's bind verification code, to print or flash (its vendor; audited)" } },
      async (req) => ({ verif_code: await s.binding.verifCode(principalOf(req), req.params.sn) }),
    );

    app.post<{ Params: { sn: string }; Body: { state?: string } }>(
      '/api/v1/devices/:sn/login-codes',
      {
        schema: {
          tags: ['binding'],
          summary: 'Issue a static management QR (type=static_login) for a bound device (its vendor)',
          body: { type: 'object', properties: { state: { type: 'string', maxLength: 128 } } },
        },
      },
      async (req, reply) => {
        const { login_code } = await s.binding.issueLoginCode(principalOf(req), req.params.sn);
        return reply.status(201).send({ login_code, url: staticLoginUrl(s.people.publicUrl, login_code, req.body?.state ?? '') });
      },
    );
  };
}

interface BindBody {
  owner: Owner;
  sn?: string;
  product_key?: string;
  content?: string;
  bluetooth_ticket?: string;
  verif_code?: string;
  remark_name?: string;
  visible_to?: { departments?: string[]; users?: string[] };
  enable_app?: boolean;
}

const idList = { type: 'array', items: { type: 'string', maxLength: 64 }, maxItems: 200 } as const;
const bindBody = {
  type: 'object',
  required: ['owner'],
  additionalProperties: false,
  properties: {
    owner: {
      type: 'object',
      required: ['type', 'id'],
      additionalProperties: false,
      properties: { type: { type: 'string', enum: ['org', 'user'] }, id: { type: 'string', minLength: 1, maxLength: 64 } },
    },
    sn: { type: 'string', maxLength: 200 },
    product_key: { type: 'string', maxLength: 64 },
    content: { type: 'string', maxLength: 4096 },
    /** From POST /api/v1/bluetooth/identity: proves possession (features/bluetooth). */
    bluetooth_ticket: { type: 'string', minLength: 1, maxLength: 128 },
    verif_code: { type: 'string', maxLength: 16 },
    remark_name: { type: 'string', maxLength: 64 },
    visible_to: { type: 'object', additionalProperties: false, properties: { departments: idList, users: idList } },
    enable_app: { type: 'boolean' },
  },
} as const;

interface ListQuery {
  q?: string;
  model_id?: string;
  online?: boolean;
  cursor?: string;
  limit?: number;
}

const listQuery = {
  type: 'object',
  properties: {
    q: { type: 'string', maxLength: 128 },
    model_id: { type: 'string' },
    online: { type: 'boolean' },
    cursor: { type: 'string', maxLength: 64 },
    limit: { type: 'integer', minimum: 1, maximum: 200 },
  },
} as const;

function toListQuery(q: ListQuery): DeviceListQuery {
  return { search: q.q, modelId: q.model_id, online: q.online, cursor: q.cursor, limit: q.limit };
}
