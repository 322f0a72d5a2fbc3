import { createContext, type ReactNode, useCallback, useContext, useMemo, useState } from 'react';
import { ApiError } from './api.js';

/** Two languages, switchable, remembered in localStorage; the first visit follows the browser. */
export type Lang = 'en' | 'zh';

const en = {
  'app.name': 'Bindery',
  'nav.devices': 'My devices',
  'nav.scan': 'Add device',
  'nav.notifications': 'Inbox',
  'nav.logout': 'Log out',
  'nav.org': 'Organisation',
  'lang.switch': '中文',
  'common.loading': 'Loading…',
  'common.retry': 'Try again',
  'common.save': 'Save',
  'common.cancel': 'Cancel',
  'common.none': 'None',
  'common.never': 'never',
  'common.back': 'Back',
  'common.search': 'Search',
  'common.all': 'All',
  'common.more': 'Load more',
  'common.done': 'Done',
  'login.title': 'Sign in',
  'login.username': 'Username',
  'login.password': 'Password',
  'login.submit': 'Sign in',
  'login.continue': 'After signing in you will continue to the scanned code.',
  'scan.title': 'Add a device',
  'scan.camera': 'Scan with camera',
  'scan.stop': 'Stop camera',
  'scan.photo': 'Choose a photo of the code',
  'scan.hint': 'Point the camera at the QR code on the device’s label or screen.',
  'scan.noCamera': 'This browser cannot use the camera here. Choose a photo of the code instead.',
  'scan.cameraDenied': 'The camera could not be opened: {reason}. Choose a photo of the code instead.',
  'scan.notFound': 'No QR code was found in that picture. Try a sharper, closer photo.',
  'scan.found': 'Code found',
  'scan.bySn': 'Add by SN',
  'scan.sn': 'Serial number (SN)',
  'scan.snHint': 'e.g. A1B2C3D4E5',
  'scan.productKey': 'Product key (optional)',
  'scan.verifCode': 'Verification code',
  'scan.verifHint': "The six-digit code printed on the device's label or shown on its screen.",
  'scan.verifNeeded':
    "To bind this device by its SN, enter its six-digit verification code: it is printed on the device's label or shown on its screen. Scanning the label works too.",
  'scan.paste': 'Or paste the text of a code',
  'scan.pasteLabel': 'Code text',
  'scan.open': 'Open',
  'scan.next': 'Next',
  'scan.or': 'or',
  'bind.title': 'Bind this device',
  'bind.model': 'Model',
  'bind.sn': 'SN',
  'bind.defaultName': 'Default name',
  'bind.owner': 'Bind to',
  'bind.personal': 'My personal space',
  'bind.remark': 'Remark name',
  'bind.remarkHint': 'Optional, e.g. “Front door”',
  'bind.visibility': 'Visible to',
  'bind.visibilityHint': 'Departments and people who can see this device. Leave empty for your own reach.',
  'bind.people': 'People',
  'bind.enableApp': 'Add and enable the application “{name}”',
  'bind.confirm': 'Confirm and bind',
  'bind.binding': 'Binding…',
  'bind.effectShare': 'Already bound: you will share it with its owner.',
  'bind.effectTakeOver': 'Already bound: binding takes it over from its current owner.',
  'bind.noOwner': 'You cannot bind this device anywhere.',
  'bind.memberBindingOff': 'This organisation does not let members bind devices; ask an admin to bind it.',
  'bind.done': 'Bound to {owner}.',
  'bind.doneShared': 'You now share this device.',
  'bind.doneTransferred': 'The device is now yours; its previous owner was unbound.',
  'bind.openDevice': 'Open the device page',
  'bind.another': 'Add another device',
  'connect.checking': 'Checking the code…',
  'connect.loginTitle': 'Sign in to the device',
  'connect.loginText': 'Confirm to sign in to device {sn} and manage it there.',
  'connect.loginConfirm': 'Confirm',
  'connect.problem': 'This code cannot be used',
  'connect.scanAgain': 'Scan another code',
  'devices.title': 'My devices',
  'devices.empty': 'No devices yet.',
  'devices.addFirst': 'Add your first device',
  'devices.searchPlaceholder': 'SN, IMEI or remark name',
  'devices.online': 'Online',
  'devices.offline': 'Offline',
  'devices.state': 'State',
  'devices.owner': 'Owner',
  'devices.boundBy': 'Bound by',
  'devices.lastSeen': 'Last seen {when}',
  'devices.model': 'Model',
  'devices.department': 'Department',
  'devices.boundByMe': 'Bound by me',
  'devices.count': '{n} shown',
  'device.title': 'Device',
  'device.info': 'Information',
  'device.status': 'Status',
  'device.firmware': 'Firmware',
  'device.firmwareLatest': 'latest {v}',
  'device.firmwareUpToDate': 'up to date',
  'device.imei': 'IMEI / device key',
  'device.boundAt': 'Bound',
  'device.boundByWhen': '{who}, {when}',
  'device.admins': 'Admins',
  'device.users': 'Users',
  'device.visibleTo': 'Visible to',
  'device.application': 'Application',
  'device.errors': 'Recent error reports',
  'device.noErrors': 'No error reports.',
  'device.logs': 'Uploaded logs',
  'device.noLogs': 'No logs uploaded.',
  'device.download': 'Download',
  'device.actions': 'Actions',
  'device.rename': 'Rename',
  'device.remark': 'Remark name',
  'device.upgrade': 'Upgrade firmware',
  'device.reboot': 'Reboot',
  'device.fetchLog': 'Fetch logs',
  'device.unbind': 'Unbind',
  'device.unbindConfirm': 'Unbind {name}? The device goes back to activation and must be bound again to be used.',
  'device.unbound': 'The device was unbound.',
  'device.sent': 'Sent to the device: {what}.',
  'device.renamed': 'Saved.',
  'device.notFound': 'This device does not exist or you may not see it.',
  'org.devices': 'Devices',
  'org.members': 'Members',
  'org.departments': 'Departments',
  'org.settings': 'Settings',
  'org.memberBinding': 'Members may bind devices',
  'org.memberBindingHint': 'Off: only admins bind devices to this organisation (seed 004).',
  'org.you': 'Your role: {role}',
  'org.scope': 'Scope',
  'org.name': 'Name',
  'org.username': 'Username',
  'org.role': 'Role',
  'org.joined': 'Joined',
  'role.super_admin': 'Super admin',
  'role.device_admin': 'Device admin',
  'role.member': 'Member',
  'role.personal': 'Personal',
  'notif.title': 'Notifications',
  'notif.unread': '{n} unread',
  'notif.markAll': 'Mark all read',
  'notif.markRead': 'Mark read',
  'notif.empty': 'No notifications.',
  'notif.open': 'Open',
  'notif.device.bound': '{by} bound {device} to {owner}.',
  'notif.device.unbound': '{by} unbound {device}.',
  'notif.device.transferred': '{by} moved {device} to {owner}.',
  'notif.device.shared': '{by} now shares {device}.',
  'notif.title.device.bound': 'Device bound',
  'notif.title.device.unbound': 'Device unbound',
  'notif.title.device.transferred': 'Device moved',
  'notif.title.device.shared': 'Device shared',
  'time.justNow': 'just now',
  'time.minutes': '{n} min ago',
  'time.hours': '{n} h ago',
  'notFound.title': 'Page not found',
  'notFound.home': 'Go to my devices',
};

