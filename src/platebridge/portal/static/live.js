/* PlateBridge MSE live player: every `.player[data-live]` plays its camera from the live
 * WebSocket (docs/live.md, "Viewer protocol"): a JSON `init` text message (mime, codecs), then
 * binary messages (the init segment, then one fMP4 fragment each), notices and an `error` before
 * the server closes. Needs player.js (tokens, the HLS fallback), codecs.js (labels, the codec
 * check) and live-mse.js (the Media Source part: appending, latency control) loaded before it.
 *
 * - (Managed)MediaSource, else (iOS < 17.1, or a live path that never delivered an init on
 *   this page) the HLS player of player.js on the same page; `?player=hls` forces it;
 * - the `init` mime goes to `isTypeSupported` first: a codec the browser cannot decode (H.265 in
 *   Chromium) is said in words and the player stops (no reconnect loop); an element codecs.js
 *   marked `data-codec-supported="false"` is not started at all;
 * - reconnect after RETRY_MS (1 s), RETRY_SLOW_MS (5 s) once the outage is longer than
 *   RETRY_FAST_FOR_MS; token refusals fetch a new token first; the token goes only where
 *   player.js's tokenAllowed says and is renewed at 2/3 of its lifetime; `data-stream`
 *   (main|sub) on the element asks the portal for that stream;
 * - `PlateBridgeLive.attach(el)` / `.detach(el)` start and stop one element's player (MSE or
 *   its HLS fallback); elements with `data-lazy` are left to the page (the grid starts tiles as
 *   they scroll into view), the others start on load.
 * State: `data-state` on the .player (connecting, playing, reconnecting, offline, error,
 * unsupported, idle after detach), `data-player` (mse or hls), status text in `.player-status`,
 * and the label "LIVE · 0.4 s · H.264 High" in `.player-label`.
 */
