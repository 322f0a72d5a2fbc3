/**
 * /sdk/bindery-client.js — the few lines a third-party web app includes to open Bindery's add-device
 * flow or a device's page and read the outcome when the person comes back (docs/third-party.md).
 * Plain ES5 so any page can load it; no dependencies, no network calls of its own.
 */
export const BINDERY_CLIENT_JS = `/* Bindery client: open the add-device flow or a device page, read the outcome on return. */
(function (global) {
  'use strict';
  function script() {
    var s = document.currentScript;
    return s && s.src ? new URL(s.src).origin : '';
  }
  var origin = script();
  function open(path, opts) {
    if (!opts || !opts.app || !opts.redirectUri) throw new Error('Bindery: app and redirectUri are required');
    var u = new URL(path, opts.base || origin);
    u.searchParams.set('app', opts.app);
    u.searchParams.set('redirect_uri', opts.redirectUri);
    if (opts.newWindow) global.open(u.toString(), '_blank', 'noopener');
    else global.location.assign(u.toString());
    return u.toString();
  }
  global.Bindery = {
    /** Opens the add-device flow (scan, photo, SN); the person returns with ?bindery_result=bound&bindery_sn=… */
    addDevice: function (opts) {
      return open('/hw/addDevice', opts);
    },
    /** Opens a device's page; the person returns with ?bindery_result=viewed&bindery_sn=… */
    viewDevice: function (sn, opts) {
      return open('/devices/' + encodeURIComponent(sn), opts);
    },
    /** The outcome on the page Bindery sent the person back to, or null: { sn, result } (bound, shared, transferred, viewed, cancelled). */
    parseReturn: function (href) {
      var u = new URL(href || global.location.href);
      var result = u.searchParams.get('bindery_result');
      return result ? { sn: u.searchParams.get('bindery_sn'), result: result } : null;
    }
  };
})(typeof window !== 'undefined' ? window : this);
`;