export type Key = keyof typeof en;

const zh: Record<Key, string> = {
  'app.name': 'Bindery 设备绑定',
  'nav.devices': '我的设备',
  'nav.scan': '添加设备',
  'nav.notifications': '通知',
  'nav.logout': '退出登录',
  'nav.org': '组织',
  'lang.switch': 'English',
  'common.loading': '加载中…',
  'common.retry': '重试',
  'common.save': '保存',
  'common.cancel': '取消',
  'common.none': '无',
  'common.never': '从未',
  'common.back': '返回',
  'common.search': '搜索',
  'common.all': '全部',
  'common.more': '加载更多',
  'common.done': '完成',
  'login.title': '登录',
  'login.username': '用户名',
  'login.password': '密码',
  'login.submit': '登录',
  'login.continue': '登录后将继续处理刚才扫描的二维码。',
  'scan.title': '添加设备',
  'scan.camera': '用摄像头扫码',
  'scan.stop': '关闭摄像头',
  'scan.photo': '选择二维码照片',
  'scan.hint': '将摄像头对准设备标签或屏幕上的二维码。',
  'scan.noCamera': '此浏览器无法在这里使用摄像头，请选择二维码照片。',
  'scan.cameraDenied': '无法打开摄像头：{reason}。请选择二维码照片。',
  'scan.notFound': '图片中没有找到二维码，请拍得更近、更清晰一些。',
  'scan.found': '已识别二维码',
  'scan.bySn': '输入 SN 添加',
  'scan.sn': '序列号（SN）',
  'scan.snHint': '例如 A1B2C3D4E5',
  'scan.productKey': '产品型号标识（可选）',
  'scan.verifCode': '验证码',
  'scan.verifHint': '设备标签上印有或设备屏幕上显示的六位验证码。',
  'scan.verifNeeded': '通过 SN 绑定此设备需要输入六位验证码：它印在设备标签上，或显示在设备屏幕上。也可以直接扫描标签。',
  'scan.paste': '或粘贴二维码内容',
  'scan.pasteLabel': '二维码内容',
  'scan.open': '打开',
  'scan.next': '下一步',
  'scan.or': '或',
  'bind.title': '绑定此设备',
  'bind.model': '型号',
  'bind.sn': 'SN',
  'bind.defaultName': '默认名称',
  'bind.owner': '绑定到',
  'bind.personal': '我的个人空间',
  'bind.remark': '备注名',
  'bind.remarkHint': '可选，例如“前门”',
  'bind.visibility': '可见范围',
  'bind.visibilityHint': '可以看到此设备的部门和成员；不选则为您自己的范围。',
  'bind.people': '成员',
  'bind.enableApp': '添加并启用应用“{name}”',
  'bind.confirm': '确认绑定',
  'bind.binding': '正在绑定…',
  'bind.effectShare': '设备已被绑定：您将与其所有者共享。',
  'bind.effectTakeOver': '设备已被绑定：绑定后将从当前所有者处转移给您。',
  'bind.noOwner': '您无法将此设备绑定到任何地方。',
  'bind.memberBindingOff': '本组织不允许成员绑定设备，请联系管理员绑定。',
  'bind.done': '已绑定到 {owner}。',
  'bind.doneShared': '您已共享此设备。',
  'bind.doneTransferred': '设备已转移给您，原所有者已解绑。',
  'bind.openDevice': '打开设备详情',
  'bind.another': '继续添加设备',
  'connect.checking': '正在检查二维码…',
  'connect.loginTitle': '登录设备',
  'connect.loginText': '确认后登录设备 {sn} 并在设备上进行管理。',
  'connect.loginConfirm': '确认',
  'connect.problem': '此二维码无法使用',
  'connect.scanAgain': '扫描其他二维码',
  'devices.title': '我的设备',
  'devices.empty': '还没有设备。',
  'devices.addFirst': '添加第一台设备',
  'devices.searchPlaceholder': 'SN、IMEI 或备注名',
  'devices.online': '在线',
  'devices.offline': '离线',
  'devices.state': '状态',
  'devices.owner': '所有者',
  'devices.boundBy': '绑定人',
  'devices.lastSeen': '最后在线 {when}',
  'devices.model': '型号',
  'devices.department': '部门',
  'devices.boundByMe': '我绑定的',
  'devices.count': '显示 {n} 台',
  'device.title': '设备',
  'device.info': '基本信息',
  'device.status': '状态',
  'device.firmware': '固件',
  'device.firmwareLatest': '最新 {v}',
  'device.firmwareUpToDate': '已是最新',
  'device.imei': 'IMEI / 设备标识',
  'device.boundAt': '绑定',
  'device.boundByWhen': '{who}，{when}',
  'device.admins': '管理员',
  'device.users': '使用者',
  'device.visibleTo': '可见范围',
  'device.application': '应用',
  'device.errors': '最近的错误报告',
  'device.noErrors': '没有错误报告。',
  'device.logs': '已上传的日志',
  'device.noLogs': '没有上传的日志。',
  'device.download': '下载',
  'device.actions': '操作',
  'device.rename': '修改备注名',
  'device.remark': '备注名',
  'device.upgrade': '升级固件',
  'device.reboot': '重启',
  'device.fetchLog': '获取日志',
  'device.unbind': '解绑',
  'device.unbindConfirm': '确定解绑 {name}？设备将回到激活状态，需重新绑定才能使用。',
  'device.unbound': '设备已解绑。',
  'device.sent': '已发送到设备：{what}。',
  'device.renamed': '已保存。',
  'device.notFound': '设备不存在，或您无权查看。',
  'org.devices': '设备',
  'org.members': '成员',
  'org.departments': '部门',
  'org.settings': '设置',
  'org.memberBinding': '允许成员绑定设备',
  'org.memberBindingHint': '关闭时只有管理员可以将设备绑定到本组织（种子 004）。',
  'org.you': '您的角色：{role}',
  'org.scope': '管理范围',
  'org.name': '姓名',
  'org.username': '用户名',
  'org.role': '角色',
  'org.joined': '加入时间',
  'role.super_admin': '超级管理员',
  'role.device_admin': '设备管理员',
  'role.member': '成员',
  'role.personal': '个人',
  'notif.title': '通知',
  'notif.unread': '{n} 条未读',
  'notif.markAll': '全部标为已读',
  'notif.markRead': '标为已读',
  'notif.empty': '没有通知。',
  'notif.open': '查看',
  'notif.device.bound': '{by} 将 {device} 绑定到了 {owner}。',
  'notif.device.unbound': '{by} 解绑了 {device}。',
  'notif.device.transferred': '{by} 将 {device} 转移到了 {owner}。',
  'notif.device.shared': '{by} 共享了 {device}。',
  'notif.title.device.bound': '设备已绑定',
  'notif.title.device.unbound': '设备已解绑',
  'notif.title.device.transferred': '设备已转移',
  'notif.title.device.shared': '设备已共享',
  'time.justNow': '刚刚',
  'time.minutes': '{n} 分钟前',
  'time.hours': '{n} 小时前',
  'notFound.title': '页面不存在',
  'notFound.home': '前往我的设备',
};

