import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { oneOf } from '../args.js';
import type { CliContext } from '../context.js';
import { keyValues, table } from '../output.js';

const KEY_MODES = ['public_key', 'platform_certificate'] as const;

interface MerchantLike {
  org_id: string;
  name: string;
  mchid: string;
  merchant_shortname: string;
  key_mode: string;
  has_apiv3_key: boolean;
  fleet_total: number;
  sub_merchants: Array<{ sub_mchid: string; sub_merchant_shortname: string; org_id: string; name: string }>;
  keys: Array<{
    serial_no: string;
    kind: string;
    name: string;
    not_after: string | null;
    created_at: string;
    revoked_at: string | null;
  }>;
}

function showMerchant(m: MerchantLike): string {
  const head = keyValues({
    mchid: m.mchid,
    merchant_shortname: m.merchant_shortname,
    organisation: `${m.name} (${m.org_id})`,
    key_mode: m.key_mode,
    apiv3_key: m.has_apiv3_key ? 'set' : 'not set',
    devices: m.fleet_total,
  });
  const subs = table(m.sub_merchants, [
    { header: 'SUB_MCHID', value: (s) => s.sub_mchid },
    { header: 'SHORT NAME', value: (s) => s.sub_merchant_shortname },
    { header: 'ORGANISATION', value: (s) => `${s.name} (${s.org_id})` },
  ]);
  return `${head}\n\nsub-merchants:\n${subs}\n\nAPI keys:\n${keyTable(m.keys)}`;
}

function keyTable(keys: MerchantLike['keys']): string {
  return table(keys, [
    { header: 'SERIAL_NO', value: (k) => k.serial_no },
    { header: 'KIND', value: (k) => k.kind },
    { header: 'NAME', value: (k) => k.name },
    { header: 'EXPIRES', value: (k) => k.not_after },
    { header: 'REVOKED', value: (k) => k.revoked_at },
  ]);
}

const readText = (file: string) => readFileSync(file, 'utf8');

