/**
 * The relation import's line errors come from the server in English (relations.service.ts,
 * relations.rules.ts). In Chinese the page words the known ones from `vendor` keys
 * `relations.why.<id>`, with the values the server named; an unknown message is shown as sent.
 */
const REASONS: Array<[id: string, re: RegExp, names: string[]]> = [
  ['dkRequired', /^DeviceKey is required$/, []],
  ['dkExcel', /^DeviceKey looks like a number Excel shortened/, []],
  ['dkChars', /^DeviceKey must be 1–64 characters/, []],
  ['dkAlnum', /^DeviceKey must contain a letter or a digit$/, []],
  ['snExcel', /^The SN looks like a number Excel shortened/, []],
  ['snChars', /^The SN must be 1–128 characters/, []],
  ['nameLong', /^The device name must be at most (\d+) characters$/, ['n']],
  ['nameLine', /^The device name must be on one line/, []],
  ['fingerprint', /^The certificate fingerprint must be a SHA-1/, []],
  ['cameraSn', /^The camera SN must be at most 64 characters$/, []],
  ['appScene', /^The app scene code must be one of (.+)$/, ['list']],
  ['os', /^The operating system must be one of (.+)$/, ['list']],
  ['tooMany', /^A file may hold at most (\d+) rows; split it$/, ['n']],
  ['empty', /^The file is empty/, []],
  ['noRows', /^The file has a header but no rows$/, []],
  ['unknownColumn', /^Unknown column (.+); the columns are listed in the template$/, ['name']],
  ['columnTwice', /^Column (.+) appears twice \(also column (\d+)\)$/, ['name', 'other']],
  ['columnMissing', /^The required column (.+) \((.+)\) is missing$/, ['zh', 'en']],
  ['snUnknown', /^SN (\S+) is not registered$/, ['sn']],
  ['snOtherModel', /^SN (\S+) belongs to ProductKey (.+), not (\S+)$/, ['sn', 'pk', 'want']],
  ['snPaired', /^SN (\S+) is already paired with DeviceKey (\S+)$/, ['sn', 'dk']],
  ['dkPairedSn', /^DeviceKey (\S+) is already paired with SN (\S+)$/, ['dk', 'sn']],
  ['dkPairedOther', /^DeviceKey (\S+) is already paired with another device$/, ['dk']],
  ['snNeeded', /^The SN is required: DeviceKey (\S+) is not yet paired with a device of ProductKey (\S+)$/, ['dk', 'pk']],
  ['noHeader', /^Column (\d+) has a value but no header/, ['n']],
  ['dkTwice', /^DeviceKey (\S+) is already on line (\d+) of this file$/, ['dk', 'line']],
  ['pkRequired', /^ProductKey is required$/, []],
  ['pkUnknown', /^Unknown ProductKey (.+): it is not a model of this vendor$/, ['pk']],
  ['snTwice', /^SN (\S+) is already on line (\d+) of this file/, ['sn', 'line']],
  ['concurrent', /^Some of these devices or device keys were paired by someone else/, []],
];

/** The reason in the UI language: zh from the known patterns, otherwise the server's words. */
export function reasonIn(lang: string, message: string, t: (key: string, vars: Record<string, string>) => string): string {
  if (lang !== 'zh') return message;
  for (const [id, re, names] of REASONS) {
    const m = re.exec(message);
    if (!m) continue;
    const vars: Record<string, string> = {};
    names.forEach((n, i) => {
      vars[n] = m[i + 1] ?? '';
    });
    return t(`relations.why.${id}`, vars);
  }
  return message;
}

export const REASON_IDS = REASONS.map(([id]) => id);
