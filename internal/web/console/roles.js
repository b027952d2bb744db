// The permission table of internal/admin/rbac.go, for the navigation only:
// the console hides what a role cannot use, and the server refuses it
// anyway. A Go test (internal/web) checks this copy against the real table.
// When the session lists its own actions, the console uses those instead.

export const permissions = {
  'bots.read': ['owner', 'admin', 'operator', 'auditor'],
  'bots.write': ['owner', 'admin', 'operator'],
  'bots.secrets': ['owner', 'admin', 'operator'],
  'sites.read': ['owner', 'admin', 'operator', 'auditor'],
  'sites.write': ['owner', 'admin', 'operator'],
  'sites.secrets': ['owner', 'admin', 'operator'],
  'sites.origins': ['owner', 'admin', 'operator'],
  'retention.read': ['owner', 'admin', 'operator', 'auditor'],
  'retention.write': ['owner', 'admin'],
  'oauth.read': ['owner', 'admin', 'operator', 'auditor'],
  'oauth.write': ['owner', 'admin', 'operator'],
  'keys.read': ['owner', 'auditor'],
  'keys.manage': ['owner'],
  'conversations.read': ['owner', 'admin', 'operator', 'auditor'],
  'conversations.erase': ['owner', 'admin'],
  'deadletters.read': ['owner', 'admin', 'operator', 'auditor'],
  'deadletters.redeliver': ['owner', 'admin', 'operator'],
  'deadletters.content': ['owner', 'admin', 'operator'],
  'operators.read': ['owner', 'auditor'],
  'operators.manage': ['owner'],
  'tokens.manage': ['owner', 'admin', 'operator', 'auditor'],
  'audit.read': ['owner', 'auditor'],
  'security.read': ['owner', 'admin', 'auditor'],
  'session.self': ['owner', 'admin', 'operator', 'auditor'],
};

/** Whether role holds action (before any bot scope). */
export function grants(role, action) {
  return (permissions[action] || []).includes(role);
}
