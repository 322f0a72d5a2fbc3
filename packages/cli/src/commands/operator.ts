import { AppError } from '@bindery/server/errors.js';
import type { Command } from 'commander';
import { readPassword } from '../args.js';
import type { CliContext } from '../context.js';
import { keyValues } from '../output.js';

export function register(program: Command, ctx: CliContext): void {
  const operator = program.command('operator').description('operators: the people who run this instance');

  operator
    .command('create')
    .description(
      'create the first operator (bootstrap) and print its API token once; refused when an operator exists, unless --additional',
    )
    .requiredOption('--username <name>', '3–64 of letters, digits, . _ @ -')
    .option('--password <password>', 'at least 10 characters (omit to type it, or pipe it on stdin)')
    .option('--display-name <name>', 'shown in the console; defaults to the username')
    .option(
      '--additional',
      'add a further operator even though one exists (acting as the CLI, which holds the database anyway)',
      false,
    )
    .action(async (o: { username: string; password?: string; displayName?: string; additional: boolean }) => {
      const password = await readPassword(o.password);
      const s = await ctx.services();
      const input = { username: o.username, password, ...(o.displayName ? { displayName: o.displayName } : {}) };
      const { user, token } = await s.accounts.createOperator(o.additional ? ctx.actor : null, input).catch((e: unknown) => {
        if (e instanceof AppError && e.code === 'FORBIDDEN' && !o.additional) {
          throw new AppError('FORBIDDEN', `${e.message} (or pass --additional)`);
        }
        throw e;
      });
      ctx.out.result({ user, token }, () => {
        ctx.out.note('The API token is shown this once; store it now.');
        return `${keyValues({ ...user })}\ntoken         ${token}`;
      });
    });

  operator
    .command('token')
    .description("log in with an operator's username and password and print a new API token (shown once)")
    .requiredOption('--username <name>')
    .option('--password <password>', 'omit to type it, or pipe it on stdin')
    .option('--name <name>', 'a label for the token, to recognise it when revoking', 'cli')
    .action(async (o: { username: string; password?: string; name: string }) => {
      const password = await readPassword(o.password);
      const s = await ctx.services();
      const user = await s.accounts.login(o.username, password);
      if (!user.is_operator) throw new AppError('FORBIDDEN', `${user.username} is not an operator`);
      const token = await s.accounts.createUserToken(user.id, o.name);
      ctx.out.result({ token, user }, () => token);
    });
}
