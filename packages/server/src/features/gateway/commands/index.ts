import { active } from './active.js';
import { errorReport } from './error-report.js';
import { genLoginQrcode } from './gen-login-qrcode.js';
import { getCorpInfo } from './get-corp-info.js';
import { getFirmwareInfo } from './get-firmware-info.js';
import { getSecretNo } from './get-secret-no.js';
import { getTimestamp } from './get-timestamp.js';
import { ping } from './ping.js';
import { register } from './register.js';
import { selfhelpNotify } from './selfhelp-notify.js';
import { subscribeCorp } from './subscribe-corp.js';
import type { CommandSpec } from './types.js';
import { uploadLog } from './upload-log.js';

/** Every command of §A5 by cmd (a Map: a device-chosen cmd never reaches Object.prototype). */
export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map(
  [
    getTimestamp,
    getSecretNo,
    register,
    active,
    subscribeCorp,
    ping,
    getFirmwareInfo,
    uploadLog,
    genLoginQrcode,
    errorReport,
    getCorpInfo,
    selfhelpNotify,
  ].map((c) => [c.name, c]),
);

/** Commands that arrive as binary request frames (§A1.2). */
export const BINARY_COMMANDS: ReadonlyMap<string, CommandSpec> = new Map([[uploadLog.name, uploadLog]]);
