import type { Generated, GeneratedAlways } from 'kysely';

/**
 * Table shapes for Kysely. Timestamps are epoch milliseconds (BIGINT on PostgreSQL, INTEGER on
 * SQLite); booleans are 0/1 integers and JSON is text, so both backends store the same values.
 */
export interface UsersTable {
  id: string;
  username: string;
  display_name: string;
  password_hash: string;
  is_operator: number;
  created_at: number;
  /** Set while an operator has disabled the account (014_accounts): no sign-in, no sessions, no tokens. */
  disabled_at?: number | null;
  /** The last password sign-in (session or token exchange); null before 014 or never. */
  last_login_at?: number | null;
}

export interface ApiTokensTable {
  id: string;
  token_hash: string;
  name: string;
  /** The user the token acts for; null for a vendor key. */
  user_id: string | null;
  /** A vendor key acts as that vendor only. */
  vendor_id: string | null;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface VendorsTable {
  id: string;
  name: string;
  created_at: number;
}

export interface ModelsTable {
  model_id: string;
  vendor_id: string;
  name: string;
  product_key: string;
  category_code: string;
  class_code: string;
  secret_hash: string;
  /** Encrypted seed SecretNo when all devices share one (§A3); null otherwise. */
  seed_secret_no_enc: string | null;
  label_format: string;
  label_template: string | null;
  /** Personal-space binding mode: owner_only | shared | rotating. */
  binding_mode: string;
  /** SN entry on the bind page must carry a valid check character. */
  require_check_char: number;
  created_at: number;
  /** 017: set when archived (listed apart; no new registrations or batches). */
  archived_at?: number | null;
  /** 017: seed-002 app scene given to devices registered without one. */
  app_scene_code?: string | null;
  /** 024: organisations owning its devices may run firmware campaigns on them (1) or not (0). */
  org_campaigns_allowed?: number;
}

export interface ModelTicketsTable {
  ticket_hash: string;
  /** Sealed so the current ticket can be shown again (CLI/API) until callbacks deliver it. */
  ticket_enc: string;
  model_id: string;
  issued_at: number;
  expires_at: number;
}

export interface ModelTokensTable {
  token_hash: string;
  model_id: string;
  expires_at: number;
}

export interface DevicesTable {
  id: Generated<number>;
  sn: string;
  sn_key: string;
  model_id: string;
  vendor_id: string;
  batch_id: string | null;
  secret_no_enc: string;
  hw_code: string;
  /** registered → active (bound, secret issued) ; see docs/protocol.md for the gateway states. */
  state: string;
  registered_at: number;
  camera_sn: string | null;
  app_scene_code: string | null;
  operating_system: string | null;
  device_key: string | null;
  device_key_norm: string | null;
  device_name: string | null;
  cert_fingerprint: string | null;
  paired_at: number | null;
  // gateway
  /** SHA-256 of the active_code (migration 011; adapters/secrets/active-code.ts). */
  active_code: string | null;
  /** The active_code sealed with the master key, to answer `register` again; null before 011. */
  active_code_enc: string | null;
  registered_net_at: number | null;
  activated_at: number | null;
  secret_enc: string | null;
  online: number;
  last_seen_at: number | null;
  firmware_version: string | null;
  remote_addr: string | null;
  node_id: string | null;
  // ownership (binding issue); an organisation or a personal space
  owner_type: string | null;
  owner_id: string | null;
  bound_at: number | null;
  bound_by: string | null;
  remark_name: string | null;
  // merchant fleet (005_merchant): the top-level merchant whose /v3 list shows this device, and
  // its position there; maintained by features/merchant/merchant-fleet.ts on ownership change
  merchant_org_id: string | null;
  merchant_seq: number | null;
  /** registered | activated | bound | online, computed by the database from owner, activation and connection (026; device-state.ts). */
  fleet_state: GeneratedAlways<'registered' | 'activated' | 'bound' | 'online'>;
}

export interface BatchesTable {
  id: string;
  model_id: string;
  vendor_id: string;
  count: number;
  pattern: string;
  state: string;
  error: string | null;
  downloads: number;
  created_at: number;
  finished_at: number | null;
  /** When the last slice of a `generating` batch committed (migration 018). */
  heartbeat_at: number | null;
}

export interface AuditTable {
  id: Generated<number>;
  at: number;
  actor: string;
  action: string;
  subject: string;
  data: string | null;
  /** The organisation whose device, member or setting this was (migration 012). */
  org_id: string | null;
  /** The address of the request that did it, when it came over HTTP. */
  ip: string | null;
}

export interface OrganisationsTable {
  id: string;
  name: string;
  /** Sub-merchants are child organisations of a merchant. */
  parent_id: string | null;
  mchid: string | null;
  merchant_shortname: string | null;
  created_at: number;
}

export interface RelationImportsTable {
  id: string;
  vendor_id: string;
  actor: string;
  file_name: string | null;
  format: string;
  /** imported | rejected */
  result: string;
  rows: number;
  paired: number;
  updated: number;
  unchanged: number;
  error_count: number;
  /** JSON: the first errors of a rejected import. */
  errors: string | null;
  started_at: number;
  finished_at: number;
}

export interface MerchantsTable {
  org_id: string;
  /** public_key | platform_certificate: which name of the platform key signs replies. */
  key_mode: string;
  apiv3_key_enc: string | null;
  fleet_next_seq: number;
  fleet_total: number;
  fleet_version: number;
  created_at: number;
  updated_at: number;
}

export interface MerchantFleetBlocksTable {
  merchant_org_id: string;
  block_no: number;
  count: number;
}

export interface MerchantKeysTable {
  id: string;
  merchant_org_id: string;
  serial_no: string;
  serial_key: string;
  /** certificate | public_key */
  kind: string;
  public_key_pem: string;
  certificate_pem: string | null;
  not_after: number | null;
  name: string;
  created_at: number;
  revoked_at: number | null;
}

export interface PlatformKeysTable {
  id: string;
  pub_key_id: string;
  cert_serial: string;
  private_key_enc: string;
  public_key_pem: string;
  certificate_pem: string;
  not_before: number;
  not_after: number;
  created_at: number;
}

export interface DeviceInspectionsTable {
  device_id: number;
  wired_mac: string;
  wireless_mac: string;
  bluetooth_mac: string;
  app_version: string;
  camera_sn: string;
  imei: string;
  /** SUCCESS | WARN | FAIL */
  result: string;
  /** JSON string arrays. */
  errors: string;
  warnings: string;
  inspect_time: number;
  imported_at: number;
  imported_by: string;
}

/** A console login: the cookie carries a random token; the row is keyed by its SHA-256. */
export interface SessionsTable {
  id: string;
  user_id: string;
  /** SHA-256 of the CSRF token sent back in x-csrf-token (double submit); migration 009. */
  csrf_hash: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  ip: string | null;
  user_agent: string | null;
}

/** Departments form a tree inside one organisation; subtrees are visibility ranges and admin scopes. */
export interface DepartmentsTable {
  id: string;
  org_id: string;
  parent_id: string | null;
  name: string;
  created_at: number;
}

export interface OrgSettingsTable {
  org_id: string;
  /** Seed 004: ordinary members may bind devices only where this is on (off by default). */
  member_binding: number;
  updated_at: number;
  /** 024: IANA time zone for maintenance windows; null = the instance's default. */
  time_zone?: string | null;
}

export interface OrgMembersTable {
  org_id: string;
  user_id: string;
  /** super_admin | device_admin | member */
  role: string;
  department_id: string;
  created_at: number;
}

/** The departments (with their subtrees) a device admin's binding permission covers. */
export interface AdminScopesTable {
  org_id: string;
  user_id: string;
  department_id: string;
}

export interface InvitesTable {
  id: string;
  token_hash: string;
  org_id: string;
  role: string;
  department_id: string;
  /** JSON array of department ids, for a device_admin invite. */
  scope: string | null;
  created_by: string;
  created_at: number;
  expires_at: number;
  accepted_by: string | null;
  accepted_at: number | null;
  revoked_at: number | null;
  /** Whom an invitation to an existing person names: the username (or user id) the admin gave; null for a link (013). */
  invitee: string | null;
}

/** An application of an organisation; `app_key` matches the key a device model associates. */
export interface ApplicationsTable {
  id: string;
  org_id: string;
  app_key: string;
  name: string;
  created_at: number;
}

/** Where an application may send people back to (issue 15, third-party entry). */
export interface ApplicationOriginsTable {
  app_id: string;
  origin: string;
  created_at: number;
}

export interface ApplicationAdminsTable {
  app_id: string;
  user_id: string;
}

/** Binding options a vendor sets per model (verification code, associated application). */
export interface ModelBindSettingsTable {
  model_id: string;
  require_verif_code: number;
  app_key: string | null;
  app_name: string | null;
  updated_at: number;
  /** Migration 010: 'verif_code' (a typed SN needs the label's code) or 'sn_only' (low security). */
  typed_sn_mode: Generated<'verif_code' | 'sn_only'>;
}

/** Who an organisation's device is visible to: departments (with subtrees) and single users. */
export interface DeviceVisibilityTable {
  id: Generated<number>;
  device_id: number;
  department_id: string | null;
  user_id: string | null;
}

export interface DeviceAppsTable {
  device_id: number;
  app_id: string;
  enabled_by: string;
  enabled_at: number;
}

/** Further users of a personal device in a shared-mode model (the owner is devices.owner_id). */
export interface DeviceUsersTable {
  device_id: number;
  user_id: string;
  added_at: number;
}

/** Dynamic bind QR codes already used, kept until their signing window ends (replay refusal). */
export interface UsedQrCodesTable {
  code_hash: string;
  sn_key: string;
  used_at: number;
  expires_at: number;
}

/** 023: the last identity-proof nonce accepted per device (docs/protocol.md BT-11). */
export interface BluetoothNoncesTable {
  device_id: number;
  last_nonce: number;
  updated_at: number;
}

/** 023: tickets from accepted Bluetooth identity proofs, stored as SHA-256, bound to the account. */
export interface BluetoothTicketsTable {
  ticket_hash: string;
  device_id: number;
  user_id: string;
  nonce: number;
  created_at: number;
  expires_at: number;
}

/** Static management (login) QR codes, stored as SHA-256; deleted when the device is unbound. */
export interface LoginCodesTable {
  code_hash: string;
  device_id: number;
  created_at: number;
}

export interface NotificationsTable {
  id: Generated<number>;
  user_id: string;
  kind: string;
  title: string;
  body: string;
  link: string | null;
  /** JSON object with the specifics (sn, org, …). */
  data: string | null;
  created_at: number;
  read_at: number | null;
}

/** A command for a device that may be offline, delivered once on its next subscribe (docs/protocol.md P-PUSH-5). */
export interface DeviceCommandsTable {
  id: string;
  device_id: number;
  cmd: string;
  /** JSON object, or null for pushes without a body. */
  body: string | null;
  created_by: string;
  created_at: number;
  expires_at: number;
  delivered_at: number | null;
  delivered_node: string | null;
  /** Set when the command failed (P-PUSH-7, migration 029): `failed` whatever delivered_at says. */
  failed_at: number | null;
  /** The device's non-zero errcode; null when the cloud gave up without a device answer. */
  fail_code: number | null;
  /** The device's errmsg or the cloud's reason, at most 256 characters. */
  fail_reason: string | null;
}

/** A firmware version published for a model; `get_firmware_info` answers from the current one. */
export interface FirmwareTable {
  id: string;
  model_id: string;
  vendor_id: string;
  version: string;
  md5: string;
  /** 019_pairing; null for versions published before it, or by URL without one. */
  sha256: string | null;
  size: number;
  /** Hosted elsewhere… */
  url: string | null;
  /** …or uploaded into BINDERY_DATA_DIR/firmware. */
  file_name: string | null;
  notes: string | null;
  is_current: number;
  created_by: string;
  created_at: number;
}

/** A log file a device uploaded with the binary `upload_log` frame (stored in BINDERY_DATA_DIR/device-logs). */
export interface DeviceLogsTable {
  id: string;
  device_id: number;
  req_id: string;
  size: number;
  sha256: string;
  file_name: string;
  uploaded_at: number;
}

export interface DeviceErrorReportsTable {
  id: Generated<number>;
  device_id: number;
  errcode: number;
  errmsg: string;
  reported_at: number;
}

/** §B1 bind auth codes (SHA-256), single use, 10 minutes; exchanged by get_device_secret (008_cloud_devices). */
export interface DeviceAuthCodesTable {
  code_hash: string;
  sn_key: string;
  model_id: string;
  issued_at: number;
  expires_at: number;
  used_at: number | null;
}

/** A cloud device's secret (SHA-256) for the binding it was issued under; deleted on unbind. */
export interface DeviceSecretsTable {
  device_id: number;
  secret_hash: string;
  bound_at: number;
  created_at: number;
}

/** device_access_token (SHA-256), 7 200 s. */
export interface DeviceAccessTokensTable {
  token_hash: string;
  device_id: number;
  expires_at: number;
}

/** The last report_device_status of a device that talks through its vendor's cloud. */
export interface CloudDeviceStatusTable {
  device_id: number;
  online: number;
  last_report_at: number;
  cur_version: string | null;
  upgradable_version: string | null;
  upgradable_version_desc: string | null;
}

/** One row per (job, period): the process that inserts it runs the job for that period. */
export interface JobClaimsTable {
  job: string;
  period: number;
  claimed_at: number;
}

/** The pairing station's log (019_pairing): one row per pair sent, by its idempotency key. */
export interface PairingsTable {
  id: string;
  vendor_id: string;
  idem_key: string;
  shift_id: string;
  station: string;
  model_id: string | null;
  batch_id: string | null;
  device_key: string;
  label: string;
  device_id: number | null;
  sn: string | null;
  product_key: string | null;
  /** paired | refused */
  outcome: string;
  reason: string | null;
  message: string | null;
  conflict: string | null;
  actor: string;
  scanned_at: number | null;
  created_at: number;
}

export interface Database {
  users: UsersTable;
  api_tokens: ApiTokensTable;
  vendors: VendorsTable;
  models: ModelsTable;
  model_tickets: ModelTicketsTable;
  model_tokens: ModelTokensTable;
  devices: DevicesTable;
  batches: BatchesTable;
  audit_log: AuditTable;
  organisations: OrganisationsTable;
  device_commands: DeviceCommandsTable;
  firmware: FirmwareTable;
  device_logs: DeviceLogsTable;
  device_error_reports: DeviceErrorReportsTable;
  sessions: SessionsTable;
  departments: DepartmentsTable;
  org_settings: OrgSettingsTable;
  org_members: OrgMembersTable;
  admin_scopes: AdminScopesTable;
  invites: InvitesTable;
  applications: ApplicationsTable;
  application_admins: ApplicationAdminsTable;
  application_origins: ApplicationOriginsTable;
  model_bind_settings: ModelBindSettingsTable;
  device_visibility: DeviceVisibilityTable;
  device_apps: DeviceAppsTable;
  device_users: DeviceUsersTable;
  used_qr_codes: UsedQrCodesTable;
  bluetooth_nonces: BluetoothNoncesTable;
  bluetooth_tickets: BluetoothTicketsTable;
  notifications: NotificationsTable;
  login_codes: LoginCodesTable;
  merchants: MerchantsTable;
  merchant_fleet_blocks: MerchantFleetBlocksTable;
  merchant_keys: MerchantKeysTable;
  platform_keys: PlatformKeysTable;
  device_inspections: DeviceInspectionsTable;
  relation_imports: RelationImportsTable;
  callback_endpoints: CallbackEndpointsTable;
  webhooks: WebhooksTable;
  outbox: OutboxTable;
  delivery_attempts: DeliveryAttemptsTable;
  device_auth_codes: DeviceAuthCodesTable;
  device_secrets: DeviceSecretsTable;
  device_access_tokens: DeviceAccessTokensTable;
  cloud_device_status: CloudDeviceStatusTable;
  job_claims: JobClaimsTable;
  password_resets: PasswordResetsTable;
  instance_settings: InstanceSettingsTable;
  vendor_members: VendorMembersTable;
  vendor_invites: VendorInvitesTable;
  pairings: PairingsTable;
  campaigns: CampaignsTable;
  campaign_executions: CampaignExecutionsTable;
  campaign_samples: CampaignSamplesTable;
  campaign_counts: CampaignCountsTable;
  fleet_daily: FleetDailyTable;
  fleet_daily_errors: FleetDailyErrorsTable;
  fleet_online: FleetOnlineTable;
  fleet_online_daily: FleetOnlineDailyTable;
  fleet_versions: FleetVersionsTable;
}

/** A person's role at a vendor (016_vendor_people): vendor_admin, engineer or production. */
export interface VendorMembersTable {
  user_id: string;
  vendor_id: string;
  role: string;
  created_at: number;
}

/** An invitation into a vendor (016_vendor_people): the token's SHA-256, single use, 7 days. */
export interface VendorInvitesTable {
  id: string;
  token_hash: string;
  vendor_id: string;
  role: string;
  created_by: string;
  created_at: number;
  expires_at: number;
  accepted_by: string | null;
  accepted_at: number | null;
  revoked_at: number | null;
}

/** A one-time password-reset link (014_accounts): the token's SHA-256, 24 h, single use. */
export interface PasswordResetsTable {
  id: string;
  token_hash: string;
  user_id: string;
  /** `user:<id>` of whoever issued it. */
  created_by: string;
  /** The organisation whose super admin issued it; null when an operator did. */
  org_id: string | null;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  /** Set when a newer link for the same user replaced it. */
  revoked_at: number | null;
}

/** Instance settings operators change at run time (014_accounts): one JSON value per key. */
export interface InstanceSettingsTable {
  key: string;
  value: string;
  updated_by: string;
  updated_at: number;
}

/** A WeCom-style callback URL (007_callbacks): `model:<id>` (model URL) or `vendor:<id>` (provider general URL). */
export interface CallbackEndpointsTable {
  id: string;
  kind: string;
  vendor_id: string;
  model_id: string | null;
  url: string;
  token_enc: string;
  aes_key_enc: string;
  verify_device: number;
  created_at: number;
  updated_at: number;
}

/** A signed JSON webhook of a vendor or an organisation. */
export interface WebhooksTable {
  id: string;
  owner_type: string;
  owner_id: string;
  url: string;
  secret_enc: string;
  events: string | null;
  created_by: string;
  created_at: number;
  disabled_at: number | null;
}

/** One event for one target, delivered in seq order per ordering_key (features/callbacks/outbox.ts). */
export interface OutboxTable {
  seq: Generated<number>;
  id: string;
  vendor_id: string | null;
  org_id: string | null;
  target_kind: string;
  target_id: string;
  ordering_key: string;
  sn: string | null;
  event_type: string;
  payload_enc: string;
  status: string;
  attempts: number;
  next_attempt_at: number;
  give_up_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  created_at: number;
  finished_at: number | null;
  last_http_status: number | null;
  last_error: string | null;
  reply: string | null;
  redelivery_of: string | null;
}

export interface DeliveryAttemptsTable {
  id: Generated<number>;
  outbox_seq: number;
  at: number;
  http_status: number | null;
  errcode: number | null;
  error: string | null;
  duration_ms: number;
}

/** A staged OTA campaign (021_campaigns; features/campaigns). JSON columns are text. */
export interface CampaignsTable {
  id: string;
  vendor_id: string;
  model_id: string;
  firmware_id: string;
  version: string;
  name: string;
  status: string;
  target: string;
  stages: string;
  thresholds: string;
  offline: string;
  queue_expiry_sec: number;
  window_sec: number;
  total: number;
  stage: number;
  rate_per_min: number;
  dispatch_at: number | null;
  counted_from: number;
  pause_reason: string | null;
  pause_figures: string | null;
  paused_at: number | null;
  lease_owner: string | null;
  lease_until: number | null;
  sampled_at: number | null;
  created_by: string;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  /** 024: the organisation running it (null: the vendor's own). */
  org_id: string | null;
  /** 024: JSON maintenance window {start, end, days?} in each owner's time zone. */
  maintenance_window: string | null;
  /** 030: error_reports a downloading device may send before its execution fails (1 for campaigns older than 030). */
  error_report_threshold: Generated<number>;
}

/** One device's execution of a campaign (021_campaigns). */
export interface CampaignExecutionsTable {
  campaign_id: string;
  sn_key: string;
  sn: string;
  device_id: number;
  seq: number;
  stage: number | null;
  state: string;
  detail: string | null;
  from_version: string | null;
  attempts: number;
  notified_at: number | null;
  deadline_at: number | null;
  finished_at: number | null;
  updated_at: number;
  /** 030: error_reports received while downloading (the campaign's threshold fails it). */
  error_reports: Generated<number>;
}

/** A campaign's executions by state, kept by every transition (028_campaign_counts). */
export interface CampaignCountsTable {
  campaign_id: string;
  state: string;
  n: number;
}

/** Counts by state at a moment, for a campaign's progress chart (021_campaigns). */
export interface CampaignSamplesTable {
  campaign_id: string;
  at: number;
  counts: string;
}

/** Fleet dashboard rollups (022_fleet_stats; features/fleet-stats). scope: `v:<vendorId>` | `o:<orgId>`. */
export interface FleetDailyTable {
  scope: string;
  /** UTC epoch day. */
  day: number;
  model_id: string;
  binds: number;
  unbinds: number;
  errors: number;
}

export interface FleetDailyErrorsTable {
  scope: string;
  day: number;
  model_id: string;
  code: number;
  n: number;
}

export interface FleetOnlineTable {
  scope: string;
  /** Hour start, ms. */
  at: number;
  model_id: string;
  devices: number;
  online: number;
}

/** Each day's highest hourly sample (027_ota_read_paths), kept by the sampler beside fleet_online. */
export interface FleetOnlineDailyTable {
  scope: string;
  model_id: string;
  /** UTC epoch day. */
  day: number;
  devices: number;
  online: number;
}

export interface FleetVersionsTable {
  scope: string;
  model_id: string;
  /** '' for devices that never reported one. */
  version: string;
  devices: number;
  online: number;
  sampled_at: number;
}
