import type { Deps } from './deps.js';
import { AccountsService } from './features/accounts/accounts.service.js';
import { AuditService } from './features/audit/audit.service.js';
import { BindingService } from './features/binding/binding.service.js';
import { DeviceListsService } from './features/binding/device-lists.service.js';
import { registerDeviceLive } from './features/binding/device-live.js';
import { DeviceManagementService } from './features/binding/manage.service.js';
import { OrgDevicesService } from './features/binding/org-devices.service.js';
import { DeviceOwnershipService } from './features/binding/ownership.service.js';
import { ScanResolutionService } from './features/binding/scan-resolution.service.js';
import { BluetoothService } from './features/bluetooth/bluetooth.service.js';
import { BluetoothTickets } from './features/bluetooth/tickets.js';
import { CallbacksService } from './features/callbacks/callbacks.service.js';
import { CampaignEngine } from './features/campaigns/campaigns.engine.js';
import { CampaignsService } from './features/campaigns/campaigns.service.js';
import { CloudDevicesService } from './features/cloud-api/cloud-devices.service.js';
import { DeviceLogsService } from './features/device-logs/device-logs.service.js';
import { DeviceTokensService } from './features/device-tokens/device-tokens.service.js';
import { TicketRenewal } from './features/device-tokens/ticket-renewal.js';
import { DevicesService } from './features/devices/devices.service.js';
import { FleetService } from './features/devices/fleet.js';
import { FirmwareService } from './features/firmware/firmware.service.js';
import { FleetStatsService } from './features/fleet-stats/fleet-stats.service.js';
import { DevicePushService } from './features/gateway/pushes.service.js';
import { InstanceService } from './features/instance/instance.service.js';
import { InstanceSettingsService } from './features/instance-settings/instance-settings.service.js';
import { InspectionsService } from './features/merchant/inspections.service.js';
import { MerchantService } from './features/merchant/merchant.service.js';
import { ModelsService } from './features/models/models.service.js';
import { registerNotificationListeners } from './features/notifications/notifications.listeners.js';
import { NotificationsService } from './features/notifications/notifications.service.js';
import { OrganisationsService } from './features/organisations/organisations.service.js';
import { PairingService } from './features/pairing/pairing.service.js';
import { PeopleDirectoryService } from './features/people/directory.service.js';
import { PasswordResetsService } from './features/people/password-resets.service.js';
import { PeopleService } from './features/people/people.service.js';
import { ProductionService } from './features/production/production.service.js';
import { RelationsService } from './features/relations/relations.service.js';
import { ThirdPartyService } from './features/third-party/third-party.service.js';
import { VendorPeopleService } from './features/vendors/vendor-people.service.js';
import { VendorsService } from './features/vendors/vendors.service.js';
import { DomainEvents } from './shared/domain-events.js';

/**
 * Every feature service, wired once from the adapters. The HTTP app and the CLI both call
 * these, so an operation behaves the same whichever door it comes through.
 */
export interface Services {
  accounts: AccountsService;
  vendors: VendorsService;
  /** A vendor's people: members with a role, invitations. */
  vendorPeople: VendorPeopleService;
  models: ModelsService;
  devices: DevicesService;
  /** The vendor's fleet in bulk: pasted SNs, static-QR spreadsheets (issue 13). */
  fleet: FleetService;
  /** Label batches: SN generation, QR images, label PDFs, the zip and the secrets file. */
  production: ProductionService;
  relations: RelationsService;
  /** The pairing station: one SN↔DeviceKey pair per request, idempotent (features/pairing). */
  pairing: PairingService;
  binding: BindingService;
  /** Organisations: departments, members and roles, scopes, member binding, applications. */
  organisations: OrganisationsService;
  /** Console sessions, personal tokens, invitations. */
  people: PeopleService;
  /** Operators' people directory (search, disable, enable) and signing out everywhere. */
  directory: PeopleDirectoryService;
  /** One-time password-reset links issued by operators and super admins. */
  passwordResets: PasswordResetsService;
  /** Instance settings (self sign-up) and sign-up itself. */
  instanceSettings: InstanceSettingsService;
  /** Device lists, the device page, rename/upgrade/reboot/fetch-log, scan resolution. */
  management: DeviceManagementService;
  /** Bluetooth discovery: identity proofs and the tickets that bind (features/bluetooth). */
  bluetooth: BluetoothService;
  /** An organisation's device list with departments, its csv, bulk unbind and move. */
  orgDevices: OrgDevicesService;
  /** Third-party entry: an application's return origins, checked before the console sends someone back. */
  thirdParty: ThirdPartyService;
  /** Reading the audit log (features/audit). */
  audit: AuditService;
  /** The inbox and its live stream. */
  notifications: NotificationsService;
  /** The merchant tier: merchants, API keys, the signed /v3 surface. */
  merchant: MerchantService;
  inspections: InspectionsService;
  /** In-process domain events (device.bound, …) that features listen to. */
  events: DomainEvents;
  /** Pushes to devices wherever their socket is (gateway; binding events become push_bind_corp/push_unbind_corp). */
  pushes: DevicePushService;
  firmware: FirmwareService;
  /** Staged firmware campaigns: stages, abort criteria, per-device executions; engine = scheduler + device signals. */
  campaigns: CampaignsService;
  /** Fleet dashboard rollups: counted from domain events, sampled by startFleetSampler (main.ts). */
  fleetStats: FleetStatsService;
  /** Uploaded device logs and error reports. */
  deviceLogs: DeviceLogsService;
  /** §B1 bind auth codes, device secrets and device access tokens (cloud devices). */
  deviceTokens: DeviceTokensService;
  /** Vendor callbacks (§B4) and signed webhooks: settings, the outbox, the delivery log. */
  callbacks: CallbacksService;
  /** §B3 device-scoped cloud API: status reports, people, firmware results, login and identity QR codes. */
  cloudDevices: CloudDevicesService;
  /** §B1 model_ticket renewal every 10 minutes (runOnce; looped by features/cloud-api/cloud-jobs.ts). */
  ticketRenewal: TicketRenewal;
  /** Instance health and first-start warnings for operators. */
  instance: InstanceService;
}

