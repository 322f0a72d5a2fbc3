import type { Kysely, Migration } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';
import * as m001 from './001_foundation.js';
import * as m003 from './003_relations.js';
import * as m004 from './004_gateway.js';
import * as m005 from './005_merchant.js';
import * as m006 from './006_people.js';
import * as m007 from './007_callbacks.js';
import * as m008 from './008_cloud_devices.js';
import * as m009 from './009_credentials.js';
import * as m010 from './010_bind_proof.js';
import * as m011 from './011_at_rest.js';
import * as m012 from './012_audit.js';
import * as m013 from './013_invitee.js';
import * as m014 from './014_accounts.js';
import * as m016 from './016_vendor_people.js';
import * as m017 from './017_vendor_fleet.js';
import * as m018 from './018_batch_progress.js';
import * as m019 from './019_pairing.js';
import * as m020 from './020_app_origins.js';
import * as m021 from './021_campaigns.js';
import * as m022 from './022_fleet_stats.js';
import * as m023 from './023_bluetooth.js';
import * as m024 from './024_org_campaigns.js';
import * as m026 from './026_fleet_state.js';
import * as m027 from './027_ota_read_paths.js';
import * as m028 from './028_campaign_counts.js';
import * as m029 from './029_command_failures.js';
import * as m030 from './030_campaign_error_reports.js';

type Step = { up(db: Kysely<unknown>, caps: StorageCapabilities): Promise<void> };

/**
 * Every migration, in order. One list serves both backends; a step that needs a dialect
 * difference asks `caps` for it. Append new steps; never edit a shipped one.
 */
const STEPS: Record<string, Step> = {
  '001_foundation': m001,
  '003_relations': m003,
  '004_gateway': m004,
  '006_people': m006,
  '005_merchant': m005,
  '007_callbacks': m007,
  '008_cloud_devices': m008,
  '009_credentials': m009,
  '010_bind_proof': m010,
  '011_at_rest': m011,
  '012_audit': m012,
  '013_invitee': m013,
  '014_accounts': m014,
  '018_batch_progress': m018,
  '019_pairing': m019,
  '016_vendor_people': m016,
  '017_vendor_fleet': m017,
  '020_app_origins': m020,
  '021_campaigns': m021,
  '022_fleet_stats': m022,
  '023_bluetooth': m023,
  '024_org_campaigns': m024,
  '026_fleet_state': m026,
  '027_ota_read_paths': m027,
  '028_campaign_counts': m028,
  '029_command_failures': m029,
  '030_campaign_error_reports': m030,
};

/** Registers a feature's migration. Keys sort lexically, so name them NNN_feature. */
export function registerMigration(name: string, step: Step): void {
  if (STEPS[name] && STEPS[name] !== step) throw new Error(`migration ${name} registered twice`);
  STEPS[name] = step;
}

export function migrationsFor(caps: StorageCapabilities): Record<string, Migration> {
  const out: Record<string, Migration> = {};
  for (const [name, step] of Object.entries(STEPS)) {
    out[name] = { up: (db) => step.up(db, caps) };
  }
  return out;
}
