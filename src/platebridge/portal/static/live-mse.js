/* PlateBridge live player, the Media Source part (loaded before live.js, which mixes these
 * methods into its LivePlayer; docs/live.md "Browser"):
 *
 * - `resetMedia(mime, gen)`: a fresh (Managed)MediaSource for a new init segment (the `init`
 *   message, or a `restarted` notice); a SourceBuffer in `segments` mode; a codec that
 *   `addSourceBuffer` refuses is said in words (`unsupported`), never retried;
 * - `startAtKeyframe()`: the first picture is the keyframe cache's first frame, shown at once,
 *   then a fast-forward (FAST_RATE) to the live edge;
 * - `enqueue` / `pump`: binary messages through a queue, one `appendBuffer` at a time; the
 *   buffer behind the play head trimmed to KEEP_S; QuotaExceededError trims to 1 s and retries;
 *   a queue over MAX_QUEUE_BYTES reconnects (which starts again at a keyframe);
 * - `control()`, every TICK_MS: behind the buffered end by more than CATCH_UP_S → playback rate
 *   up to MAX_RATE, scaled with the lag, back to 1.0 at <= SETTLED_S; more than JUMP_S behind
 *   (or outside the buffer) → seek to the edge; a silent socket (SILENT_MS) reconnects;
 * - `retryDelay(failedFor, normal)`: quick retries while the camera is coming back;
 * - `detachMedia()`: drop the queue and the MediaSource;
 * - `show(state, text)`, `label()` ("LIVE · 0.4 s · H.264 High"), `setGlassToGlass(s)`;
 * - `liveUrl(token answer, pod, camera)`: the WebSocket address (not a method).
 * The methods use the player's `video`, `ms`, `sb`, `queue`, `queued`, `ws`, `lastMessage`,
 * `generation`, `codecs`, `delay`, `root` and call its `reconnect`, `unsupported`, `show`,
 * `label`.
 */
