import { AppError } from '@bindery/server/errors.js';
import type { ModelInput } from '@bindery/server/features/models/models.service.js';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { keyValues, table } from '../output.js';

interface ModelOptions {
  name?: string;
  productKey?: string;
  category?: string;
  class?: string;
  sharedSeed?: boolean;
  labelFormat?: string;
  labelTemplate?: string;
  bindingMode?: string;
  requireCheckChar?: boolean;
}

/** Options → the service's input. Values are passed as given: the service checks them all at once. */
function toInput(o: ModelOptions): Partial<ModelInput> {
  const input: Partial<ModelInput> = {};
  if (o.name !== undefined) input.name = o.name;
  if (o.productKey !== undefined) input.product_key = o.productKey;
  if (o.category !== undefined) input.category_code = o.category;
  if (o.class !== undefined) input.class_code = o.class;
  if (o.sharedSeed !== undefined) input.shared_seed = o.sharedSeed;
  if (o.labelFormat !== undefined) input.label_format = o.labelFormat as ModelInput['label_format'];
  if (o.labelTemplate !== undefined) input.label_template = o.labelTemplate;
  if (o.bindingMode !== undefined) input.binding_mode = o.bindingMode as ModelInput['binding_mode'];
  if (o.requireCheckChar !== undefined) input.require_check_char = o.requireCheckChar;
  return input;
}

function modelOptions(cmd: Command, creating: boolean): Command {
  cmd
    .option('--category <code>', 'device category code (seed 002, e.g. 2)')
    .option('--class <code>', 'device class code (seed 002, e.g. 101)')
    .option('--label-format <format>', 'what the label QR carries: wecom | quectel | custom')
    .option('--label-template <text>', 'for custom labels: text with {pk} and {sn} (optionally {hw_code}), e.g. "ACME;{pk};{sn}"')
    .option('--binding-mode <mode>', 'owner_only | shared | rotating');
  if (creating) {
    cmd
      .requiredOption('--name <name>', '1–128 characters')
      .option('--product-key <pk>', 'product key printed on labels (default: generated); fixed once set')
      .option('--shared-seed', 'devices share one seed SecretNo for get_secret_no; fixed once set')
      .option('--require-check-char', 'typed SNs must end in their check character');
  } else {
    cmd
      .option('--name <name>', '1–128 characters')
      .option('--require-check-char', 'typed SNs must end in their check character')
      .option('--no-require-check-char', 'typed SNs need no check character');
  }
  return cmd;
}

export function register(program: Command, ctx: CliContext): void {
  const model = program.command('model').description('device models: model id and secret, product key, codes, label format');

  modelOptions(
    model
      .command('create')
      .description('create a model; prints the model_secret (and seed SecretNo) once')
      .argument('<vendorId>'),
    true,
  ).action(async (vendorId: string, o: ModelOptions) => {
    const s = await ctx.services();
    const r = await s.models.create(ctx.actor, vendorId, toInput(o) as ModelInput);
    ctx.out.result(r, () => {
      ctx.out.note('The model_secret (and seed SecretNo) are shown this once; store them now.');
      return keyValues({
        ...r.model,
        model_secret: r.model_secret,
        ...(r.seed_secret_no ? { seed_secret_no: r.seed_secret_no } : {}),
      });
    });
  });

  model
    .command('list')
    .description("a vendor's models")
    .argument('<vendorId>')
    .action(async (vendorId: string) => {
      const s = await ctx.services();
      const models = await s.models.list(ctx.actor, vendorId);
      ctx.out.result({ models }, () =>
        table(models, [
          { header: 'MODEL ID', value: (m) => m.model_id },
          { header: 'NAME', value: (m) => m.name },
          { header: 'PRODUCT KEY', value: (m) => m.product_key },
          { header: 'LABEL', value: (m) => m.label_format },
          { header: 'BINDING', value: (m) => m.binding_mode },
          { header: 'SEED', value: (m) => m.shared_seed },
        ]),
      );
    });

  model
    .command('show')
    .description('one model')
    .argument('<modelId>')
    .action(async (modelId: string) => {
      const s = await ctx.services();
      const m = await s.models.get(ctx.actor, modelId);
      ctx.out.result({ model: m }, () => keyValues({ ...m }));
    });

  modelOptions(model.command('update').description('change a model').argument('<modelId>'), false).action(
    async (modelId: string, o: ModelOptions) => {
      const input = toInput(o);
      if (Object.keys(input).length === 0) throw new AppError('VALIDATION_FAILED', 'Nothing to change: give at least one option');
      const s = await ctx.services();
      const m = await s.models.update(ctx.actor, modelId, input);
      ctx.out.result({ model: m }, () => keyValues({ ...m }));
    },
  );

  model
    .command('rotate-secret')
    .description('replace the model_secret (printed once); model tokens issued with the old one stop working')
    .argument('<modelId>')
    .action(async (modelId: string) => {
      const s = await ctx.services();
      const r = await s.models.rotateSecret(ctx.actor, modelId);
      ctx.out.result({ model_id: modelId, ...r }, () => {
        ctx.out.note('The new model_secret is shown this once; store it now.');
        return r.model_secret;
      });
    });

  model
    .command('ticket')
    .description('the current model_ticket (renewed every 10 minutes, valid for 30), for get_model_token')
    .argument('<modelId>')
    .action(async (modelId: string) => {
      const s = await ctx.services();
      const t = await s.models.currentTicket(ctx.actor, modelId);
      ctx.out.result({ model_id: modelId, ...t }, () => t.model_ticket);
    });

  model
    .command('seed')
    .description('the seed SecretNo of a shared-seed model, for flashing')
    .argument('<modelId>')
    .action(async (modelId: string) => {
      const s = await ctx.services();
      const seed = await s.models.seedSecretNo(ctx.actor, modelId);
      if (seed === null) throw new AppError('NOT_FOUND', `Model ${modelId} has no shared seed SecretNo`);
      ctx.out.result({ model_id: modelId, seed_secret_no: seed }, () => seed);
    });
}