/** Chinese wording of the server's refusals; English uses the server's own (more specific) message. */
const zhErrors: Record<string, string> = {
  INVALID_CREDENTIALS: '用户名或密码不正确。',
  UNAUTHENTICATED: '请先登录。',
  LOCKED_OUT: '失败次数过多，已暂时锁定，请稍后再试。',
  CSRF_FAILED: '会话已失效，请刷新页面后重试。',
  FORBIDDEN: '您没有权限执行此操作。',
  NOT_FOUND: '找不到该内容。',
  VALIDATION_FAILED: '输入有误，请检查后重试。',
  INVALID_SN: 'SN 格式不正确，请检查是否输错。',
  SN_CHECK_FAILED: 'SN 的校验位不对，可能有字符输错了，请对照标签检查。',
  DEVICE_NOT_FOUND: '没有这个 SN 的设备，请检查是否输错。',
  DEVICE_BOUND: '该设备已被绑定，需先由其所有者解绑。',
  DEVICE_NOT_BOUND: '该设备尚未绑定。',
  MEMBER_BINDING_OFF: '本组织不允许成员绑定设备，请联系管理员绑定。',
  OUTSIDE_SCOPE: '所选可见范围超出了您的管理范围。',
  OUTSIDE_VISIBILITY: '所选可见范围超出了您自己的可见范围。',
  APP_ADMIN_REQUIRED: '只有该应用的管理员才能添加或启用它。',
  QR_EXPIRED: '二维码已过期，请在设备上刷新后重新扫描。',
  QR_FORGED: '二维码不是真实的设备码，请勿使用。',
  QR_UNKNOWN: '二维码不属于任何设备。',
  QR_USED: '该二维码已被使用过，请在设备上刷新后重新扫描。',
  VERIF_CODE_REQUIRED: '此型号需要验证码。',
  VERIF_CODE_WRONG: '验证码不正确。',
  POSSESSION_REQUIRED: '这是他人的设备：请扫描设备上的标签或屏幕上的二维码来接管或加入，输入 SN 不行。',
  BIND_LIMIT_REACHED: '此账号近期通过输入 SN 绑定的设备过多，请改为扫描标签，或稍后再试。',
  // Vendor bind callback refusals (docs/callbacks.md); VENDOR_REFUSED_BIND keeps its errcode in English.
  VENDOR_DEVICE_OFFLINE: '设备离线，请开机并联网后重试。',
  VENDOR_DEVICE_ALREADY_BOUND: '设备已被绑定，请先解绑。',
  VENDOR_DEVICE_HAS_DATA: '设备中有本地数据，请重置设备后再绑定。',
  VENDOR_VERIF_CODE_WRONG: '设备厂商提示验证码错误。',
  VENDOR_DEVICE_NOT_UNBOUND: '设备尚未解绑，请稍后重试或联系厂商。',
  VENDOR_NO_ANSWER: '设备厂商未及时响应，设备未绑定，请稍后重试。',
  VENDOR_BAD_REPLY: '设备厂商的响应无法验证，设备未绑定，请联系厂商。',
  OWNER_ONLY: '该设备已有所有者，此型号只允许一位所有者。',
  ORG_NOT_FOUND: '组织不存在。',
  RATE_LIMITED: '请求过于频繁，请稍后再试。',
  NETWORK: '无法连接服务器，请检查网络。',
  INTERNAL: '服务器出错了，请稍后重试。',
};

