import ExcelJS from 'exceljs';
import { fail } from '../../errors.js';
import { csvLine } from '../../shared/csv.js';
import { COLUMNS, headerText, type Lang } from './relations.columns.js';
import type { FileFormat } from './relations.parse.js';

/** The batch-import template: the Quectel columns, csv with a UTF-8 BOM (Excel) or xlsx with Text columns. */
export async function relationsTemplate(format: FileFormat, lang: Lang): Promise<Buffer> {
  if (format !== 'csv' && format !== 'xlsx') fail('VALIDATION_FAILED', "format must be 'csv' or 'xlsx'");
  if (lang !== 'zh' && lang !== 'en') fail('VALIDATION_FAILED', "lang must be 'zh' or 'en'");
  const headers = COLUMNS.filter((c) => c.inTemplate).map((c) => headerText(c, lang));
  if (format === 'csv') return Buffer.from(`\uFEFF${csvLine(headers)}`, 'utf8');

  const wb = new ExcelJS.Workbook();
  wb.creator = 'Bindery';
  const sheet = wb.addWorksheet(lang === 'zh' ? '设备导入' : 'Devices', { views: [{ state: 'frozen', ySplit: 1 }] });
  sheet.columns = headers.map((h) => ({ header: h, width: Math.max(20, h.length + 6) }));
  for (let i = 1; i <= headers.length; i++) {
    // Text format keeps a typed IMEI or numeric SN from becoming a rounded number.
    sheet.getColumn(i).numFmt = '@';
  }
  sheet.getRow(1).font = { bold: true };
  const notes = wb.addWorksheet(lang === 'zh' ? '说明' : 'Notes');
  for (const line of TEMPLATE_NOTES[lang]) notes.addRow([line]);
  notes.getColumn(1).width = 110;
  return Buffer.from(await wb.xlsx.writeBuffer());
}

const TEMPLATE_NOTES: Record<Lang, string[]> = {
  zh: [
    '设备导入模板（SN 与 DeviceKey 关系文件）',
    '*设备DeviceKey：必填。模组 IMEI（15 位数字）或 MAC，1–64 个字符：0-9 A-Z a-z : -',
    '*产品ProductKey：必填。本厂商已有型号的 ProductKey。',
    '设备SN：要配对的设备 SN（须已注册且属于该 ProductKey）。留空仅用于更新已配对设备的名称或证书指纹。',
    '设备名称：可选，最多 128 个字符。',
    '证书指纹：可选，X.509 证书的 SHA-1，40 位十六进制（可带冒号）。',
    '可选附加列：摄像头序列号、刷脸应用软件模式代码（1–4）、刷脸应用操作系统（ANDROID/LINUX/WINDOWS）。',
    '只读取第一个工作表；整份文件校验通过才会导入，任何一行有错则全部不导入。',
  ],
  en: [
    'Device import template (SN ↔ DeviceKey relation file)',
    '*DeviceKey: required. The module IMEI (15 digits) or MAC, 1–64 characters of 0-9 A-Z a-z : -',
    "*ProductKey: required. The ProductKey of one of this vendor's models.",
    'Device SN: the SN to pair (registered, and of that ProductKey). Leave it empty only to update the name or fingerprint of a device already paired.',
    'Device Name: optional, at most 128 characters.',
    'Certificate Fingerprint: optional, the SHA-1 of the X.509 certificate, 40 hex digits (colons allowed).',
    'Optional extra columns: Camera SN, App Scene Code (1–4), Operating System (ANDROID/LINUX/WINDOWS).',
    'Only the first sheet is read. The whole file is checked first; if any row has an error, nothing is imported.',
  ],
};
