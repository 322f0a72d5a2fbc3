import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isAppError } from '../../errors.js';
import { principalOf } from '../../http/auth.js';
import type { Services } from '../../services.js';
import { sendConsoleShell } from './console-shell.js';
import {
  addDevicePage,
  bindPage,
  errorPage,
  lockedPage,
  loginConfirmPage,
  loginPage,
  type RenderedPage,
  safeNext,
} from './landing.pages.js';

const contentBody = {
  type: 'object',
  required: ['content'],
  properties: { content: { type: 'string', minLength: 1, maxLength: 4096 } },
} as const;

/**
 * What a phone opens: every connect/hardware kind of §A8, the add-device links of seed 004, and the
 * login page they redirect to. With the console built these paths serve it (its scan page calls
 * POST /api/v1/scan/resolve); until then they answer with small server-rendered pages.
 */
export function landingRoutes(s: Services) {
  return async function landing(app: FastifyInstance) {
    const send = (reply: FastifyReply, p: RenderedPage) =>
      reply
        .status(p.status)
        .header('content-type', 'text/html; charset=utf-8')
        .header('content-security-policy', p.csp)
        .header('cache-control', 'no-store')
        .send(p.html);

    /** Serves the console when it is built; false when the server must render the page itself. */
    const serveConsole = (reply: FastifyReply): boolean => sendConsoleShell(reply);

    /** Not signed in: to the login page, which comes back here afterwards. */
    const toLogin = (req: FastifyRequest, reply: FastifyReply) =>
      reply.redirect(`/login?next=${encodeURIComponent(req.url)}`, 302);

    const scanPage = async (req: FastifyRequest, reply: FastifyReply) => {
      if (!req.principal) return toLogin(req, reply);
      if (serveConsole(reply)) return reply;
      const content = `${s.people.publicUrl}${req.url}`;
      try {
        const r = await s.management.resolveScan(req.principal, content, { ip: req.ip });
        if (r.action === 'choose_method')
          return reply.redirect(r.kind === 'bluetooth_discovery' ? '/bluetooth' : '/hw/addDevice', 302);
        if (r.action === 'bind' && r.validity === 'ok') return send(reply, bindPage(r, content));
        if (r.action === 'login' && r.validity === 'ok') return send(reply, loginConfirmPage(r, content));
        return send(reply, errorPage(r));
      } catch (e) {
        if (isAppError(e) && e.code === 'LOCKED_OUT') return send(reply, lockedPage(e.message));
        throw e;
      }
    };

    const hidden = { hide: true } as const;
    app.get(
      '/connect/hardware',
      { config: { access: 'public' }, schema: { ...hidden, tags: ['landing'], summary: 'Scan landing page (§A8)' } },
      scanPage,
    );

    const addDevice = async (req: FastifyRequest, reply: FastifyReply) => {
      if (!req.principal) return toLogin(req, reply);
      if (serveConsole(reply)) return reply;
      const me = await s.people.me(req.principal);
      const owners = [
        { type: 'user' as const, id: me.personal_space.id, name: 'Personal space' },
        ...me.organisations.map((o) => ({ type: 'org' as const, id: o.id, name: o.name })),
      ];
      return send(reply, addDevicePage(owners));
    };
    app.get(
      '/hw/addDevice',
      { config: { access: 'public' }, schema: { ...hidden, tags: ['landing'], summary: 'Add-device page (seed 004)' } },
      addDevice,
    );
    app.get(
      '/wwopen/connect/hardware/addDevice',
      {
        config: { access: 'public' },
        schema: { ...hidden, tags: ['landing'], summary: 'Add-device page, long form (seed 004)' },
      },
      addDevice,
    );

    // Seed 001's constant QR `…/hw/f?t=bt` opens Bluetooth discovery (the console's /bluetooth page,
    // which signs in first); any other `t` is the add-device choice.
    app.get<{ Querystring: { t?: string } }>(
      '/hw/f',
      {
        config: { access: 'public' },
        schema: { ...hidden, tags: ['landing'], summary: 'Constant QR (seed 001): t=bt opens Bluetooth discovery' },
      },
      async (req, reply) => reply.redirect(req.query.t === 'bt' ? '/bluetooth' : '/hw/addDevice', 302),
    );

    app.get<{ Querystring: { next?: string } }>(
      '/login',
      {
        config: { access: 'public' },
        schema: { ...hidden, tags: ['landing'], summary: 'Login page; continues to next afterwards' },
      },
      async (req, reply) => {
        const next = safeNext(req.query.next);
        if (req.principal && next !== '/') return reply.redirect(next, 302);
        if (serveConsole(reply)) return reply;
        return send(reply, loginPage(next));
      },
    );

    app.post<{ Body: { content: string } }>(
      '/api/v1/scan/resolve',
      {
        schema: {
          tags: ['binding'],
          summary: 'What a scanned code is: kind, validity in words, device summary, and the owners you may bind to',
          body: contentBody,
        },
      },
      async (req) => s.management.resolveScan(principalOf(req), req.body.content, { ip: req.ip }),
    );

    app.post<{ Body: { content: string } }>(
      '/api/v1/scan/login',
      {
        schema: {
          tags: ['binding'],
          summary: 'Confirm a device management (login) QR: the device gets push_user_scan; open the device page',
          body: contentBody,
        },
      },
      async (req) => s.management.confirmLoginScan(principalOf(req), req.body.content, { ip: req.ip }),
    );
  };
}