const zhValidity: Record<string, string> = {
  ok: '二维码有效。',
  expired: '二维码已过期，请在设备上刷新后重新扫描。',
  forged: '二维码不是真实的设备码，请勿使用。',
  unknown: '二维码不属于任何设备。',
  used: '该二维码已被使用过，请在设备上刷新后重新扫描。',
  invalid: '这不是设备二维码。',
  bound: '该设备已被绑定，需先由其所有者解绑。',
  forbidden: '您无权使用此二维码。',
};

const dicts: Record<Lang, Record<Key, string>> = { en, zh };
const STORE = 'bindery.lang';

function initialLang(): Lang {
  try {
    const s = localStorage.getItem(STORE);
    if (s === 'en' || s === 'zh') return s;
  } catch {
    // storage blocked: follow the browser
  }
  return navigator.language.toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

export interface I18n {
  lang: Lang;
  setLang(l: Lang): void;
  t(key: Key, vars?: Record<string, string | number>): string;
  /** A refusal in words: Chinese from the code, English from the server. */
  err(e: unknown): string;
  /** A scan verdict in words. */
  validity(v: string, serverMessage: string): string;
  date(iso: string | null): string;
  ago(iso: string | null): string;
}

const Ctx = createContext<I18n | null>(null);

export function I18nProvider({ children }: { children: ReactNode }) {
  const [lang, setLangState] = useState<Lang>(initialLang);
  const setLang = useCallback((l: Lang) => {
    setLangState(l);
    try {
      localStorage.setItem(STORE, l);
    } catch {
      // not remembered, still switched
    }
  }, []);
  const value = useMemo<I18n>(() => {
    const t = (key: Key, vars?: Record<string, string | number>) =>
      dicts[lang][key].replace(/\{(\w+)\}/g, (m, k: string) => (vars && k in vars ? String(vars[k]) : m));
    const locale = lang === 'zh' ? 'zh-CN' : 'en-GB';
    const date = (iso: string | null) =>
      iso ? new Date(iso).toLocaleString(locale, { dateStyle: 'medium', timeStyle: 'short' }) : t('common.never');
    return {
      lang,
      setLang,
      t,
      err(e) {
        if (e instanceof ApiError) {
          if (lang === 'zh') return zhErrors[e.code] ?? e.message;
          return e.message;
        }
        return e instanceof Error ? e.message : String(e);
      },
      validity: (v, m) => (lang === 'zh' ? (zhValidity[v] ?? m) : m),
      date,
      ago(iso) {
        if (!iso) return t('common.never');
        const s = (Date.now() - new Date(iso).getTime()) / 1000;
        if (s < 60) return t('time.justNow');
        if (s < 3600) return t('time.minutes', { n: Math.floor(s / 60) });
        if (s < 86400) return t('time.hours', { n: Math.floor(s / 3600) });
        return date(iso);
      },
    };
  }, [lang, setLang]);
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useI18n(): I18n {
  const v = useContext(Ctx);
  if (!v) throw new Error('useI18n outside I18nProvider');
  return v;
}

/** The zh message for a code from the server, for the scan page's owner reasons. */
export function reasonText(lang: Lang, code: string, message: string): string {
  return lang === 'zh' ? (zhErrors[code] ?? message) : message;
}
