import type { Command } from 'commander';
import { readPassword } from '../args.js';
import type { CliContext } from '../context.js';
import { keyValues, table } from '../output.js';

const ROLES = ['super_admin', 'device_admin', 'member'] as const;

export function register(program: Command, ctx: CliContext): void {
  const org = program.command('org').description('organisations: the companies devices are bound to, and their people');

  org
    .command('create')
    .description('create an organisation with its first super admin: a new user, or an existing one (--admin-user-id)')
    .requiredOption('--name <name>', '1–128 characters')
    .option('--admin-username <name>', 'a new user who becomes the super admin')
    .option('--admin-password <password>', "the new user's password (omit to type it, or pipe it on stdin)")
    .option('--admin-display-name <name>', "the new user's display name")
    .option('--admin-user-id <id>', 'an existing user who becomes the super admin')
    .action(
      async (o: {
        name: string;
        adminUsername?: string;
        adminPassword?: string;
        adminDisplayName?: string;
        adminUserId?: string;
      }) => {
        const superAdmin = o.adminUserId
          ? { userId: o.adminUserId }
          : {
              username: o.adminUsername,
              password: o.adminUsername ? await readPassword(o.adminPassword) : undefined,
              displayName: o.adminDisplayName,
            };
        const s = await ctx.services();
        const r = await s.organisations.create(ctx.actor, { name: o.name, superAdmin });
        ctx.out.result(r, () => keyValues({ ...r.organisation, super_admin: `${r.super_admin.username} (${r.super_admin.id})` }));
      },
    );

  org
    .command('list')
    .description('list every organisation')
    .action(async () => {
      const s = await ctx.services();
      const organisations = await s.organisations.list(ctx.actor);
      ctx.out.result({ organisations }, () =>
        table(organisations, [
          { header: 'ID', value: (o) => o.id },
          { header: 'NAME', value: (o) => o.name },
          { header: 'MEMBER BINDING', value: (o) => (o.member_binding ? 'on' : 'off') },
          { header: 'CREATED', value: (o) => o.created_at },
        ]),
      );
    });

  org
    .command('invite')
    .description('print an invitation link (valid 7 days, once) that brings someone in with a role')
    .argument('<orgId>')
    .option('--role <role>', ROLES.join(' | '), 'member')
    .option('--department <id>', 'their department (default: the root)')
    .option('--scope <ids>', 'a device admin’s departments, comma-separated (default: their department)')
    .action(async (orgId: string, o: { role: string; department?: string; scope?: string }) => {
      const s = await ctx.services();
      const r = await s.people.createInvite(ctx.actor, orgId, {
        role: o.role as (typeof ROLES)[number],
        departmentId: o.department,
        scope: o.scope ? o.scope.split(',').map((x) => x.trim()) : undefined,
      });
      ctx.out.result(r, () => {
        ctx.out.note('The invitation link is shown this once.');
        return keyValues({ id: r.invite.id, role: r.invite.role, expires_at: r.invite.expires_at, url: r.url });
      });
    });
}
