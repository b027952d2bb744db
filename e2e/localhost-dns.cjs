// Preloaded (node --require) into the processes of the sign-in test: names
// under .localhost resolve to loopback, as RFC 6761 says and as Chromium
// resolves them itself (glibc here does not). No file of the bot changes.
const dns = require('node:dns');

const lookup = dns.lookup;
dns.lookup = function (hostname, options, callback) {
  if (typeof hostname === 'string' && /\.localhost\.?$/i.test(hostname)) {
    if (typeof options === 'function') { callback = options; options = {}; }
    if (typeof options === 'number') options = { family: options };
    if (options?.all) return process.nextTick(callback, null, [{ address: '127.0.0.1', family: 4 }]);
    return process.nextTick(callback, null, '127.0.0.1', 4);
  }
  return lookup.apply(this, arguments);
};