export function buildServices(deps: Deps): Services {
  const events = new DomainEvents((err, e) => deps.logger.error({ err, event: e.type }, 'domain event listener failed'));
  const accounts = new AccountsService(deps);
  const vendors = new VendorsService(deps);
  const vendorPeople = new VendorPeopleService(deps);
  const models = new ModelsService(deps);
  // Registrations are announced as device.registered (vendor webhooks).
  const devices = new DevicesService(deps, models, events);
  const fleet = new FleetService(deps, models, devices);
  const production = new ProductionService(deps, models, devices);
  const relations = new RelationsService(deps);
  const organisations = new OrganisationsService(deps);
  const notifications = new NotificationsService(deps);
  // Invitations for existing users are delivered to their inbox.
  const people = new PeopleService(deps, accounts, organisations, notifications);
  const directory = new PeopleDirectoryService(deps);
  const passwordResets = new PasswordResetsService(deps, accounts);
  const instanceSettings = new InstanceSettingsService(deps);
  const deviceTokens = new DeviceTokensService(deps, events);
  const callbacks = new CallbacksService(deps, { models, devices, orgs: organisations, events, authCodes: deviceTokens });
  const bluetoothTickets = new BluetoothTickets(deps);
  // The vendor's bind callback gates every bind; Bluetooth tickets prove possession.
  const ownership = new DeviceOwnershipService(deps, devices, events, organisations, callbacks);
  const binding = new BindingService(deps, devices, events, models, ownership, bluetoothTickets, callbacks);
  const pairing = new PairingService(deps, binding.scans, devices.repo);
  // Ownership changes reach the merchant fleet order through the binding events.
  const merchant = new MerchantService(deps, { events });
  const inspections = new InspectionsService(deps, merchant);
  // A device's admins read its command history as its vendor does.
  const pushes = new DevicePushService(deps, devices, events, { deviceAdmins: binding });
  const instance = new InstanceService(deps, pushes.presence);
  // Upgrade requests become device.firmware_requested (vendor callbacks).
  const firmware = new FirmwareService(deps, models, devices, pushes, events);
  // Uploads and error reports become lifecycle events (vendor webhooks).
  const deviceLogs = new DeviceLogsService(deps, devices, { events, logger: deps.logger });
  const scans = new ScanResolutionService(deps, binding, organisations, events, pushes);
  const lists = new DeviceListsService(deps, binding, organisations);
  const management = new DeviceManagementService(deps, binding, organisations, events, pushes, deviceLogs, lists, scans);
  const orgDevices = new OrgDevicesService(deps, binding, management, organisations);
  const bluetooth = new BluetoothService(deps, binding, management, devices.repo, pushes.presence, bluetoothTickets);
  const thirdParty = new ThirdPartyService(deps, organisations);
  const audit = new AuditService(deps, organisations);
  const cloudDevices = new CloudDevicesService(deps, events, binding, organisations);
  const ticketRenewal = new TicketRenewal(deps, events);
  registerNotificationListeners(events, notifications, organisations, deps.db.kysely);
  const campaigns = new CampaignsService(
    deps,
    models,
    devices,
    new CampaignEngine(deps, pushes, notifications, events, firmware),
    management,
  );
  // Open device pages reload when their device changes, on whichever process the change happened.
  registerDeviceLive(events, deps.bus);
  const fleetStats = new FleetStatsService(deps);
  fleetStats.attach(events);
  return {
    accounts,
    vendors,
    vendorPeople,
    models,
    devices,
    fleet,
    production,
    relations,
    pairing,
    binding,
    organisations,
    people,
    directory,
    passwordResets,
    instanceSettings,
    management,
    bluetooth,
    orgDevices,
    thirdParty,
    audit,
    notifications,
    events,
    merchant,
    inspections,
    pushes,
    firmware,
    campaigns,
    fleetStats,
    deviceLogs,
    deviceTokens,
    callbacks,
    cloudDevices,
    ticketRenewal,
    instance,
  };
}