export function register(program: Command, ctx: CliContext): void {
  const merchant = program
    .command('merchant')
    .description('merchants (WeChat Pay v3 /v3/iotmanage): mchid, sub-merchants, API keys, key mode, inspections');

  merchant
    .command('create')
    .description('make an organisation a merchant (--org-id), or create one (--name)')
    .requiredOption('--mchid <mchid>', 'the merchant number, digits')
    .requiredOption('--shortname <name>', 'merchant_shortname, 1–64 characters')
    .option('--name <name>', 'create a new organisation with this name')
    .option('--org-id <id>', 'an existing organisation')
    .option('--key-mode <mode>', 'public_key | platform_certificate', oneOf(KEY_MODES))
    .action(async (o: { mchid: string; shortname: string; name?: string; orgId?: string; keyMode?: string }) => {
      const s = await ctx.services();
      const m = await s.merchant.createMerchant(ctx.actor, {
        mchid: o.mchid,
        merchant_shortname: o.shortname,
        ...(o.name ? { name: o.name } : {}),
        ...(o.orgId ? { org_id: o.orgId } : {}),
        ...(o.keyMode ? { key_mode: o.keyMode } : {}),
      });
      ctx.out.result({ merchant: m }, () => showMerchant(m));
    });

  merchant
    .command('list')
    .description('every merchant')
    .action(async () => {
      const s = await ctx.services();
      const merchants = await s.merchant.list(ctx.actor);
      ctx.out.result({ merchants }, () =>
        table(merchants, [
          { header: 'MCHID', value: (m) => m.mchid },
          { header: 'SHORT NAME', value: (m) => m.merchant_shortname },
          { header: 'KEY MODE', value: (m) => m.key_mode },
          { header: 'SUBS', value: (m) => m.sub_merchants.length },
          { header: 'KEYS', value: (m) => m.keys.length },
          { header: 'DEVICES', value: (m) => m.fleet_total },
        ]),
      );
    });

  merchant
    .command('show')
    .description('one merchant with its sub-merchants and API keys')
    .argument('<mchid>')
    .action(async (mchid: string) => {
      const s = await ctx.services();
      const m = await s.merchant.get(ctx.actor, mchid);
      ctx.out.result({ merchant: m }, () => showMerchant(m));
    });

  merchant
    .command('set')
    .description("change a merchant's short name or key mode")
    .argument('<mchid>')
    .option('--shortname <name>', 'merchant_shortname')
    .option('--key-mode <mode>', 'public_key | platform_certificate', oneOf(KEY_MODES))
    .action(async (mchid: string, o: { shortname?: string; keyMode?: string }) => {
      const s = await ctx.services();
      const m = await s.merchant.update(ctx.actor, mchid, {
        ...(o.shortname !== undefined ? { merchant_shortname: o.shortname } : {}),
        ...(o.keyMode !== undefined ? { key_mode: o.keyMode } : {}),
      });
      ctx.out.result({ merchant: m }, () => showMerchant(m));
    });

  merchant
    .command('apiv3-key')
    .description("set the merchant's APIv3 key (32 bytes), or generate one and print it once")
    .argument('<mchid>')
    .option('--key <key>', '32 printable ASCII characters; omit to generate')
    .action(async (mchid: string, o: { key?: string }) => {
      const s = await ctx.services();
      const r = await s.merchant.setApiV3Key(ctx.actor, mchid, o.key);
      ctx.out.result({ mchid, ...r }, () => {
        if (!r.apiv3_key) return `APIv3 key of ${mchid} set.`;
        ctx.out.note('The APIv3 key is shown this once; configure it in the merchant client now.');
        return keyValues({ mchid, apiv3_key: r.apiv3_key });
      });
    });

  const sub = merchant.command('sub').description('sub-merchants: child organisations with their own sub_mchid');
  sub
    .command('add')
    .description('attach an organisation (--org-id) or a new child organisation (--name) as a sub-merchant')
    .argument('<mchid>')
    .requiredOption('--sub-mchid <mchid>', 'the sub-merchant number, digits')
    .requiredOption('--shortname <name>', 'sub_merchant_shortname')
    .option('--name <name>', 'create a new child organisation')
    .option('--org-id <id>', 'an existing organisation')
    .action(async (mchid: string, o: { subMchid: string; shortname: string; name?: string; orgId?: string }) => {
      const s = await ctx.services();
      const m = await s.merchant.addSubMerchant(ctx.actor, mchid, {
        sub_mchid: o.subMchid,
        sub_merchant_shortname: o.shortname,
        ...(o.name ? { name: o.name } : {}),
        ...(o.orgId ? { org_id: o.orgId } : {}),
      });
      ctx.out.result({ merchant: m }, () => showMerchant(m));
    });
  sub
    .command('remove')
    .description("detach a sub-merchant; its devices leave the merchant's list")
    .argument('<mchid>')
    .argument('<subMchid>')
    .action(async (mchid: string, subMchid: string) => {
      const s = await ctx.services();
      await s.merchant.removeSubMerchant(ctx.actor, mchid, subMchid);
      ctx.out.result({ removed: subMchid }, () => `Sub-merchant ${subMchid} detached from ${mchid}.`);
    });

  const key = merchant.command('key').description("the merchant's API keys (what its clients sign requests with)");
  key
    .command('add')
    .description('register a key: the API certificate (--cert) or a public key with its serial (--public-key, --serial)')
    .argument('<mchid>')
    .option('--cert <file>', 'apiclient_cert.pem; the serial is read from it')
    .option('--public-key <file>', 'a PEM public key')
    .option('--serial <serial_no>', 'the serial_no clients send (required with --public-key)')
    .option('--name <name>', 'a label for the key')
    .action(async (mchid: string, o: { cert?: string; publicKey?: string; serial?: string; name?: string }) => {
      const s = await ctx.services();
      const k = await s.merchant.addKey(ctx.actor, mchid, {
        ...(o.cert ? { certificate_pem: readText(o.cert) } : {}),
        ...(o.publicKey ? { public_key_pem: readText(o.publicKey) } : {}),
        ...(o.serial ? { serial_no: o.serial } : {}),
        ...(o.name ? { name: o.name } : {}),
      });
      ctx.out.result({ key: k }, () => keyValues({ ...k }));
    });
  key
    .command('list')
    .description("a merchant's API keys")
    .argument('<mchid>')
    .option('--all', 'include revoked keys', false)
    .action(async (mchid: string, o: { all: boolean }) => {
      const s = await ctx.services();
      const keys = await s.merchant.listKeys(ctx.actor, mchid, o.all);
      ctx.out.result({ keys }, () => keyTable(keys));
    });
  key
    .command('revoke')
    .description('revoke an API key by serial_no (any case)')
    .argument('<mchid>')
    .argument('<serial>')
    .action(async (mchid: string, serial: string) => {
      const s = await ctx.services();
      await s.merchant.revokeKey(ctx.actor, mchid, serial);
      ctx.out.result({ revoked: serial }, () => `Key ${serial} of ${mchid} revoked.`);
    });

  merchant
    .command('platform-key')
    .description("the platform's public key and id (PUB_KEY_ID_…) that merchant clients verify replies with")
    .option('--pem', 'print only the public key PEM', false)
    .option('--out <file>', 'write the public key PEM to this file')
    .action(async (o: { pem: boolean; out?: string }) => {
      const s = await ctx.services();
      const k = await s.merchant.platformKey(ctx.actor);
      if (o.out) writeFileSync(o.out, k.public_key_pem);
      ctx.out.result({ platform_key: k }, () =>
        o.pem
          ? k.public_key_pem
          : keyValues({
              pub_key_id: k.pub_key_id,
              certificate_serial: k.certificate_serial,
              not_after: k.not_after,
              ...(o.out ? { written_to: o.out } : {}),
            }),
      );
    });

  merchant
    .command('reindex')
    .description("rebuild the merchant's device order from ownership (repairs drift; positions are kept)")
    .argument('<mchid>')
    .action(async (mchid: string) => {
      const s = await ctx.services();
      const r = await s.merchant.reindexFleet(ctx.actor, mchid);
      ctx.out.result(r, () => keyValues({ ...r }));
    });

  merchant
    .command('inspections')
    .description('import factory inspection records from a csv (all-or-nothing; errors name their line)')
    .argument(
      '<file>',
      'columns: device_sn, wired_mac, wireless_mac, bluetooth_mac, app_version, camera_sn, imei, result, errors, warnings, inspect_time',
    )
    .action(async (file: string) => {
      const s = await ctx.services();
      const r = await s.inspections.importCsv(ctx.actor, readText(file));
      ctx.out.result(r, () => `Imported ${r.imported} inspection record(s).`);
    });
}
