/** Enumerations of seed 002 (WeChat Pay /v3/iotmanage): code → Chinese name as the API returns it. */
export const DEVICE_CATEGORIES: Readonly<Record<string, string>> = {
  '0': '未知设备',
  '1': '青蛙设备',
  '2': '桌面收银设备',
  '3': '行业收银硬件',
  '4': '刷卡机',
  '5': '智能音响',
  '6': '智能扫码枪',
  '7': '无人自助设备',
  '8': '团餐设备',
  '9': '自助收银设备',
  '10': '孵化类设备',
  '11': '闸机',
  '200': '临时类',
};

export const DEVICE_CLASSES: Readonly<Record<string, string>> = {
  '0': '未知',
  '1': '基础版',
  '2': 'Mini版',
  '3': 'Pro版',
  '101': '大屏自助收银机',
  '102': '校园刷卡机',
  '103': '自助售货机',
  '104': '取票机',
  '105': '充电宝设备',
  '106': '自助一体机',
  '107': '团餐机',
  '108': '游艺机',
  '109': '自助存取柜',
  '110': '手持设备',
  '111': '加油加气设备',
  '112': '智能购物车',
  '114': '桌面单屏刷脸设备',
  '116': '桌面双屏刷脸设备',
  '118': '桌面双屏POS设备',
  '120': '桌面称重设备',
  '124': '医保设备',
  '132': '彩票机',
  '134': '充电桩设备',
  '172': '视觉识别设备',
  '180': '门禁设备',
  '200': '临时类别',
};

export const APP_SCENES: Readonly<Record<string, string>> = {
  '1': 'SDK模式',
  '2': 'APP模式',
  '3': '离线模式',
  '4': '境外APP模式',
};

export const OPERATING_SYSTEMS = ['ANDROID', 'LINUX', 'WINDOWS'] as const;
export type OperatingSystem = (typeof OPERATING_SYSTEMS)[number];
