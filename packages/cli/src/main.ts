import { Command, CommanderError } from 'commander';
import * as commandGroups from './commands/index.js';
import { CliContext } from './context.js';
import { toCliError } from './output.js';

/** The whole command tree; every group adds its commands through commands/index.ts. */
function buildProgram(ctx: CliContext): Command {
  const program = new Command('bindery')
    .description(
      'Bindery from the command line: operators, vendors, models, devices, label batches and relation imports.\n' +
        'It works directly on the configured database (BINDERY_DATA_DIR or DATABASE_URL), like the server.',
    )
    .option('--json', 'print exactly one JSON document on stdout (errors too)', false)
    .option('--data-dir <dir>', 'data directory (instead of BINDERY_DATA_DIR)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      // With --json, commander's own usage errors become our JSON error document instead.
      writeErr: (s) => {
        if (!ctx.json) process.stderr.write(s);
      },
      outputError: (s, write) => {
        if (!ctx.json) write(s);
      },
    })
    .hook('preAction', (_root, action) => {
      ctx.setGlobals(action.optsWithGlobals());
    });
  for (const group of Object.values(commandGroups)) group.register(program, ctx);
  // Every subcommand throws instead of exiting, and shares the output settings.
  const configure = (cmd: Command) => {
    for (const sub of cmd.commands) {
      sub.exitOverride();
      sub.configureOutput(program.configureOutput());
      sub.showHelpAfterError('(run with --help for usage)');
      configure(sub);
    }
  };
  configure(program);
  return program;
}

async function main(argv: string[]): Promise<number> {
  const ctx = new CliContext();
  // Known before parsing, so even a usage error comes out as JSON when --json was asked for.
  ctx.setGlobals({ json: argv.includes('--json') });
  const program = buildProgram(ctx);
  let code = 0;
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError && e.exitCode === 0) {
      code = 0; // --help, --version
    } else if (e instanceof CommanderError && !ctx.json) {
      code = 1; // commander already printed the usage error
    } else {
      ctx.out.error(toCliError(e));
      code = 1;
    }
  } finally {
    await ctx.close().catch((e: unknown) => {
      process.stderr.write(`bindery: error while closing: ${e instanceof Error ? e.message : String(e)}\n`);
    });
  }
  return code;
}

process.exitCode = await main(process.argv.slice(2));
// Everything is closed; if some library still holds the event loop open, don't hang the shell.
setTimeout(() => {
  process.stderr.write('bindery: a handle stayed open after the command finished; exiting\n');
  process.exit(process.exitCode);
}, 3000).unref();
