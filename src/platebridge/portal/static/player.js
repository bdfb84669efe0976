/* PlateBridge live player: every `.player[data-pod][data-camera]` on the page plays its camera.
 *
 * - asks the portal for a stream token (POST /api/pod/stream-token, session cookie + CSRF header)
 *   and plays `proxy_url` or `direct_url` according to the pod's stream mode;
 * - renews the token at 2/3 of its lifetime; every later playlist/segment request carries the
 *   newest token (hls.js xhrSetup replaces the `token` query parameter);
 * - the token goes only to our own URLs (tokenAllowed): same origin as the page with a path under
 *   PROXY_PREFIX, or, in direct mode, the exact origin of the POD's direct_url. Any other URL
 *   hls.js is told to load (e.g. an absolute URL in a playlist) is requested without the token;
 * - RECOVERY RULE: on a fatal error or a stall it says so on screen and schedules a full hls.js
 *   restart with back-off (1 s doubling to 30 s, reset once playing). Meanwhile, if the stream
 *   has played before, it probes the playlist with a plain fetch every PROBE_MS (every
 *   PROBE_SLOW_MS once the outage is longer than PROBE_FAST_FOR_MS) and restarts at once when it
 *   answers 200 with a playlist that lists segments: a POD that is back plays again within ~1 s,
 *   a POD that stays down costs one small GET a second (then one per 5 s), never a restart storm.
 *   Token renewal keeps running while failed, so probes and the restart carry a valid token;
 * - hls.js where Media Source Extensions exist, else native HLS (Safari/iOS).
 * State for tests and assistive tech: `data-state` on the .player, text in its status line.
 */
