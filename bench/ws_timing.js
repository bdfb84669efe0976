/* Injected by bench/live_latency.py (nothing in the portal loads it): timestamps of the live
 * WebSocket's messages, to split the time to first frame into its parts. window.__pbWs:
 * `created` (the player opened the socket), `open`, `init` (the init text), then `messages`:
 * [performance.now(), bytes] of the first 600 binary messages (the init segment first). */
(function () {
  'use strict';
  var Native = window.WebSocket;
  var t = (window.__pbWs = {created: null, open: null, init: null, messages: []});
  function Timed(url, protocols) {
    var ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    if (t.created === null) { t.created = performance.now(); }
    ws.addEventListener('open', function () {
      if (t.open === null) { t.open = performance.now(); }
    });
    ws.addEventListener('message', function (e) {
      var now = performance.now();
      if (typeof e.data === 'string') {
        if (t.init === null) { t.init = now; }
      } else if (t.messages.length < 600) {
        t.messages.push([now, e.data.byteLength || e.data.size || 0]);
      }
    });
    return ws;
  }
  Timed.prototype = Native.prototype;
  ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'].forEach(function (k) { Timed[k] = Native[k]; });
  window.WebSocket = Timed;
})();
