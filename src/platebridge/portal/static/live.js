/* PlateBridge MSE live player: every `.player[data-live]` plays its camera from the live
 * WebSocket (docs/live.md, "Viewer protocol"): a JSON `init` text message (mime, codecs), then
 * binary messages (the init segment, then one fMP4 fragment each), notices and an `error` before
 * the server closes.
 *
 * - ManagedMediaSource where present (Safari 17+), else MediaSource; neither (iOS < 17.1), or a
 *   live path that never delivered an init on this page (older portal or POD, a proxy that eats
 *   WebSockets) → the HLS player of player.js, on the same page (`?player=hls` forces it);
 * - `isTypeSupported(mime)` before any SourceBuffer: a codec the browser cannot decode (H.265 in
 *   Chromium) is said in words, with what to do, and the player stops (no reconnect loop);
 * - SourceBuffer in `segments` mode, one append at a time (queue), the buffer behind the play
 *   head trimmed to KEEP_S; the `init` message and a `restarted` notice (new codecs and mime,
 *   the new init segment follows) each start a fresh MediaSource;
 * - latency: behind the buffered end by more than CATCH_UP_S → playback rate up to MAX_RATE,
 *   scaled with the lag, back to 1.0 at ≤ SETTLED_S; more than JUMP_S behind → seek to the edge;
 * - reconnect: a closed or failed socket (or one silent for SILENT_MS) is reopened after
 *   RETRY_MS (1 s), so the picture is back within ~2 s of the stream (a camera restart); once
 *   the outage is longer than RETRY_FAST_FOR_MS the pause is RETRY_SLOW_MS (5 s), so a camera
 *   that stays down costs one socket per 5 s; token refusals fetch a new token first;
 * - the token goes only where player.js's tokenAllowed says (our /api/pod/live/, or the POD's
 *   direct origin in direct mode); the token is renewed at 2/3 of its lifetime.
 * State: `data-state` on the .player (connecting, playing, reconnecting, offline, error,
 * unsupported), `data-player` (mse or hls), status text in `.player-status`, and the label
 * "LIVE · 0.4 s · H.264 High" in `.player-label`.
 */
