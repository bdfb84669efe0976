/* PlateBridge recorded-footage player: plays a camera's recording from any moment through Media
 * Source Extensions (docs/recording.md "Timeline", docs/web.md "Footage"). Used by footage.js
 * (the timeline page) and share.js (the public share page).
 *
 * The POD answers `media?start&duration` with one fMP4 body (an init segment, then fragments
 * from the keyframe at or before `start`) whose media timeline starts at 0; its headers say where
 * that is on the wall clock (X-PlateBridge-Media-Start / -Media-End), what to ask for next
 * (X-PlateBridge-Next, absent when nothing more is recorded yet) and whether it reached the
 * newest recording (X-PlateBridge-Live-Edge). Each body is appended in `segments` mode with
 * `timestampOffset = MediaStart - origin` (origin: the first body's MediaStart after a seek), so
 * the video's time is always `wall - origin`; gaps between bodies are skipped over; at the live
 * edge the player polls for more.
 *
 *   var p = new PlateBridgePlayback.Player(video, {
 *     mediaUrl: function (start, duration) { return '...'; },   // the chunk address
 *     fps: 25,                                                  // frame step
 *     lead: 2,                  // the camera's keyframe interval (s): a fresh start asks from
 *                               // this much earlier, so the first body holds the keyframe
 *     onState: function (state, text) {},   // loading|playing|paused|waiting|live-edge|
 *                                           // no-recording|error|unsupported
 *     onFrame: function (wall) {},          // wall-clock seconds of the frame on screen
 *     onNote: function (text) {},           // a gap skipped, a jump to the next recording
 *     vodUrl: function (from, to) {},       // optional: the VOD playlist (no MSE: native HLS)
 *     findNext: function (wall) {}          // optional: Promise of the next recording's start
 *   });                                     // after `wall` (or null), when a body says none
 *   p.seek(wall, {paused: false}); p.setRate(4); p.step(-1); p.wallTime(); p.stop();
 */