(function () {
  'use strict';

  var P = window.PlateBridgePlayer;
  var C = window.PlateBridgeCodecs;
  var MEDIA = window.PlateBridgeLiveMedia;
  var MS = MEDIA.MediaSource;
  var RETRY_MS = 1000;
  var RETRY_SLOW_MS = 5000;
  var RETRY_FAST_FOR_MS = 60000;  // as player.js's probes: 1 s for a minute, then 5 s
  // Server errors said in words while retrying; token errors fetch a new token first.
  var DOWN = { camera_inactive: 1, pod_offline: 1, camera_error: 1, pod_unreachable: 1 };
  var TOKEN = { token_expired: 1, token_invalid: 1, token_missing: 1 };
  var NO_LIVE = { not_found: 1, live_unavailable: 1 };
  var FALLBACK_TRIES = 3;  // sockets without any init before this page gives HLS a go

  var liveUrl = MEDIA.liveUrl;

  function LivePlayer(root) {
    this.root = root;
    this.video = root.querySelector('video');
    this.statusEl = root.querySelector('.player-status');
    this.labelEl = root.querySelector('.player-label');
    this.pod = root.getAttribute('data-pod');
    this.camera = root.getAttribute('data-camera');
    this.stream = root.getAttribute('data-stream');
    this.token = null;
    this.url = null;
    this.directOrigin = null;
    this.derived = false;
    this.everInit = false;
    this.failedTries = 0;
    this.ws = null;
    this.lastMessage = 0;
    this.ms = null;
    this.sb = null;
    this.queue = [];
    this.queued = 0;
    this.codecs = '';
    this.mime = '';
    this.delay = null;
    this.glass = null;
    this.failedAt = 0;
    this.lastError = null;
    this.stopped = false;
    this.generation = 0;
    this.retryTimer = null;
    this.renewTimer = null;
    this.video.muted = true;  // audio starts muted (autoplay needs it, and a gate is noisy)
    var self = this;
    this.video.addEventListener('playing', function () { self.onPlaying(); });
    this.tick = window.setInterval(function () { self.control(); }, MEDIA.TICK_MS);
  }

  // appending, latency control, the MediaSource (live-mse.js)
  Object.keys(MEDIA.methods).forEach(function (name) {
    LivePlayer.prototype[name] = MEDIA.methods[name];
  });

  LivePlayer.prototype.start = function () {
    var self = this;
    var gen = ++this.generation;
    if (this.root.getAttribute('data-state') !== 'reconnecting') {
      this.show('connecting', 'Connecting…');
    }
    P.requestToken(this.pod, this.camera, this.stream).then(function (t) {
      if (gen !== self.generation) { return; }
      self.token = t.token;
      self.scheduleRenewal(t.expires_in);
      self.derived = !t.live_url;
      self.url = liveUrl(t, self.pod, self.camera);
      var direct = t.stream_mode === 'direct' ? (t.direct_url || self.url) : null;
      self.directOrigin = direct ? P.httpOrigin(new URL(direct, window.location.href)) : null;
      self.connect(gen);
    }).catch(function (err) {
      if (gen !== self.generation) { return; }
      if (err.status === 401 || err.status === 404) { self.fail(P.tokenProblem(err)); return; }
      self.retry(P.tokenProblem(err), 'offline', true);
    });
  };

  LivePlayer.prototype.scheduleRenewal = function (expiresIn) {
    var self = this;
    window.clearTimeout(this.renewTimer);
    this.renewTimer = window.setTimeout(function () {
      P.requestToken(self.pod, self.camera, self.stream).then(function (t) {
        if (self.stopped) { return; }
        self.token = t.token;
        self.scheduleRenewal(t.expires_in);
      }).catch(function (err) {
        if (self.stopped) { return; }
        if (err.status === 401 || err.status === 404) { self.fail(P.tokenProblem(err)); return; }
        self.scheduleRenewal(3);  // again in 2 s; the current token is still valid meanwhile
      });
    }, Math.max(1000, expiresIn * 1000 * 2 / 3));
  };

  LivePlayer.prototype.connect = function (gen) {
    var self = this;
    if (!P.tokenAllowed(this.url, this.directOrigin)) {
      this.toHls();  // never hand the token to an address that is not ours; HLS still works
      return;
    }
    this.lastError = null;
    this.lastMessage = Date.now();
    var ws = this.ws = new WebSocket(P.withToken(this.url, this.token, this.directOrigin));
    ws.binaryType = 'arraybuffer';
    ws.onmessage = function (ev) {
      if (gen !== self.generation) { return; }
      self.lastMessage = Date.now();
      if (typeof ev.data === 'string') {
        self.onText(ev.data, gen);
      } else {
        self.enqueue(ev.data);
      }
    };
    ws.onclose = function () {
      if (gen !== self.generation) { return; }
      self.onClosed();
    };
  };

  LivePlayer.prototype.onText = function (text, gen) {
    var msg;
    try { msg = JSON.parse(text); } catch (e) { return; }
    var restarted = msg.type === 'notice' && msg.reason === 'restarted';
    if (msg.type === 'init' || restarted) {
      // The first init, or the camera restarted (its notice carries the new codecs and mime;
      // the new init segment follows): a fresh MediaSource either way.
      this.everInit = true;
      this.codecs = msg.codecs || this.codecs;
      this.mime = msg.mime || this.mime;
      if (!this.mime || !MS.isTypeSupported(this.mime)) {
        this.unsupported(this.codecs);
        return;
      }
      this.resetMedia(this.mime, gen);
    } else if (msg.type === 'error') {
      this.lastError = msg;
    }
    // `skipped` needs nothing: the next fragment is a keyframe.
  };

  LivePlayer.prototype.unsupported = function (codecs) {
    this.fail(C.unsupportedText(codecs), 'unsupported');
  };

  LivePlayer.prototype.onClosed = function () {
    var err = this.lastError;
    this.failedTries = this.everInit ? 0 : this.failedTries + 1;
    if (!this.everInit && (this.derived || (err && NO_LIVE[err.error]) ||
                           this.failedTries >= FALLBACK_TRIES)) {
      // The live path never worked on this page: an older portal (no live URL, nothing at the
      // contract's address), a POD without the live endpoint (`not_found`) or with its live
      // output off (`live_unavailable`), or something in between that eats WebSockets. Play
      // HLS instead, on this page.
      this.toHls();
      return;
    }
    if (err && TOKEN[err.error]) {
      this.retry('The stream was interrupted. Reconnecting…', 'reconnecting', true);
    } else if (err && DOWN[err.error]) {
      var text = err.error === 'pod_offline' ? 'The POD is offline. Retrying…' :
        'Cannot stream: ' + (err.detail || err.error) + ' Retrying…';
      this.retry(text, 'offline', false);
    } else {
      this.retry('The stream was interrupted. Reconnecting…', 'reconnecting', false);
    }
  };

  /* Try again: reopen the socket after RETRY_MS (RETRY_SLOW_MS once the outage is long);
   * `fresh` asks for a new token first. */
  LivePlayer.prototype.retry = function (message, state, fresh) {
    var self = this;
    var gen = ++this.generation;
    this.closeSocket();
    this.show(state, message);
    if (!this.failedAt) { this.failedAt = Date.now(); }
    var failedFor = Date.now() - this.failedAt;  // quicker while the camera comes back
    var delay = failedFor > RETRY_FAST_FOR_MS ? RETRY_SLOW_MS :
      this.retryDelay(failedFor, RETRY_MS);
    window.clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(function () {
      if (gen !== self.generation) { return; }
      if (fresh || !self.url) { self.start(); } else { self.connect(gen); }
    }, delay);
  };

  LivePlayer.prototype.reconnect = function (message) {
    this.retry(message, 'reconnecting', false);
  };

  LivePlayer.prototype.closeSocket = function () {
    if (this.ws) {
      this.ws.onmessage = null;
      this.ws.onclose = null;
      try { this.ws.close(); } catch (e) { /* already closed */ }
      this.ws = null;
    }
  };

  LivePlayer.prototype.fail = function (message, state) {
    this.stopped = true;
    this.generation += 1;
    window.clearTimeout(this.retryTimer);
    window.clearTimeout(this.renewTimer);
    window.clearInterval(this.tick);
    this.closeSocket();
    this.detachMedia();
    this.delay = null;
    if (this.labelEl) { this.labelEl.hidden = true; }
    this.show(state || 'error', message);
  };

  /* The HLS player of player.js on the same element (MSE missing, or no live URL). */
  LivePlayer.prototype.toHls = function () {
    this.fail('', 'connecting');
    startHls(this.root);
  };

  /* hls.js (624 KB) is fetched and parsed only when a player falls back to HLS, never on the
   * MSE path, where it cost ~100 ms of every live page's start. Without MSE it could not run
   * anyway (the browser plays HLS itself: player.js). */
  var HLS_SRC = '/static/vendor/hls.min.js';
  var hlsScript = null;
  function loadHls() {
    if (window.Hls || !MS) { return Promise.resolve(); }
    if (!hlsScript) {
      hlsScript = new Promise(function (resolve) {
        var script = document.createElement('script');
        script.src = HLS_SRC;
        script.onload = script.onerror = function () { resolve(); };
        document.head.appendChild(script);
      });
    }
    return hlsScript;
  }

  function startHls(root) {
    root.setAttribute('data-player', 'hls');
    var pending = { stop: function () { pending.stopped = true; }, stopped: false };
    root.platebridgePlayer = pending;  // detach() while hls.js loads cancels the start
    loadHls().then(function () {
      if (pending.stopped || root.platebridgePlayer !== pending) { return; }
      var player = new P.Player(root);
      root.platebridgePlayer = player;
      player.start();
    });
  }

  /* Stop without a message (detach): sockets, timers and the MediaSource. */
  LivePlayer.prototype.stop = function () {
    this.fail('', 'idle');
  };

  var FORCE_HLS = /(?:^|[?&])player=hls(?:&|$)/.test(window.location.search.slice(1));

  /* Start the player of one `.player[data-live]` element (no-op when it runs already, or when
   * codecs.js found its camera's codec unplayable here: the element says so instead). */
  function attach(root) {
    if ((root.platebridgeLive && !root.platebridgeLive.stopped) || root.platebridgePlayer) {
      return;
    }
    if (C && C.check) { C.check(root); }
    if (root.getAttribute('data-codec-supported') === 'false') { return; }
    if (!MS || FORCE_HLS) { startHls(root); return; }
    root.setAttribute('data-player', 'mse');
    var player = new LivePlayer(root);
    root.platebridgeLive = player;
    player.start();
  }

  /* Stop it (the grid, when a tile leaves the screen): no socket, no timer stays behind. */
  function detach(root) {
    var live = root.platebridgeLive;
    var hls = root.platebridgePlayer;
    root.platebridgeLive = null;
    root.platebridgePlayer = null;
    if (live && !live.stopped) { live.stop(); }
    if (hls) { hls.stop(); }
    if (root.getAttribute('data-codec-supported') !== 'false') {
      root.setAttribute('data-state', 'idle');
      var status = root.querySelector('.player-status');
      if (status) { status.textContent = ''; status.hidden = true; }
    }
  }

  window.PlateBridgeLive = {
    attach: attach, detach: detach, liveUrl: liveUrl,
    codecLabel: C.codecLabel, H265_TEXT: C.H265_TEXT
  };

  document.querySelectorAll('.player[data-live][data-pod][data-camera]').forEach(function (root) {
    if (!root.hasAttribute('data-lazy')) { attach(root); }
  });
}());