(function () {
  'use strict';

  var P = window.PlateBridgePlayer;
  var MS = window.ManagedMediaSource || window.MediaSource;
  var MANAGED = !!window.ManagedMediaSource;
  var RETRY_MS = 1000;
  var RETRY_SLOW_MS = 5000;
  var RETRY_FAST_FOR_MS = 60000;  // as player.js's probes: 1 s for a minute, then 5 s
  var TICK_MS = 250;
  var KEEP_S = 10;
  var CATCH_UP_S = 0.5;
  var SETTLED_S = 0.3;
  var JUMP_S = 3;
  var EDGE_S = 0.3;
  var MIN_RATE = 1.1;
  var MAX_RATE = 1.5;
  var FULL_RATE_S = 1.5;
  var MAX_QUEUE_BYTES = 16 * 1024 * 1024;
  var SILENT_MS = 8000;  // an open socket with no message this long is dead (half-open TCP)
  // Server errors said in words while retrying; token errors fetch a new token first.
  var DOWN = { camera_inactive: 1, pod_offline: 1, camera_error: 1, pod_unreachable: 1 };
  var TOKEN = { token_expired: 1, token_invalid: 1, token_missing: 1 };
  var NO_LIVE = { not_found: 1, live_unavailable: 1 };
  var FALLBACK_TRIES = 3;  // sockets without any init before this page gives HLS a go
  var H265_TEXT = 'This camera sends H.265, which this browser cannot play. Use the camera\'s ' +
    'H.264 substream, or turn on transcoding (transcode: h264) for it.';

  var AVC_PROFILES = { 66: 'Baseline', 77: 'Main', 88: 'Extended', 100: 'High', 110: 'High 10',
    122: 'High 4:2:2', 244: 'High 4:4:4' };

  /* "avc1.640028,mp4a.40.2" → "H.264 High, AAC"; unknown codecs are shown as sent. */
  function codecLabel(codecs) {
    return String(codecs || '').split(',').map(function (c) {
      c = c.trim();
      var m = /^avc[13]\.([0-9a-f]{2})([0-9a-f]{2})[0-9a-f]{2}$/i.exec(c);
      if (m) {
        var profile = parseInt(m[1], 16);
        var constrained = profile === 66 && (parseInt(m[2], 16) & 0x40) ? 'Constrained ' : '';
        return 'H.264 ' + constrained + (AVC_PROFILES[profile] || 'profile ' + profile);
      }
      m = /^(?:hvc1|hev1)\.[A-C]?(\d+)\./i.exec(c + '.');
      if (m) { return 'H.265' + ({ 1: ' Main', 2: ' Main 10' }[m[1]] || ''); }
      if (/^mp4a\.40\./i.test(c)) { return 'AAC'; }
      return c;
    }).filter(Boolean).join(', ');
  }

  function isH265(codecs) { return /(^|,)\s*(hvc1|hev1)\./i.test(codecs || ''); }

  /* The live URL: the portal's `live_url` when it gives one, else the contract's address
   * (proxy: the portal's /api/pod/live/{pod}; direct: the POD's /live/{camera}/ws). */
  function liveUrl(t, pod, camera) {
    var u;
    if (t.live_url) {
      u = new URL(t.live_url, window.location.href);
    } else if (t.stream_mode === 'direct' && t.direct_url) {
      u = new URL('/live/' + encodeURIComponent(camera) + '/ws', t.direct_url);
    } else {
      u = new URL('/api/pod/live/' + encodeURIComponent(pod), window.location.href);
      u.searchParams.set('camera_id', camera);
    }
    if (u.protocol === 'http:') { u.protocol = 'ws:'; }
    if (u.protocol === 'https:') { u.protocol = 'wss:'; }
    return u.toString();
  }

  function LivePlayer(root) {
    this.root = root;
    this.video = root.querySelector('video');
    this.statusEl = root.querySelector('.player-status');
    this.labelEl = root.querySelector('.player-label');
    this.pod = root.getAttribute('data-pod');
    this.camera = root.getAttribute('data-camera');
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
    this.tick = window.setInterval(function () { self.control(); }, TICK_MS);
  }

  LivePlayer.prototype.show = function (state, text) {
    this.root.setAttribute('data-state', state);
    if (!this.statusEl) { return; }
    this.statusEl.textContent = text;
    this.statusEl.hidden = !text;
  };

  LivePlayer.prototype.onPlaying = function () {
    if (this.stopped) { return; }
    this.failedAt = 0;
    this.show('playing', '');
  };

  /* The glass-to-glass figure (seconds), when something on the page measures it. */
  LivePlayer.prototype.setGlassToGlass = function (seconds) { this.glass = seconds; };

  LivePlayer.prototype.label = function () {
    if (!this.labelEl) { return; }
    var playing = this.root.getAttribute('data-state') === 'playing';
    if (!playing || this.delay === null) { this.labelEl.hidden = true; return; }
    var parts = ['LIVE', this.delay.toFixed(1) + ' s'];
    if (this.glass !== null) { parts.push('glass-to-glass ' + this.glass.toFixed(1) + ' s'); }
    if (this.codecs) { parts.push(codecLabel(this.codecs)); }
    this.labelEl.textContent = parts.join(' · ');
    this.labelEl.hidden = false;
  };

  LivePlayer.prototype.start = function () {
    var self = this;
    var gen = ++this.generation;
    if (this.root.getAttribute('data-state') !== 'reconnecting') {
      this.show('connecting', 'Connecting…');
    }
    P.requestToken(this.pod, this.camera).then(function (t) {
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
      P.requestToken(self.pod, self.camera).then(function (t) {
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
    var text = isH265(codecs) ? H265_TEXT :
      'This camera sends ' + codecLabel(codecs) + ', which this browser cannot play.';
    this.fail(text, 'unsupported');
  };

  /* A fresh MediaSource for a new init segment; binary messages wait in the queue meanwhile. */
  LivePlayer.prototype.resetMedia = function (mime, gen) {
    var self = this;
    this.detachMedia();
    var ms = this.ms = new MS();
    if (MANAGED) { this.video.disableRemotePlayback = true; }
    ms.addEventListener('sourceopen', function () {
      if (gen !== self.generation || ms !== self.ms) { return; }
      try {
        self.sb = ms.addSourceBuffer(mime);
      } catch (e) {
        self.unsupported(self.codecs);
        return;
      }
      self.sb.mode = 'segments';
      self.sb.addEventListener('updateend', function () { self.pump(); });
      self.sb.addEventListener('error', function () {
        if (gen !== self.generation) { return; }
        self.reconnect('The stream was interrupted. Reconnecting…');
      });
      self.pump();
    });
    this.video.src = URL.createObjectURL(ms);
    var p = this.video.play();  // resolves once the first frames are appended
    if (p && p.catch) {
      p.catch(function (e) {
        if (e && e.name === 'NotAllowedError') { self.show('paused', 'Press play to watch.'); }
      });
    }
  };

  LivePlayer.prototype.enqueue = function (data) {
    this.queue.push(data);
    this.queued += data.byteLength;
    if (this.queued > MAX_QUEUE_BYTES) {  // the page is not keeping up: start again at a keyframe
      this.reconnect('The stream fell behind. Reconnecting…');
      return;
    }
    this.pump();
  };

  /* One append at a time; before it, drop what is more than KEEP_S behind the play head. */
  LivePlayer.prototype.pump = function () {
    var sb = this.sb;
    if (!sb || sb.updating || !this.ms || this.ms.readyState !== 'open') { return; }
    var b = sb.buffered;
    var now = this.video.currentTime;
    if (b.length && now - b.start(0) > KEEP_S + 5) {
      sb.remove(0, now - KEEP_S);
      return;  // updateend pumps again
    }
    if (!this.queue.length) { return; }
    var data = this.queue.shift();
    this.queued -= data.byteLength;
    try {
      sb.appendBuffer(data);
    } catch (e) {
      if (e.name === 'QuotaExceededError' && b.length && now - b.start(0) > 1) {
        this.queue.unshift(data);
        this.queued += data.byteLength;
        sb.remove(0, now - 1);
        return;
      }
      this.reconnect('The stream was interrupted. Reconnecting…');
    }
  };

  /* Latency control, every TICK_MS: rate up to MAX_RATE when behind, a jump when far behind. */
  LivePlayer.prototype.control = function () {
    var v = this.video;
    if (this.ws && Date.now() - this.lastMessage > SILENT_MS) {
      this.reconnect('The stream stalled. Reconnecting…');
      return;
    }
    var b = this.sb && this.ms && this.ms.readyState === 'open' ? this.sb.buffered : null;
    if (!b || !b.length) { this.delay = null; this.label(); return; }
    var end = b.end(b.length - 1);
    var inRange = false;
    for (var i = 0; i < b.length; i++) {
      if (v.currentTime >= b.start(i) && v.currentTime <= b.end(i)) { inRange = true; }
    }
    var lag = end - v.currentTime;
    if (!inRange || (lag > JUMP_S && !v.paused)) {  // a viewer's pause is left alone
      // Not inside the buffer (start, a gap) or far behind: go to the live edge.
      v.currentTime = Math.max(b.start(b.length - 1), end - EDGE_S);
      lag = end - v.currentTime;
    }
    // Catching up starts above CATCH_UP_S and goes on down to SETTLED_S (hysteresis), at a rate
    // growing with the lag: MIN_RATE at CATCH_UP_S, MAX_RATE from FULL_RATE_S. The floor makes
    // it arrive (a rate shrinking to 1.0 with the lag would approach the target forever).
    var rate = 1;
    if (lag > CATCH_UP_S || (v.playbackRate > 1 && lag > SETTLED_S)) {
      var k = (lag - CATCH_UP_S) / (FULL_RATE_S - CATCH_UP_S);
      rate = Math.max(MIN_RATE, Math.min(MAX_RATE, MIN_RATE + k * (MAX_RATE - MIN_RATE)));
    }
    if (Math.abs(v.playbackRate - rate) > 0.02) { v.playbackRate = rate; }
    this.delay = Math.max(0, lag);
    this.root.setAttribute('data-delay', this.delay.toFixed(3));
    this.label();
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
    var delay = Date.now() - this.failedAt > RETRY_FAST_FOR_MS ? RETRY_SLOW_MS : RETRY_MS;
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

  LivePlayer.prototype.detachMedia = function () {
    this.queue = [];
    this.queued = 0;
    this.sb = null;
    if (this.ms) {
      this.ms = null;
      URL.revokeObjectURL(this.video.src);
      this.video.removeAttribute('src');
      this.video.load();
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

  function startHls(root) {
    root.setAttribute('data-player', 'hls');
    var player = new P.Player(root);
    root.platebridgePlayer = player;
    player.start();
  }

  window.PlateBridgeLive = { codecLabel: codecLabel, liveUrl: liveUrl, H265_TEXT: H265_TEXT };

  document.querySelectorAll('.player[data-live][data-pod][data-camera]').forEach(function (root) {
    var forceHls = /(?:^|[?&])player=hls(?:&|$)/.test(window.location.search.slice(1));
    if (!MS || forceHls) { startHls(root); return; }
    root.setAttribute('data-player', 'mse');
    var player = new LivePlayer(root);
    root.platebridgeLive = player;
    player.start();
  });
}());
