/**
 * The one catalogue of coded errors. docs/errors.md documents each entry and errors.test.ts
 * keeps the two in sync. `errcode` is what the WeCom-shaped /cgi-bin surface returns.
 */
export interface ErrorDef {
  status: number;
  errcode: number;
  message: string;
}

export const ERRORS = {
  VALIDATION_FAILED: { status: 400, errcode: 40058, message: 'The request is invalid' },
  INVALID_SN: { status: 400, errcode: 40059, message: 'The SN must be 1–128 characters of 0-9, A-Z, a-z' },
  SN_CHECK_FAILED: { status: 400, errcode: 40060, message: 'The SN check character does not match; it was probably mistyped' },
  UNAUTHENTICATED: { status: 401, errcode: 41001, message: 'Authentication is required' },
  INVALID_CREDENTIALS: { status: 401, errcode: 40001, message: 'The credentials are invalid' },
  INVALID_MODEL_TICKET: { status: 401, errcode: 40082, message: 'The model_ticket is invalid or expired' },
  INVALID_ACCESS_TOKEN: { status: 401, errcode: 40014, message: 'The access token is invalid' },
  ACCESS_TOKEN_EXPIRED: { status: 401, errcode: 42001, message: 'The access token has expired' },
  FORBIDDEN: { status: 403, errcode: 48002, message: 'You may not do this' },
  NOT_FOUND: { status: 404, errcode: 46004, message: 'Not found' },
  VENDOR_NOT_FOUND: { status: 404, errcode: 46010, message: 'No such vendor' },
  MODEL_NOT_FOUND: { status: 404, errcode: 46011, message: 'No such device model' },
  DEVICE_NOT_FOUND: { status: 404, errcode: 46012, message: 'No such device' },
  BATCH_NOT_FOUND: { status: 404, errcode: 46013, message: 'No such label batch' },
  FIRMWARE_NOT_FOUND: { status: 404, errcode: 46030, message: 'No such firmware' },
  LOG_NOT_FOUND: { status: 404, errcode: 46031, message: 'No such device log' },
  CAMPAIGN_NOT_FOUND: { status: 404, errcode: 46035, message: 'No such firmware campaign' },
  CAMPAIGN_STATE: { status: 409, errcode: 40435, message: 'The campaign cannot do this in its current state' },
  CAMPAIGN_NOT_ALLOWED: {
    status: 403,
    errcode: 48062,
    message: "The model's vendor does not let organisations run firmware campaigns on this model",
  },
  FIRMWARE_VERSION_EXISTS: { status: 409, errcode: 40430, message: 'This firmware version is already published for the model' },
  FIRMWARE_LINK_INVALID: {
    status: 403,
    errcode: 48061,
    message: 'This firmware download link is invalid or has expired; ask for the firmware info again',
  },
  RANGE_NOT_SATISFIABLE: { status: 416, errcode: 41601, message: 'The requested range is outside the file' },
  MERCHANT_NOT_FOUND: { status: 404, errcode: 46014, message: 'No such merchant' },
  // The WeChat Pay v3 surface (/v3/…) answers {code, message, detail} with these codes (docs/merchant-api.md).
  PARAM_ERROR: { status: 400, errcode: -1, message: 'The parameters are invalid' },
  INVALID_REQUEST: { status: 400, errcode: -1, message: 'The request breaks the API v3 rules' },
  SIGN_ERROR: { status: 401, errcode: -1, message: 'The signature is missing or invalid' },
  NO_AUTH: { status: 403, errcode: -1, message: 'The merchant lacks this permission' },
  RESOURCE_NOT_EXISTS: { status: 404, errcode: -1, message: 'The resource does not exist' },
  FREQUENCY_LIMITED: { status: 429, errcode: -1, message: 'Too many requests; lower the frequency and retry' },
  SYSTEM_ERROR: { status: 500, errcode: -1, message: 'System error; retry later with the same parameters' },
  ALREADY_EXISTS: { status: 409, errcode: 40062, message: 'It already exists' },
  SN_TAKEN: { status: 409, errcode: 40063, message: 'This SN is already registered' },
  PRODUCT_KEY_TAKEN: { status: 409, errcode: 40064, message: 'This product key is already in use' },
  DEVICE_BOUND: { status: 409, errcode: 40065, message: 'The device is bound; unbind it first' },
  BATCH_NOT_READY: { status: 409, errcode: 40066, message: 'The batch is not ready yet' },
  IMPORT_REJECTED: { status: 422, errcode: 40067, message: 'The file has errors; nothing was imported' },
  MODEL_ARCHIVED: { status: 409, errcode: 40090, message: 'This model is archived; it takes no new devices or batches' },
  PAYLOAD_TOO_LARGE: { status: 413, errcode: 40068, message: 'The request body is too large' },
  IMPORT_TOO_LARGE: {
    status: 413,
    errcode: 40070,
    message: 'The file is too large to import (size, unpacked size, rows or time); nothing was imported, split it',
  },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, errcode: 40069, message: 'This content type is not accepted here' },
  RATE_LIMITED: { status: 429, errcode: 45009, message: 'Too many requests; slow down' },
  LOCKED_OUT: { status: 429, errcode: 45011, message: 'Too many failed attempts; try again later' },
  // People, organisations and binding (issue 4; docs/binding.md).
  REDIRECT_NOT_ALLOWED: {
    status: 403,
    errcode: 48040,
    message: 'This application has not registered that return address (redirect_uri); ask its organisation admin',
  },
  CSRF_FAILED: { status: 403, errcode: 48010, message: 'The request lacks a valid CSRF token; reload the page and try again' },
  MEMBER_BINDING_OFF: {
    status: 403,
    errcode: 48011,
    message: 'This organisation does not let members bind devices; ask an admin to bind it',
  },
  OUTSIDE_SCOPE: { status: 403, errcode: 48012, message: 'That is outside the departments you may manage' },
  OUTSIDE_VISIBILITY: {
    status: 403,
    errcode: 48013,
    message: 'Members may only choose departments and users inside their own visibility range',
  },
  APP_ADMIN_REQUIRED: {
    status: 403,
    errcode: 48014,
    message: 'Only an admin of the associated application may add or enable it',
  },
  QR_EXPIRED: { status: 400, errcode: 40401, message: 'This QR code has expired; refresh the code on the device and scan again' },
  QR_FORGED: { status: 400, errcode: 40402, message: 'This QR code is not genuine: its signature does not match the device' },
  QR_UNKNOWN: { status: 404, errcode: 46020, message: 'This code does not belong to any registered device' },
  QR_USED: { status: 409, errcode: 40403, message: 'This QR code has already been used; show a fresh code on the device' },
  VERIF_CODE_REQUIRED: { status: 400, errcode: 40404, message: 'This device model requires a verification code' },
  VERIF_CODE_WRONG: { status: 400, errcode: 40405, message: 'The verification code is wrong' },
  OWNER_ONLY: { status: 409, errcode: 40406, message: 'This device already has an owner and its model allows only one' },
  DEVICE_NOT_BOUND: { status: 409, errcode: 40407, message: 'The device is not bound' },
  ORG_NOT_FOUND: { status: 404, errcode: 46021, message: 'No such organisation' },
  DEPARTMENT_NOT_FOUND: { status: 404, errcode: 46022, message: 'No such department' },
  INVITE_INVALID: { status: 410, errcode: 40408, message: 'This invitation is invalid, used or expired' },
  DEPARTMENT_NOT_EMPTY: {
    status: 409,
    errcode: 40409,
    message: 'The department still has sub-departments, members, invitations or devices',
  },
  LAST_SUPER_ADMIN: { status: 409, errcode: 40410, message: 'An organisation must keep at least one super admin' },
  DEPARTMENT_CYCLE: { status: 409, errcode: 40411, message: 'A department cannot move below itself or its own sub-departments' },
  // Proof of possession (issue 11; docs/binding.md).
  POSSESSION_REQUIRED: {
    status: 403,
    errcode: 48015,
    message: "Taking over or joining someone's device needs a scan of its label or of the QR code on its screen",
  },
  BIND_LIMIT_REACHED: {
    status: 429,
    errcode: 45012,
    message: 'This account has claimed many devices by typed SN recently; scan their labels, or try again later',
  },
  // Bluetooth discovery (docs/protocol.md BT, docs/binding.md).
  BT_PROOF_INVALID: {
    status: 400,
    errcode: 40470,
    message: 'This Bluetooth identity proof is not genuine: its signature does not match a device registered here',
  },
  BT_PROOF_REPLAYED: {
    status: 409,
    errcode: 40471,
    message: 'This Bluetooth identity proof was used before; read the device again',
  },
  BT_TICKET_INVALID: {
    status: 400,
    errcode: 40472,
    message: 'This Bluetooth ticket is invalid, used, expired or of another account; find the device again',
  },
  // Cloud devices (§B1/§B3, docs/cloud-api.md).
  AUTH_CODE_INVALID: {
    status: 400,
    errcode: 40450,
    message: 'The auth_code is invalid, already used, expired or of another model',
  },
  DEVICE_SECRET_INVALID: {
    status: 401,
    errcode: 40451,
    message: 'The device_sn or device_secret is wrong, or the binding it belonged to has ended',
  },
  QR_RATE_LIMITED: { status: 429, errcode: 45033, message: 'At most one code of this type per device per minute; retry later' },
  // Vendor callbacks and webhooks (docs/callbacks.md); the VENDOR_* bind errors are shown to the binder.
  VENDOR_DEVICE_OFFLINE: {
    status: 409,
    errcode: 40461,
    message: 'The device is offline; switch it on, connect it to the network and try again',
  },
  VENDOR_DEVICE_ALREADY_BOUND: { status: 409, errcode: 40462, message: 'The device is already bound; unbind it first' },
  VENDOR_DEVICE_HAS_DATA: {
    status: 409,
    errcode: 40463,
    message: 'The device still holds local data; reset it, then bind it again',
  },
  VENDOR_VERIF_CODE_WRONG: { status: 400, errcode: 40464, message: "The device's vendor says the verification code is wrong" },
  VENDOR_DEVICE_NOT_UNBOUND: {
    status: 409,
    errcode: 40465,
    message: 'The device has not been unbound yet; retry later or contact the vendor',
  },
  VENDOR_REFUSED_BIND: { status: 409, errcode: 40466, message: "The device's vendor refused the bind" },
  VENDOR_NO_ANSWER: {
    status: 504,
    errcode: 40467,
    message: "The device's vendor did not answer in time, so the device was not bound; try again later",
  },
  VENDOR_BAD_REPLY: {
    status: 502,
    errcode: 40468,
    message: "The device's vendor gave an answer that could not be verified, so the device was not bound; contact the vendor",
  },
  DELIVERY_NOT_FOUND: { status: 404, errcode: 46040, message: 'No such callback delivery' },
  WEBHOOK_NOT_FOUND: { status: 404, errcode: 46041, message: 'No such webhook' },
  CALLBACK_NOT_SET: { status: 404, errcode: 46042, message: 'No callback URL is set here' },
  OUTBOUND_URL_REFUSED: {
    status: 400,
    errcode: 46043,
    message: 'The server may not send requests to this URL (an internal or reserved address, or not http(s))',
  },
  // Accounts (issue 12; docs/accounts.md).
  ACCOUNT_DISABLED: { status: 403, errcode: 48030, message: 'This account is disabled; ask an operator' },
  RESET_LINK_INVALID: {
    status: 410,
    errcode: 40480,
    message: 'This password-reset link is invalid, used or expired; ask for a new one',
  },
  SIGNUP_CLOSED: { status: 403, errcode: 48031, message: 'Sign-up is closed on this instance; ask for an invitation' },
  LAST_OPERATOR: { status: 409, errcode: 40481, message: 'The instance must keep at least one enabled operator' },
  CANNOT_DISABLE_SELF: { status: 409, errcode: 40482, message: 'You cannot disable your own account' },
  // Vendor people (issue 13; docs/accounts.md).
  LAST_VENDOR_ADMIN: { status: 409, errcode: 40490, message: 'A vendor must keep at least one vendor admin' },
  VENDOR_MEMBER_NOT_FOUND: { status: 404, errcode: 40491, message: 'No such member of this vendor' },
  NOT_READY: { status: 503, errcode: -1, message: 'The service is not ready' },
  DEPENDENCY_UNAVAILABLE: {
    status: 503,
    errcode: -1,
    message: 'A service Bindery depends on (Redis) is unavailable; retry shortly',
  },
  INTERNAL: { status: 500, errcode: -1, message: 'Internal error' },
  CONFIG_INVALID: { status: 500, errcode: -1, message: 'The configuration is invalid' },
} as const satisfies Record<string, ErrorDef>;

export type ErrorCode = keyof typeof ERRORS;

export class AppError extends Error {
  readonly status: number;
  readonly errcode: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: unknown,
  ) {
    super(message ?? ERRORS[code].message);
    this.name = 'AppError';
    this.status = ERRORS[code].status;
    this.errcode = ERRORS[code].errcode;
  }
}

export function fail(code: ErrorCode, message?: string, details?: unknown): never {
  throw new AppError(code, message, details);
}

export function isAppError(e: unknown): e is AppError {
  return e instanceof AppError;
}