(function () {
  'use strict';

  var MS = window.ManagedMediaSource || window.MediaSource;
  var MANAGED = !!window.ManagedMediaSource;
  var KEEP_S = 10;
  var CATCH_UP_S = 0.5;
  var SETTLED_S = 0.3;
  var JUMP_S = 3;
  var EDGE_S = 0.3;
  var FAST_RATE = 4;
  var FAST_FOR_MS = 6000;  // then the ordinary control (which jumps when far behind)
  var START_GIVE_UP_MS = 2000;
  var MIN_RATE = 1.1;
  var MAX_RATE = 1.5;
  var FULL_RATE_S = 1.5;
  var MAX_QUEUE_BYTES = 16 * 1024 * 1024;
  var QUICK_RETRY_MS = 250;
  var QUICK_FOR_MS = 30000;
  // The POD's words for a camera that is away and being restarted (live-routes, the relay).
  var COMING_BACK = { camera_error: 1, camera_inactive: 1, upstream_ended: 1 };
  var SILENT_MS = 8000;  // an open socket with no message this long is dead (half-open TCP)

  var M = {};

  /* A fresh MediaSource for a new init segment; binary messages wait in the queue meanwhile. */
  M.resetMedia = function (mime, gen) {
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
      self.sb.addEventListener('updateend', function () {
        if (self.starting) { self.startAtKeyframe(); }
        self.pump();
      });
      self.sb.addEventListener('error', function () {
        if (gen !== self.generation) { return; }
        self.reconnect('The stream was interrupted. Reconnecting…');
      });
      self.pump();
    });
    this.video.src = URL.createObjectURL(ms);
    this.starting = true;  // the first frame is not shown yet (see startAtKeyframe)
    var p = this.video.play();  // resolves once the first frames are appended
    if (p && p.catch) {
      p.catch(function (e) {
        if (e && e.name === 'NotAllowedError') { self.show('paused', 'Press play to watch.'); }
      });
    }
  };

  /* The first picture at once: the keyframe cache begins with a keyframe, which decodes
   * alone; seeking to the live edge first would make the browser decode every frame of the
   * cache (up to a whole GOP: 250 frames at a 10 s GOP) before showing anything, and a seek
   * shows no readable picture until it is done. So the play head goes to the cache's start,
   * and once that frame is on screen the player fast-forwards (FAST_RATE, for at most
   * FAST_FOR_MS) while it is more than FULL_RATE_S behind: the picture moves
   * all along and is live after lag / (rate - 1) s, or as fast as the decoder goes. Called
   * after every append until the first frame is shown. */
  M.startAtKeyframe = function () {
    var v = this.video;
    var b = this.sb.buffered;
    if (!this.starting || !b.length || this.startSeek) { return; }
    var self = this;
    var gen = this.generation;
    this.startSeek = true;
    var shown = function () {
      if (gen !== self.generation || !self.starting) { return; }
      self.starting = false;
      self.startSeek = false;
      var sb = self.sb;
      var bb = sb && self.ms && self.ms.readyState === 'open' ? sb.buffered : null;
      if (!bb || !bb.length) { return; }
      if (bb.end(bb.length - 1) - v.currentTime > FULL_RATE_S) {
        self.fastUntil = Date.now() + FAST_FOR_MS;
        v.playbackRate = FAST_RATE;
      }
    };
    if (v.currentTime < b.start(0) || v.currentTime > b.end(0)) {
      v.currentTime = b.start(0);
    }
    if (v.requestVideoFrameCallback) {
      v.requestVideoFrameCallback(function () { shown(); });
    } else {
      v.addEventListener('seeked', function once() {
        v.removeEventListener('seeked', once);
        window.setTimeout(shown, 50);
      });
    }
    window.setTimeout(shown, START_GIVE_UP_MS);  // no frame callback (a paused video): go on
  };

  /* How soon to open a socket again after `failedFor` ms of outage: QUICK_RETRY_MS while the
   * server says the camera itself is coming back (the POD restarts its ffmpeg the moment the
   * camera answers again, so the picture is back within a fraction of a second of that), for
   * at most QUICK_FOR_MS; else `normal`. Each try is one socket, refused at once while the
   * camera is away: at most 4 a second per viewer, for 30 s. */
  M.retryDelay = function (failedFor, normal) {
    var err = this.lastError;
    var back = err && COMING_BACK[err.error];
    return back && failedFor < QUICK_FOR_MS ? QUICK_RETRY_MS : normal;
  };

  M.enqueue = function (data) {
    this.queue.push(data);
    this.queued += data.byteLength;
    if (this.queued > MAX_QUEUE_BYTES) {  // the page is not keeping up: start again at a keyframe
      this.reconnect('The stream fell behind. Reconnecting…');
      return;
    }
    this.pump();
  };

  /* One append at a time; before it, drop what is more than KEEP_S behind the play head. */
  M.pump = function () {
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
  M.control = function () {
    var v = this.video;
    if (this.ws && Date.now() - this.lastMessage > SILENT_MS) {
      this.reconnect('The stream stalled. Reconnecting…');
      return;
    }
    var b = this.sb && this.ms && this.ms.readyState === 'open' ? this.sb.buffered : null;
    if (!b || !b.length || this.starting) { this.delay = null; this.label(); return; }
    var end = b.end(b.length - 1);
    var inRange = false;
    for (var i = 0; i < b.length; i++) {
      if (v.currentTime >= b.start(i) && v.currentTime <= b.end(i)) { inRange = true; }
    }
    var lag = end - v.currentTime;
    var fast = inRange && lag > FULL_RATE_S && Date.now() < this.fastUntil;  // the start's
    if (!fast) { this.fastUntil = 0; }
    if (!fast && (!inRange || (lag > JUMP_S && !v.paused))) {  // a viewer's pause is left alone
      // Not inside the buffer (start, a gap) or far behind: go to the live edge.
      v.currentTime = Math.max(b.start(b.length - 1), end - EDGE_S);
      lag = end - v.currentTime;
    }
    // Catching up starts above CATCH_UP_S and goes on down to SETTLED_S (hysteresis), at a rate
    // growing with the lag: MIN_RATE at CATCH_UP_S, MAX_RATE from FULL_RATE_S. The floor makes
    // it arrive (a rate shrinking to 1.0 with the lag would approach the target forever).
    var rate = 1;
    if (fast) {
      rate = FAST_RATE;
    } else if (lag > CATCH_UP_S || (v.playbackRate > 1 && lag > SETTLED_S)) {
      var k = (lag - CATCH_UP_S) / (FULL_RATE_S - CATCH_UP_S);
      rate = Math.max(MIN_RATE, Math.min(MAX_RATE, MIN_RATE + k * (MAX_RATE - MIN_RATE)));
    }
    if (Math.abs(v.playbackRate - rate) > 0.02) { v.playbackRate = rate; }
    this.delay = Math.max(0, lag);
    this.root.setAttribute('data-delay', this.delay.toFixed(3));
    this.label();
  };

  M.detachMedia = function () {
    this.starting = false;
    this.startSeek = false;
    this.fastUntil = 0;
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

  // -- what the viewer sees: state, status line, the LIVE label

  M.show = function (state, text) {
    this.root.setAttribute('data-state', state);
    if (!this.statusEl) { return; }
    this.statusEl.textContent = text;
    this.statusEl.hidden = !text;
  };

  M.onPlaying = function () {
    if (this.stopped) { return; }
    this.failedAt = 0;
    this.show('playing', '');
  };

  /* The glass-to-glass figure (seconds), when something on the page measures it. */
  M.setGlassToGlass = function (seconds) { this.glass = seconds; };

  M.label = function () {
    if (!this.labelEl) { return; }
    var playing = this.root.getAttribute('data-state') === 'playing';
    if (!playing || this.delay === null) { this.labelEl.hidden = true; return; }
    var parts = ['LIVE', this.delay.toFixed(1) + ' s'];
    if (this.glass !== null) { parts.push('glass-to-glass ' + this.glass.toFixed(1) + ' s'); }
    if (this.codecs) { parts.push(window.PlateBridgeCodecs.codecLabel(this.codecs)); }
    this.labelEl.textContent = parts.join(' · ');
    this.labelEl.hidden = false;
  };

  // -- where the socket goes

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

  window.PlateBridgeLiveMedia = { methods: M, MediaSource: MS, TICK_MS: 250, liveUrl: liveUrl };
}());
