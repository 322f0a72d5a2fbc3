import { randomBytes } from 'node:crypto';
import type { ScanResolution } from '../binding/manage.service.js';

/**
 * The server-rendered pages a phone sees until the console is built: small, mobile-first, in
 * English with Chinese headings. Every value is escaped; the one inline script runs under a
 * per-response CSP nonce, and frame-ancestors 'none' keeps the confirm buttons out of other sites' frames.
 */
export interface RenderedPage {
  status: number;
  html: string;
  csp: string;
}

export function esc(s: unknown): string {
  return String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON safe to place inside a <script> element. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

const STYLE = `
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;background:#f4f5f7;color:#1d2129}
main{max-width:480px;margin:0 auto;padding:20px 16px 40px}h1{font-size:1.3rem;margin:.2em 0 .1em}.zh{color:#86909c;font-size:.9rem;margin:0 0 1em}
.card{background:#fff;border-radius:12px;padding:16px;margin:12px 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}
dl{display:grid;grid-template-columns:auto 1fr;gap:6px 12px;margin:0}dt{color:#86909c}dd{margin:0;word-break:break-all}
label{display:block;margin:12px 0 4px;font-weight:600}input[type=text],input[type=password],select{width:100%;padding:10px;border:1px solid #c9cdd4;border-radius:8px;font-size:16px}
.owner{display:flex;gap:8px;align-items:flex-start;padding:8px 0;border-top:1px solid #f2f3f5;font-weight:400}.owner small{display:block;color:#f53f3f}
button{width:100%;margin-top:16px;padding:12px;border:0;border-radius:8px;background:#165dff;color:#fff;font-size:1rem}button:disabled{background:#94bfff}
.msg{padding:12px;border-radius:8px;margin-top:12px}.err{background:#ffece8;color:#cb2634}.ok{background:#e8ffea;color:#00a046}.icon{font-size:2.5rem}
a{color:#165dff}`;

function shell(title: string, zh: string, body: string, script?: { nonce: string; code: string }): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1,viewport-fit=cover">
<meta name="referrer" content="no-referrer"><title>${esc(title)} · Bindery</title><style>${STYLE}</style></head>
<body><main><h1>${esc(title)}</h1><p class="zh">${esc(zh)}</p>${body}</main>${
    script ? `<script nonce="${script.nonce}">${script.code}</script>` : ''
  }</body></html>`;
}

function render(status: number, title: string, zh: string, body: string, code?: string): RenderedPage {
  const nonce = randomBytes(16).toString('base64');
  return {
    status,
    html: shell(title, zh, body, code ? { nonce, code } : undefined),
    csp: `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`,
  };
}

/** Shared client code: read the CSRF cookie, post JSON, show the API's error message in words. */
const CLIENT = `
const csrf=()=>(document.cookie.split('; ').find(c=>c.startsWith('bindery_csrf='))||'').slice(13);
async function post(url,body){const r=await fetch(url,{method:'POST',credentials:'same-origin',headers:{'content-type':'application/json','x-csrf-token':decodeURIComponent(csrf())},body:JSON.stringify(body)});
let j={};try{j=await r.json()}catch(e){}if(!r.ok)throw new Error((j.error&&j.error.message)||('HTTP '+r.status));return j}
function show(el,cls,text){el.className='msg '+cls;el.textContent=text;el.hidden=false}
function done(el,text,href){show(el,'ok',text+' ');const a=document.createElement('a');a.href=href;a.textContent='Open the device page · 打开设备页';el.appendChild(a)}`;

const TITLES: Record<string, [string, string, number]> = {
  expired: ['This code has expired', '二维码已过期', 410],
  forged: ['This code is not genuine', '二维码无效（签名不符）', 400],
  unknown: ['Unknown code', '未知的设备码', 404],
  used: ['This code was already used', '二维码已被使用', 409],
  invalid: ['Not a device code', '不是设备二维码', 400],
  bound: ['Already bound', '设备已被绑定', 409],
  forbidden: ['Not allowed', '无权操作', 403],
};

export function errorPage(r: Pick<ScanResolution, 'validity' | 'message'> & { device?: ScanResolution['device'] }): RenderedPage {
  const [title, zh, status] = TITLES[r.validity] ?? ['Cannot use this code', '无法使用此二维码', 400];
  const dev = r.device
    ? `<div class="card"><dl><dt>Model</dt><dd>${esc(r.device.model_name)}</dd><dt>SN</dt><dd>${esc(r.device.sn)}</dd></dl></div>`
    : '';
  return render(status, title, zh, `<div class="card"><div class="icon">⚠️</div><p>${esc(r.message)}</p></div>${dev}`);
}

export function lockedPage(message: string): RenderedPage {
  return render(
    429,
    'Too many attempts',
    '尝试次数过多',
    `<div class="card"><div class="icon">⏳</div><p>${esc(message)}</p></div>`,
  );
}

/** The bind confirmation: model, SN, default name; choose owner and remark name; confirm. */
export function bindPage(r: ScanResolution, content: string): RenderedPage {
  const d = r.device!;
  const owners = (r.owners ?? [])
    .map((o, i) => {
      const label =
        o.type === 'user' ? 'My personal space · 个人空间' : `${o.name}${o.role ? ` (${o.role.replace('_', ' ')})` : ''}`;
      const effect =
        o.effect === 'share'
          ? ' — join as a further user'
          : o.effect === 'take_over'
            ? ' — takes it over from its current owner'
            : '';
      return `<label class="owner"><input type="radio" name="owner" value="${i}"${o.may_bind ? '' : ' disabled'}${
        o.may_bind && !(r.owners ?? []).slice(0, i).some((p) => p.may_bind) ? ' checked' : ''
      }><span>${esc(label)}${esc(effect)}${o.reason ? `<small>${esc(o.reason.message)}</small>` : ''}</span></label>`;
    })
    .join('');
  const body = `<div class="card"><dl><dt>Model</dt><dd>${esc(d.model_name)}</dd><dt>SN</dt><dd>${esc(d.sn)}</dd>
<dt>Name</dt><dd>${esc(d.default_name)}</dd></dl></div>
<form id="f" class="card"><label>Bind to · 绑定到</label>${owners}
<label for="remark">Remark name · 备注名称</label><input type="text" id="remark" maxlength="64" placeholder="${esc(d.default_name)}">${
    // An unsigned Quectel label proves no more than a typed SN: ask for the label's code (issue 11).
    d.requires_verif_code
      ? `
<label for="vc">Verification code: six digits on the label or the device's screen · 验证码（标签或设备屏幕上的六位数字）</label><input type="text" id="vc" required maxlength="16" inputmode="numeric" autocomplete="off">`
      : ''
  }
<button id="go">Bind this device · 确认绑定</button><div id="m" hidden></div></form>`;
  const code = `${CLIENT}
const D=${scriptJson({ content, owners: (r.owners ?? []).map((o) => ({ type: o.type, id: o.id })), sn: d.sn })};
document.getElementById('f').addEventListener('submit',async e=>{e.preventDefault();const m=document.getElementById('m'),b=document.getElementById('go');
const sel=document.querySelector('input[name=owner]:checked');if(!sel){show(m,'err','Choose where to bind the device.');return}
const vc=document.getElementById('vc');
b.disabled=true;try{await post('/api/v1/bind',{content:D.content,owner:D.owners[Number(sel.value)],remark_name:document.getElementById('remark').value||undefined,verif_code:vc?vc.value.trim()||undefined:undefined});
done(m,'Bound. 绑定成功。','/devices/'+encodeURIComponent(D.sn))}catch(err){show(m,'err',err.message);b.disabled=false}});`;
  return render(200, 'Bind this device', '绑定设备', body, code);
}

/** A management (login) code: confirm, then the device gets push_user_scan and the device page opens. */
export function loginConfirmPage(r: ScanResolution, content: string): RenderedPage {
  const d = r.device!;
  const body = `<div class="card"><dl><dt>Model</dt><dd>${esc(d.model_name)}</dd><dt>SN</dt><dd>${esc(d.sn)}</dd></dl>
<p>The device asks who you are. Confirm to sign in to it as yourself.</p>
<button id="go">Confirm · 确认登录</button><div id="m" hidden></div></div>`;
  const code = `${CLIENT}
const D=${scriptJson({ content })};
document.getElementById('go').addEventListener('click',async()=>{const m=document.getElementById('m'),b=document.getElementById('go');b.disabled=true;
try{const r=await post('/api/v1/scan/login',{content:D.content});done(m,'Signed in on the device. 已登录设备。',r.device_page)}catch(err){show(m,'err',err.message);b.disabled=false}});`;
  return render(200, 'Sign in to this device', '登录设备', body, code);
}

/** /hw/addDevice: choose how to add a device; typing the SN works here, scanning in the console. */
export function addDevicePage(owners: Array<{ type: 'org' | 'user'; id: string; name: string }>): RenderedPage {
  const opts = owners
    .map((o, i) => `<option value="${i}">${esc(o.type === 'user' ? 'My personal space · 个人空间' : o.name)}</option>`)
    .join('');
  const body = `<div class="card"><p>Scan the QR code on the device or its screen with your phone's camera, or type its SN below.</p>
<p class="zh">扫描设备上的二维码，或输入设备 SN。</p></div>
<form id="f" class="card"><label for="sn">SN</label><input type="text" id="sn" required maxlength="128" autocapitalize="characters" autocomplete="off">
<label for="pk">Product key (optional) · 产品 PK</label><input type="text" id="pk" maxlength="64" autocomplete="off">
<label for="vc">Verification code: six digits on the label or the device's screen · 验证码（标签或设备屏幕上的六位数字）</label><input type="text" id="vc" maxlength="16" inputmode="numeric" autocomplete="off">
<label for="owner">Bind to · 绑定到</label><select id="owner">${opts}</select>
<label for="remark">Remark name · 备注名称</label><input type="text" id="remark" maxlength="64">
<button id="go">Add device · 添加设备</button><div id="m" hidden></div></form>`;
  const code = `${CLIENT}
const D=${scriptJson({ owners: owners.map((o) => ({ type: o.type, id: o.id })) })};
const v=id=>document.getElementById(id).value.trim()||undefined;
document.getElementById('f').addEventListener('submit',async e=>{e.preventDefault();const m=document.getElementById('m'),b=document.getElementById('go');b.disabled=true;
try{const r=await post('/api/v1/bind',{sn:v('sn'),product_key:v('pk'),verif_code:v('vc'),owner:D.owners[Number(document.getElementById('owner').value)],remark_name:v('remark')});
done(m,'Bound. 绑定成功。','/devices/'+encodeURIComponent(r.device.sn))}catch(err){show(m,'err',err.message);b.disabled=false}});`;
  return render(200, 'Add a device', '添加设备', body, code);
}

/** The fallback login page; after signing in the browser continues to `next` (a same-site path). */
export function loginPage(next: string): RenderedPage {
  const body = `<form id="f" class="card"><label for="u">Username · 用户名</label><input type="text" id="u" autocomplete="username" required>
<label for="p">Password · 密码</label><input type="password" id="p" autocomplete="current-password" required>
<button id="go">Log in · 登录</button><div id="m" hidden></div></form>`;
  const code = `${CLIENT}
const D=${scriptJson({ next })};
document.getElementById('f').addEventListener('submit',async e=>{e.preventDefault();const m=document.getElementById('m'),b=document.getElementById('go');b.disabled=true;
try{await post('/api/v1/session',{username:document.getElementById('u').value,password:document.getElementById('p').value});location.href=D.next}
catch(err){show(m,'err',err.message);b.disabled=false}});`;
  return render(200, 'Log in', '登录', body, code);
}

export function donePage(title: string, zh: string, text: string): RenderedPage {
  return render(200, title, zh, `<div class="card"><p>${esc(text)}</p></div>`);
}

/**
 * Only same-site paths may follow a login: no scheme, no host, no protocol-relative //. Browsers
 * drop tabs and newlines from URLs and read \ as /, so "/\t/evil" or "/\\evil" would leave the site.
 */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || next.length > 4096 || /[\x00-\x1f\x7f\\]/.test(next)) return '/';
  if (!next.startsWith('/') || next.startsWith('//')) return '/';
  return next;
}