(function () {
  'use strict';

  var MS = window.ManagedMediaSource || window.MediaSource;
  var FIRST_CHUNK_S = 4;   // a small first body: the first frame sooner
  var CHUNK_S = 10;
  var FAST_CHUNK_S = 30;   // at 4x and 8x
  var AHEAD_S = 8;         // buffered ahead of the play head (times the rate) before fetching
  var KEEP_S = 30;         // buffered behind it (frame steps back stay local)
  var POLL_MS = 1000;      // at the newest recording
  var GAP_JUMP_S = 0.25;   // this close to the end of a buffered range, jump to the next one
  var TICK_MS = 200;

  var MESSAGES = {
    no_recording: 'No recording at this time.',
    recording_off: 'Recording off: the POD does not record this camera.',
    pod_offline: 'The POD is offline: its recordings can be watched when it is back online.',
    not_found: 'The POD does not know this camera.',
    forbidden: 'Your role may not watch recorded footage.'
  };

  /* The words for an error answer `{"error", "detail"}` (or none: the HTTP status). */
  function describe(status, body) {
    var code = body && typeof body.error === 'string' ? body.error : '';
    var detail = body && typeof body.detail === 'string' ? body.detail : '';
    if (MESSAGES[code]) { return MESSAGES[code]; }
    if (detail) { return detail.charAt(0).toUpperCase() + detail.slice(1) + (code ? ' (' + code + ')' : ''); }
    return 'The portal answered HTTP ' + status + '.';
  }

  function readError(resp) {
    return resp.json().catch(function () { return null; }).then(function (body) {
      var err = new Error(describe(resp.status, body));
      err.status = resp.status;
      err.code = body && body.error;
      throw err;
    });
  }

  var F = window.PlateBridgePlaybackFormat;  // playback-format.js
  var initMime = F.initMime;
  var initLength = F.initLength;
  var parseVod = F.parseVod;
  var vodWall = F.vodWall;
  var vodMedia = F.vodMedia;

  // -- the player

  function Player(video, opts) {
    this.video = video;
    this.opts = opts;
    this.fps = opts.fps || 25;
    this.lead = Math.min(10, Math.max(0, opts.lead || 0));  // the keyframe interval, s
    this.rate = 1;
    this.gen = 0;
    this.ms = null;
    this.sb = null;
    this.origin = null;      // wall time of media time 0 (this MediaSource)
    this.queue = [];         // {data, offset}
    this.next = null;        // the `start` to fetch next (null: nothing more is known)
    this.lastEnd = null;     // wall time where the newest appended body ends
    this.liveEdge = false;
    this.pollAt = 0;
    this.fetching = null;    // the AbortController of the fetch in flight
    this.frameMedia = null;  // media time of the frame on screen (requestVideoFrameCallback)
    this.state = 'idle';
    this.requested = null;   // the wall time asked for by the last fresh start
    this.waitStart = null;   // nothing recorded there yet: asked again every POLL_MS
    this.retryStart = null;  // the portal was unreachable: asked again
    this.startPaused = false;
    this.hold = false;       // media appends wait for the first seek (reset)
    this.vod = null;         // without MSE: the HLS VOD playlist played natively
    var self = this;
    video.muted = true;
    ['timeupdate', 'seeked', 'pause'].forEach(function (name) {
      video.addEventListener(name, function () { self.emitFrame(); });
    });
    video.addEventListener('playing', function () { self.show('playing', ''); });
    video.addEventListener('pause', function () {
      if (self.state === 'playing') { self.show('paused', ''); }
    });
    video.addEventListener('waiting', function () {
      if (self.state === 'playing') { self.show('loading', 'Loading…'); }
    });
    this.watchFrames();
    this.tick = window.setInterval(function () { self.control(); }, TICK_MS);
  }

  Player.prototype.show = function (state, text) {
    this.state = state;
    if (this.opts.onState) { this.opts.onState(state, text); }
  };

  Player.prototype.note = function (text) {
    if (this.opts.onNote) { this.opts.onNote(text); }
  };

  /* The wall-clock time (epoch s) of the frame on screen, or null before the first. */
  Player.prototype.wallTime = function () {
    if (this.origin === null || this.video.readyState < 2) { return null; }
    if (this.vod) { return vodWall(this.vod, this.video.currentTime); }
    // The presented frame's own time (requestVideoFrameCallback) when known, else currentTime.
    var t = this.frameMedia !== null && !this.video.seeking ? this.frameMedia : this.video.currentTime;
    return this.origin + t;
  };

  Player.prototype.emitFrame = function () {
    var wall = this.wallTime();
    if (wall !== null && this.opts.onFrame) { this.opts.onFrame(wall); }
  };

  Player.prototype.watchFrames = function () {
    var self = this;
    var v = this.video;
    if (!v.requestVideoFrameCallback) { return; }
    function onFrame(now, meta) {
      self.frameMedia = meta.mediaTime;
      self.emitFrame();
      v.requestVideoFrameCallback(onFrame);
    }
    v.requestVideoFrameCallback(onFrame);
  };

  /* Play from `wall` (epoch s): inside what is buffered, a plain seek; else a fresh start. */
  Player.prototype.seek = function (wall, options) {
    var paused = !!(options && options.paused);
    var v = this.video;
    if (this.vod && wall >= this.vod.from && wall < this.vod.to && vodMedia(this.vod, wall) !== null) {
      v.currentTime = vodMedia(this.vod, wall);
      if (paused) { v.pause(); } else { this.play(); }
      return;
    }
    if (this.sb && this.origin !== null && this.buffered(wall - this.origin)) {
      this.frameMedia = null;
      v.currentTime = wall - this.origin;
      if (paused) { v.pause(); } else { this.play(); }
      this.fill();
      return;
    }
    this.reset(wall, paused, false);
  };

  Player.prototype.buffered = function (t) {
    var b = this.sb ? this.sb.buffered : null;
    if (!b) { return false; }
    for (var i = 0; i < b.length; i++) {
      if (t >= b.start(i) && t < b.end(i) - 0.05) { return true; }
    }
    return false;
  };

  /* A fresh MediaSource and the first body from `wall`; `quiet`: no "Loading" (a re-ask). */
  Player.prototype.reset = function (wall, paused, quiet) {
    var self = this;
    var gen = ++this.gen;
    this.abortFetch();
    this.detach();
    this.origin = null;
    this.next = null;
    this.lastEnd = null;
    this.liveEdge = false;
    this.frameMedia = null;
    this.requested = wall;
    this.startPaused = paused;
    if (!quiet) { this.show('loading', 'Loading the recording…'); }
    if (!MS) {
      if (this.opts.vodUrl && this.video.canPlayType('application/vnd.apple.mpegurl')) {
        this.resetVod(wall, paused, gen);
        return;
      }
      this.show('unsupported', 'This browser cannot play recordings (no Media Source support).');
      return;
    }
    var ms = this.ms = new MS();
    var opened = new Promise(function (resolve) {
      ms.addEventListener('sourceopen', function () { resolve(); }, { once: true });
    });
    if (window.ManagedMediaSource) { this.video.disableRemotePlayback = true; }
    this.video.src = URL.createObjectURL(ms);
    // Asked from `lead` s earlier: the body then starts at a keyframe at or before `wall` even
    // where the POD starts at the first keyframe of the range it was asked for.
    var lead = Math.min(wall, this.lead);
    var first = this.fetchChunk(wall - lead, FIRST_CHUNK_S + lead, gen);
    Promise.all([first, opened]).then(function (results) {
      var chunk = results[0];
      if (gen !== self.gen) { return; }
      if (!chunk) { return; }  // said already (no recording, an error)
      var mime = initMime(chunk.data) || self.opts.mime;
      if (!mime || !MS.isTypeSupported(mime)) {
        self.show('unsupported', window.PlateBridgeCodecs && mime ?
          window.PlateBridgeCodecs.unsupportedText(mime.split('"')[1] || '') :
          'This browser cannot play this recording (' + (mime || 'unknown codec') + ').');
        return;
      }
      try {
        self.sb = ms.addSourceBuffer(mime);
      } catch (e) {
        self.show('unsupported', 'This browser cannot play this recording (' + mime + ').');
        return;
      }
      self.sb.mode = 'segments';
      self.origin = chunk.start;
      // Seeks are clamped to [0, duration] (an fMP4 init segment says 0; with Infinity nothing
      // is seekable before data): a finite duration well past anything appended.
      try { ms.duration = chunk.end - chunk.start + 86400; } catch (e) { /* seeks after data */ }
      if (chunk.start > wall + 1) {
        self.note('No recording at ' + clockText(wall) + ': playing from the next recording, ' +
                  clockText(chunk.start) + '.');
      }
      // The media waits (`hold`) until the seek to the time asked is made on the metadata
      // alone, so the body's first (earlier) keyframe is never presented.
      var seeked = false;
      var startAt = function () {
        if (seeked || gen !== self.gen) { return; }
        seeked = true;
        self.video.currentTime = Math.max(0, wall - self.origin);
        self.video.playbackRate = self.rate;
        if (paused) { self.show('paused', ''); } else { self.play(); }
        self.hold = false;
        self.pump();
      };
      self.sb.addEventListener('updateend', function () {
        if (gen !== self.gen) { return; }
        if (!seeked) {
          if (self.video.readyState >= 1) {
            startAt();
          } else {
            self.video.addEventListener('loadedmetadata', startAt, { once: true });
          }
          return;
        }
        self.pump();
      });
      self.sb.addEventListener('error', function () {
        if (gen === self.gen) { self.show('error', 'The recording could not be decoded.'); }
      });
      // The init segment alone first (below: the seek is made on it).
      var init = initLength(chunk.data);
      if (init > 0 && init < chunk.data.byteLength) {
        self.queue.push({ data: chunk.data.slice(0, init), offset: chunk.start - self.origin,
                          init: true });
        chunk.data = chunk.data.slice(init);
      }
      self.hold = init > 0;
      self.accept(chunk);
    }).catch(function () { /* said by fetchChunk */ });
  };

  /* Without MSE (iOS before 17.1): the browser's own HLS player on the VOD playlist of up to
   * an hour from `wall`; the playlist's EXT-X-PROGRAM-DATE-TIME map its time to the wall. */
  Player.prototype.resetVod = function (wall, paused, gen) {
    var self = this;
    var from = Math.max(0, wall - this.lead);
    var to = Math.min(Date.now() / 1000, wall + 3600);
    if (!(to > from + 1)) { this.show('no-recording', MESSAGES.no_recording); return; }
    var url = this.opts.vodUrl(from, to);
    fetch(url, { credentials: 'same-origin', cache: 'no-store' }).then(function (resp) {
      if (!resp.ok) { return readError(resp); }
      return resp.text();
    }).then(function (text) {
      if (gen !== self.gen) { return; }
      var vod = parseVod(text);
      if (!vod.segments.length) { self.show('no-recording', MESSAGES.no_recording); return; }
      vod.from = from;
      vod.to = to;
      self.vod = vod;
      self.origin = vod.segments[0].wall;
      self.video.addEventListener('loadedmetadata', function () {
        if (gen !== self.gen) { return; }
        var at = vodMedia(vod, wall);
        self.video.currentTime = at === null ? 0 : at;
        self.video.playbackRate = self.rate;
        if (paused) { self.show('paused', ''); } else { self.play(); }
      }, { once: true });
      self.video.src = url;
    }).catch(function (err) {
      if (gen === self.gen) { self.show(err.code === 'no_recording' ? 'no-recording' : 'error', err.message); }
    });
  };

  Player.prototype.play = function () {
    var self = this;
    this.video.playbackRate = this.rate;
    var p = this.video.play();
    if (p && p.catch) {
      p.catch(function (e) {
        if (e && e.name === 'NotAllowedError') { self.show('paused', 'Press play to watch.'); }
      });
    }
  };

  /* Fetch one body; resolves {data, start, end, next, liveEdge} or null (said in words). */
  Player.prototype.fetchChunk = function (start, duration, gen) {
    var self = this;
    var ctrl = window.AbortController ? new AbortController() : null;
    this.fetching = ctrl || true;
    var url = this.opts.mediaUrl(start, duration);
    return fetch(url, { credentials: 'same-origin', cache: 'no-store',
                        signal: ctrl ? ctrl.signal : undefined }).then(function (resp) {
      if (!resp.ok) { return readError(resp); }
      var h = resp.headers;
      var meta = {
        start: parseFloat(h.get('X-PlateBridge-Media-Start')),
        end: parseFloat(h.get('X-PlateBridge-Media-End')),
        next: h.get('X-PlateBridge-Next') !== null ? parseFloat(h.get('X-PlateBridge-Next')) : null,
        liveEdge: h.get('X-PlateBridge-Live-Edge') === '1'
      };
      return resp.arrayBuffer().then(function (data) {
        meta.data = data;
        if (!isFinite(meta.start)) { meta.start = start; }
        if (!isFinite(meta.end)) { meta.end = meta.start + duration; }
        return meta;
      });
    }).then(function (chunk) {
      if (gen !== self.gen) { return null; }
      self.fetching = null;
      return chunk;
    }, function (err) {
      if (gen !== self.gen || (err && err.name === 'AbortError')) { return null; }
      self.fetching = null;
      self.failed(err, start);
      return null;
    });
  };

  Player.prototype.failed = function (err, start) {
    var playing = this.origin !== null;
    if (!playing && this.requested !== null) { start = this.requested; }  // not the lead
    if (err.code === 'no_recording') {
      // Nothing at `start` within what was asked: the newest recording (poll), or a gap the
      // POD's answer did not reach over (ask the page where the next recording starts).
      var recent = this.lastEnd !== null && Date.now() / 1000 - this.lastEnd < 60;
      if (this.opts.findNext && !recent) {
        this.skipTo(start, playing);
      } else {
        this.noRecording(start, playing);
      }
      return;
    }
    if (!err.status) {  // the network: try again shortly
      this.next = start;
      this.pollAt = Date.now() + 2 * POLL_MS;
      this.show(playing ? 'loading' : 'error', 'The portal cannot be reached. Retrying…');
      this.retryStart = playing ? null : start;
      return;
    }
    this.next = null;
    this.show('error', err.message);
  };

  /* Nothing recorded at or after `start` yet: wait for it (poll every POLL_MS). */
  Player.prototype.noRecording = function (start, playing) {
    this.liveEdge = true;
    this.next = start;
    this.pollAt = Date.now() + (playing ? POLL_MS : 2 * POLL_MS);
    if (!playing) {
      this.show('no-recording', MESSAGES.no_recording);
      this.waitStart = start;
    } else {
      this.show('live-edge', 'This is the newest recording: waiting for more…');
    }
  };

  /* Go on at the next recording after `start` (opts.findNext: a Promise of its time or null). */
  Player.prototype.skipTo = function (start, playing) {
    var self = this;
    var gen = this.gen;
    var paused = this.startPaused;
    this.fetching = true;  // no other fetch meanwhile
    this.opts.findNext(start).then(function (next) {
      if (gen !== self.gen) { return; }
      self.fetching = null;
      if (next === null || !(next > start + 0.01)) { self.noRecording(start, playing); return; }
      var asked = self.requested;
      if (!playing) {
        self.reset(next, paused, true);
        self.requested = asked;
        self.note('No recording at ' + clockText(start) + ': playing from the next recording, ' +
                  clockText(next) + '.');
      } else {
        self.next = next;
        self.liveEdge = false;
        self.fill();
      }
    }, function () {
      if (gen !== self.gen) { return; }
      self.fetching = null;
      self.noRecording(start, playing);
    });
  };

  /* Queue a fetched body; remember what to ask for next. */
  Player.prototype.accept = function (chunk) {
    var fresh = this.lastEnd === null || chunk.end > this.lastEnd + 0.01;
    if (fresh) {
      this.queue.push({ data: chunk.data, offset: chunk.start - this.origin });
      this.lastEnd = chunk.end;
    }
    // No Next: nothing more recorded yet, or the POD would not look further than it was
    // asked; either way the next body is asked from this one's end (polled at the live edge).
    this.liveEdge = chunk.liveEdge;
    this.next = chunk.next !== null ? chunk.next : chunk.end;
    if (this.liveEdge) { this.pollAt = Date.now() + POLL_MS; }
    this.pump();
  };

  Player.prototype.pump = function () {
    var sb = this.sb;
    if (!sb || sb.updating || !this.ms || this.ms.readyState !== 'open') { return; }
    var now = this.video.currentTime;
    var b = sb.buffered;
    if (b.length && now - b.start(0) > KEEP_S + 10) {
      sb.remove(0, now - KEEP_S);
      return;  // updateend pumps again
    }
    if (!this.queue.length || (this.hold && !this.queue[0].init)) { return; }
    var item = this.queue.shift();
    try {
      if (Math.abs(sb.timestampOffset - item.offset) > 1e-6) { sb.timestampOffset = item.offset; }
      sb.appendBuffer(item.data);
    } catch (e) {
      if (e.name === 'QuotaExceededError' && b.length && now - b.start(0) > 2) {
        this.queue.unshift(item);
        sb.remove(0, now - 1);
        return;
      }
      this.show('error', 'The recording could not be played (' + e.name + ').');
    }
  };

  /* Every TICK_MS: skip gaps, fetch ahead, poll at the newest recording. */
  Player.prototype.control = function () {
    if (this.state === 'no-recording' || (this.state === 'error' && this.retryStart != null)) {
      this.retryFirst();
      return;
    }
    if (!this.sb || this.origin === null || !this.ms || this.ms.readyState !== 'open') { return; }
    var v = this.video;
    var b = this.sb.buffered;
    var t = v.currentTime;
    for (var i = 0; i < b.length; i++) {
      var inside = t >= b.start(i) - 0.05 && t < b.end(i);
      var nearEnd = b.end(i) - t < GAP_JUMP_S;
      if (i + 1 < b.length && (nearEnd && inside || (t >= b.end(i) && t < b.start(i + 1)))) {
        if (!v.paused) {
          this.note('Gap in the recording: ' + clockText(this.origin + b.end(i)) + ' to ' +
                    clockText(this.origin + b.start(i + 1)) + ' skipped.');
          v.currentTime = b.start(i + 1) + 0.001;
        }
        break;
      }
    }
    this.fill();
    var end = b.length ? b.end(b.length - 1) : 0;
    if (this.liveEdge && !v.paused && end - v.currentTime < 0.3 && this.state !== 'error') {
      this.show('live-edge', 'This is the newest recording: waiting for more…');
    } else if (this.state === 'live-edge' && (v.paused || end - v.currentTime > 0.5)) {
      this.show(v.paused ? 'paused' : 'playing', '');
    }
  };

  /* Before the first body: ask again (nothing recorded yet, the portal unreachable). */
  Player.prototype.retryFirst = function () {
    if (this.fetching || Date.now() < this.pollAt) { return; }
    var start = this.state === 'no-recording' ? this.waitStart : this.retryStart;
    if (start == null || Date.now() / 1000 - start > 120) { return; }  // only near now
    this.retryStart = null;
    this.pollAt = Date.now() + POLL_MS;
    this.reset(start, false, true);
  };

  Player.prototype.fill = function () {
    if (this.fetching || this.next === null || !this.sb) { return; }
    if (this.liveEdge && Date.now() < this.pollAt) { return; }
    var end = this.lastEnd !== null ? this.lastEnd - this.origin : 0;
    var ahead = end - this.video.currentTime;
    if (ahead > AHEAD_S * Math.max(1, this.rate) || this.queue.length > 1) { return; }
    var self = this;
    var gen = this.gen;
    var duration = this.rate >= 4 ? FAST_CHUNK_S : CHUNK_S;
    var start = this.next;
    this.fetchChunk(start, duration, gen).then(function (chunk) {
      if (!chunk || gen !== self.gen) { return; }
      if (chunk.start <= start + 0.05 || !self.lead) {
        self.accept(chunk);
        return;
      }
      // The body starts later than asked: a gap, or a POD that starts at the first keyframe
      // of the range it was asked for. Asked again from `lead` earlier; a gap stays a gap.
      self.fetchChunk(start - self.lead, duration + self.lead, gen).then(function (again) {
        if (gen !== self.gen) { return; }
        self.accept(again && again.start < chunk.start ? again : chunk);
      });
    });
  };

  Player.prototype.setRate = function (rate) {
    this.rate = rate;
    this.video.defaultPlaybackRate = rate;
    this.video.playbackRate = rate;
    this.fill();
  };

  /* One frame forward (1) or back (-1); pauses first. */
  Player.prototype.step = function (dir) {
    var v = this.video;
    if (this.origin === null) { return; }
    if (!v.paused) { v.pause(); }
    // From the presented frame's own time: half a frame into the one before, or into the one
    // after (frame times jitter by a few ms); from currentTime (inside the frame): one frame.
    var frame = 1 / this.fps;
    var t = this.frameMedia !== null ? this.frameMedia + (dir > 0 ? 1.5 : -0.5) * frame :
      v.currentTime + dir * frame;
    this.frameMedia = null;
    if (this.vod) { v.currentTime = Math.max(0, t); return; }
    if (t < 0 || (dir < 0 && !this.buffered(t))) {
      this.seek(this.origin + t, { paused: true });
      return;
    }
    v.currentTime = t;
    this.fill();
  };

  Player.prototype.abortFetch = function () {
    if (this.fetching && this.fetching.abort) { this.fetching.abort(); }
    this.fetching = null;
  };

  Player.prototype.detach = function () {
    this.queue = [];
    this.sb = null;
    if (this.vod) {
      this.vod = null;
      this.video.removeAttribute('src');
      this.video.load();
    }
    if (this.ms) {
      this.ms = null;
      URL.revokeObjectURL(this.video.src);
      this.video.removeAttribute('src');
      this.video.load();
    }
  };

  Player.prototype.stop = function () {
    this.gen += 1;
    this.abortFetch();
    this.detach();
    window.clearInterval(this.tick);
    this.show('idle', '');
  };

  // -- times in words

  function pad(n) { return (n < 10 ? '0' : '') + n; }

  /* `2026-12-03T09:40:12.345Z` */
  function isoText(wall) { return new Date(Math.round(wall * 1000)).toISOString(); }

  /* `09:40:12` in the browser's time zone */
  function clockText(wall) {
    var d = new Date(wall * 1000);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }

  window.PlateBridgePlayback = {
    Player: Player, initMime: initMime, describe: describe, readError: readError,
    isoText: isoText, clockText: clockText, pad: pad
  };
}());
