/** Response schemas of invitations, shared by the invite routes and "add member" (which invites). */
export const inviteSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    org_id: { type: 'string' },
    role: { type: 'string', enum: ['super_admin', 'device_admin', 'member'] },
    department_id: { type: 'string' },
    scope: { type: 'array', items: { type: 'string' } },
    created_by: { type: 'string' },
    created_by_name: { type: ['string', 'null'] },
    created_at: { type: 'string' },
    expires_at: { type: 'string' },
    accepted_by: { type: ['string', 'null'] },
    state: { type: 'string', enum: ['pending', 'accepted', 'revoked', 'expired'] },
    invitee: {
      type: ['string', 'null'],
      description: 'Whom an invitation to an existing person names (the username or user id given); null for a link',
    },
  },
  required: ['id', 'org_id', 'role', 'department_id', 'scope', 'created_at', 'expires_at', 'state', 'invitee'],
} as const;

const named = {
  type: 'object',
  properties: { id: { type: 'string' }, name: { type: 'string' } },
  required: ['id', 'name'],
} as const;

/** What an invitation link offers: who invited whom to what, until when. */
export const invitePreviewSchema = {
  type: 'object',
  properties: {
    organisation: named,
    role: { type: 'string', enum: ['super_admin', 'device_admin', 'member'] },
    department: named,
    scope: { type: 'array', items: named, description: "A device admin's scope, by department" },
    invited_by: {
      type: ['object', 'null'],
      properties: { display_name: { type: 'string' } },
      description: 'The inviter; null when the invitation came from the CLI',
    },
    invitee: {
      type: ['object', 'null'],
      properties: { username: { type: 'string' }, display_name: { type: 'string' } },
      description: 'For an invitation addressed to one person: that person (only they can open it); null for a link',
    },
    expires_at: { type: 'string' },
  },
  required: ['organisation', 'role', 'department', 'scope', 'invited_by', 'invitee', 'expires_at'],
} as const;

/** The invitation token travels in the body, never in a path that would be logged. */
export const inviteTokenBody = {
  type: 'object',
  required: ['token'],
  properties: { token: { type: 'string', maxLength: 128 } },
} as const;

/** Accepting an invitation: as the signed-in user, or by signing up with these fields. */
export const acceptInviteBody = {
  type: 'object',
  required: ['token'],
  properties: {
    token: { type: 'string', maxLength: 128 },
    username: { type: 'string', maxLength: 64 },
    password: { type: 'string', maxLength: 1024 },
    display_name: { type: 'string', maxLength: 128 },
  },
} as const;