(function () {
  'use strict';

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var CSRF = csrfMeta ? csrfMeta.getAttribute('content') : '';
  var STALL_MS = 15000;
  var MAX_BACKOFF_MS = 30000;
  var PROBE_MS = 1000;
  var PROBE_SLOW_MS = 5000;
  var PROBE_FAST_FOR_MS = 60000;
  var PROXY_PREFIX = '/api/pod/proxy-stream/';
  var LIVE_PREFIX = '/api/pod/live/';

  /* The origin of `u` with ws:/wss: counted as http:/https: (a WebSocket to the same host and
   * port is the same server). */
  function httpOrigin(u) {
    var scheme = { 'ws:': 'http:', 'wss:': 'https:' }[u.protocol] || u.protocol;
    return scheme + '//' + u.host;
  }

  /* Whether `url` may carry the viewer's stream token: the portal's own stream routes (HLS
   * proxy, live WebSocket), or the POD whose direct URL the portal handed out (`directOrigin`,
   * null in proxy mode). Used by live.js too. */
  function tokenAllowed(url, directOrigin) {
    var u;
    try { u = new URL(url, window.location.href); } catch (e) { return false; }
    if (httpOrigin(u) === window.location.origin &&
        (u.pathname.indexOf(PROXY_PREFIX) === 0 || u.pathname.indexOf(LIVE_PREFIX) === 0)) {
      return true;
    }
    return !!directOrigin && httpOrigin(u) === directOrigin;
  }

  /* `url` with the newest token when allowed, else `url` with any token parameter removed. */
  function withToken(url, token, directOrigin) {
    var u = new URL(url, window.location.href);
    if (tokenAllowed(u.toString(), directOrigin)) {
      u.searchParams.set('token', token);
    } else {
      u.searchParams.delete('token');
    }
    return u.toString();
  }

  /* `stream` ("main" | "sub", from the element's data-stream) is sent only when given: an
   * older portal's request model refuses unknown keys. */
  function requestToken(podId, cameraId, stream) {
    var body = { pod_id: podId, camera_id: cameraId };
    if (stream) { body.stream = stream; }
    return fetch('/api/pod/stream-token', {
      method: 'POST',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': CSRF },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) {
          var err = new Error(body.detail || ('HTTP ' + r.status));
          err.status = r.status;
          err.code = body.error;
          throw err;
        }
        return body;
      });
    });
  }

  function tokenProblem(err) {
    if (err.status === 401) { return 'Your session has ended: sign in again.'; }
    if (err.status === 404) { return 'This camera does not exist (any more).'; }
    if (err.code === 'pod_offline') { return 'The POD is offline. Retrying…'; }
    if (err.code === 'camera_inactive') { return 'The camera is not reported by its POD. Retrying…'; }
    if (err.status === 409) { return 'Cannot stream: ' + err.message + ' Retrying…'; }
    return 'Could not start the stream (' + err.message + '). Retrying…';
  }

  function Player(root) {
    this.root = root;
    this.video = root.querySelector('video');
    this.statusEl = root.querySelector('.player-status');
    this.pod = root.getAttribute('data-pod');
    this.camera = root.getAttribute('data-camera');
    this.stream = root.getAttribute('data-stream');
    this.stopped = false;
    this.token = null;
    this.hls = null;
    this.renewTimer = null;
    this.retryTimer = null;
    this.probeTimer = null;
    this.url = null;
    this.directOrigin = null;
    this.failedAt = 0;
    this.backoff = 1000;
    this.lastTime = -1;
    this.lastProgress = Date.now();
    this.generation = 0;
    var self = this;
    this.video.addEventListener('playing', function () { self.onPlaying(); });
    this.video.addEventListener('timeupdate', function () { self.onProgress(); });
    this.watchdogTimer = window.setInterval(function () { self.watchdog(); }, 3000);
  }

  Player.prototype.show = function (state, text) {
    this.root.setAttribute('data-state', state);
    if (!this.statusEl) { return; }
    this.statusEl.textContent = text;
    this.statusEl.hidden = !text;
  };

  Player.prototype.tokenUrl = function (url) {
    return withToken(url, this.token, this.directOrigin);
  };

  Player.prototype.onPlaying = function () {
    if (this.stopped) { return; }
    this.backoff = 1000;
    this.failedAt = 0;
    this.lastProgress = Date.now();
    this.show('playing', '');
  };

  Player.prototype.onProgress = function () {
    if (this.stopped) { return; }
    if (this.video.currentTime !== this.lastTime) {
      this.lastTime = this.video.currentTime;
      this.lastProgress = Date.now();
      if (this.root.getAttribute('data-state') !== 'playing' && !this.video.paused) {
        this.show('playing', '');
      }
    }
  };

  Player.prototype.watchdog = function () {
    if (this.root.getAttribute('data-state') !== 'playing' || this.video.paused) { return; }
    if (Date.now() - this.lastProgress > STALL_MS) {
      this.reconnect('The stream stalled. Reconnecting…');
    }
  };

  Player.prototype.scheduleRenewal = function (expiresIn) {
    var self = this;
    window.clearTimeout(this.renewTimer);
    var renewal = this.renewal = {};  // survives reconnects, so probes carry a valid token
    var delay = Math.max(1000, expiresIn * 1000 * 2 / 3);
    this.renewTimer = window.setTimeout(function () {
      requestToken(self.pod, self.camera, self.stream).then(function (t) {
        if (renewal !== self.renewal) { return; }
        self.token = t.token;
        self.scheduleRenewal(t.expires_in);
      }).catch(function (err) {
        if (renewal !== self.renewal) { return; }
        if (err.status === 401 || err.status === 404) { self.fail(tokenProblem(err)); return; }
        self.scheduleRenewal(3);  // retry in 2 s; the current token is still valid meanwhile
      });
    }, delay);
  };

  Player.prototype.start = function () {
    var self = this;
    var gen = ++this.generation;
    if (this.root.getAttribute('data-state') !== 'reconnecting') {
      this.show('connecting', 'Connecting…');
    }
    requestToken(this.pod, this.camera, this.stream).then(function (t) {
      if (gen !== self.generation) { return; }
      self.token = t.token;
      self.scheduleRenewal(t.expires_in);
      var direct = t.stream_mode === 'direct' && t.direct_url;
      var url = direct ? t.direct_url : t.proxy_url;
      self.directOrigin = direct ? new URL(url, window.location.href).origin : null;
      self.url = url;
      self.play(url, gen);
    }).catch(function (err) {
      if (gen !== self.generation) { return; }
      if (err.status === 401 || err.status === 404) { self.fail(tokenProblem(err)); return; }
      self.retry(tokenProblem(err), 'offline');
    });
  };

  Player.prototype.play = function (url, gen) {
    var self = this;
    var video = this.video;
    if (window.Hls && window.Hls.isSupported()) {
      var Hls = window.Hls;
      var mediaRecoveries = 0;
      var hls = new Hls({
        enableWorker: false,
        lowLatencyMode: false,
        liveSyncDurationCount: 3,
        manifestLoadPolicy: { default: { maxTimeToFirstByteMs: 10000, maxLoadTimeMs: 20000,
          timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
          errorRetry: { maxNumRetry: 2, retryDelayMs: 1000, maxRetryDelayMs: 4000 } } },
        xhrSetup: function (xhr, requestUrl) {
          xhr.open('GET', self.tokenUrl(requestUrl), true);
        }
      });
      this.hls = hls;
      hls.on(Hls.Events.MANIFEST_PARSED, function () {
        var p = video.play();
        if (p && p.catch) { p.catch(function () { self.show('paused', 'Press play to watch.'); }); }
      });
      hls.on(Hls.Events.ERROR, function (_event, data) {
        if (gen !== self.generation || !data.fatal) { return; }
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries < 2) {
          mediaRecoveries += 1;
          hls.recoverMediaError();
          return;
        }
        self.reconnect('The stream was interrupted. Reconnecting…');
      });
      hls.loadSource(url);
      hls.attachMedia(video);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      // Native HLS cannot swap tokens per request: on expiry it errors and we reconnect.
      video.src = this.tokenUrl(url);
      video.onerror = function () {
        if (gen === self.generation) { self.reconnect('The stream was interrupted. Reconnecting…'); }
      };
      var p = video.play();
      if (p && p.catch) { p.catch(function () { self.show('paused', 'Press play to watch.'); }); }
    } else {
      this.fail('This browser cannot play live video (no HLS support).');
    }
  };

  Player.prototype.teardown = function () {
    window.clearTimeout(this.retryTimer);
    window.clearTimeout(this.probeTimer);
    if (this.hls) { this.hls.destroy(); this.hls = null; }
    this.video.onerror = null;
    if (this.video.getAttribute('src')) {
      this.video.removeAttribute('src');
      this.video.load();
    }
  };

  Player.prototype.retry = function (message, state) {
    var self = this;
    this.teardown();
    this.show(state || 'reconnecting', message);
    var delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    this.retryTimer = window.setTimeout(function () { self.start(); }, delay);
    if (!this.failedAt) { this.failedAt = Date.now(); }
    if (this.url) { this.scheduleProbe(this.generation); }
  };

  /* One cheap GET of the playlist; a 200 listing segments restarts playback now. */
  Player.prototype.scheduleProbe = function (gen) {
    var self = this;
    var slow = Date.now() - this.failedAt > PROBE_FAST_FOR_MS;
    window.clearTimeout(this.probeTimer);
    this.probeTimer = window.setTimeout(function () {
      if (gen !== self.generation) { return; }
      fetch(self.tokenUrl(self.url), { cache: 'no-store', credentials: 'same-origin' })
        .then(function (r) { return r.ok ? r.text() : ''; })
        .catch(function () { return ''; })
        .then(function (body) {
          if (gen !== self.generation) { return; }
          if (body.indexOf('#EXTINF') >= 0) {
            window.clearTimeout(self.retryTimer);
            self.start();
          } else {
            self.scheduleProbe(gen);
          }
        });
    }, slow ? PROBE_SLOW_MS : PROBE_MS);
  };

  Player.prototype.reconnect = function (message) {
    this.generation += 1;  // ignore late events of the old player
    this.retry(message, 'reconnecting');
  };

  Player.prototype.fail = function (message) {
    this.generation += 1;
    this.renewal = null;
    window.clearTimeout(this.renewTimer);
    this.teardown();
    this.show('error', message);
  };

  /* Stop for good without a message (PlateBridgeLive.detach): no timer stays behind. */
  Player.prototype.stop = function () {
    this.stopped = true;
    this.generation += 1;
    this.renewal = null;
    window.clearTimeout(this.renewTimer);
    window.clearInterval(this.watchdogTimer);
    this.teardown();
  };

  window.PlateBridgePlayer = {
    tokenAllowed: tokenAllowed, withToken: withToken, httpOrigin: httpOrigin,
    requestToken: requestToken,
    tokenProblem: tokenProblem, Player: Player
  };

  // Players marked data-live are started by live.js (which falls back to this HLS player).
  var hlsPlayers = document.querySelectorAll('.player[data-pod][data-camera]:not([data-live])');
  hlsPlayers.forEach(function (root) {
    var player = new Player(root);
    root.platebridgePlayer = player;
    player.start();
  });
}());
