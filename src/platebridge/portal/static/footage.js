/* PlateBridge footage page (`/cameras/{pod}/{camera}/footage`, docs/web.md "Footage"): the
 * timeline of what the POD recorded (spans and gaps from `/api/footage/{pod}`), the player of
 * playback.js for any moment, speed, frame steps, and clips (download, share link).
 *
 * - The bar shows a window of the day (the whole day, 1 h, 10 min, 2 min), in the browser's
 *   time zone; a click plays from the time under the pointer; the date picker picks the day.
 * - `?t=<epoch s>` opens the page playing from that time, `?back=<s>` from that long before the
 *   page was opened (the live view's "Back 30 s").
 * - `#footage-clock` holds the ISO 8601 UTC time of the picture on screen (also `datetime`),
 *   `.footage[data-requested]` the time last asked for.
 */
(function () {
  'use strict';

  var PB = window.PlateBridgePlayback;
  var root = document.querySelector('.footage[data-footage]');
  if (!root) { return; }
  var pod = root.getAttribute('data-pod');
  var camera = root.getAttribute('data-camera');
  var fps = parseFloat(root.getAttribute('data-fps')) || 25;
  var api = '/api/footage/' + encodeURIComponent(pod);
  var MAX_CLIP_S = 1800;
  var REFRESH_MS = 10000;

  var $ = function (sel) { return root.querySelector(sel); };
  var bar = $('#footage-bar');
  var spansEl = $('.timeline-spans');
  var axis = $('.timeline-axis');
  var status = $('.timeline-status');
  var head = $('.timeline-playhead');
  var nowMark = $('.timeline-now');
  var playerEl = $('.footage-player');
  var video = playerEl.querySelector('video');
  var playerStatus = playerEl.querySelector('.player-status');
  var noteEl = playerEl.querySelector('.footage-note');
  var clock = $('#footage-clock');
  var localEl = $('.footage-local');
  var playBtn = $('[data-action=play]');
  var dateInput = $('#footage-date');
  var zoomInput = $('#footage-zoom');
  var clipStatus = $('.clip-status');
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || '';
  var pad = PB.pad;

  var view = { from: 0, to: 0 };
  var spans = [];
  var lastWall = null;
  var noteTimer = null;
  var refreshTimer = null;
  var loadGen = 0;

  function query(params) {
    var q = new URLSearchParams({ camera_id: camera });
    Object.keys(params).forEach(function (k) { q.set(k, String(params[k])); });
    return q.toString();
  }

  var player = new PB.Player(video, {
    fps: fps,
    lead: parseFloat(root.getAttribute('data-gop')) || 2,
    mime: root.getAttribute('data-codecs') ?
      'video/mp4; codecs="' + root.getAttribute('data-codecs') + '"' : null,
    mediaUrl: function (start, duration) {
      return api + '/media?' + query({ start: start.toFixed(3), duration: duration });
    },
    onState: function (state, text) {
      playerEl.setAttribute('data-state', state);
      playerStatus.textContent = text;
      playerStatus.hidden = !text;
      var ready = ['playing', 'paused', 'live-edge', 'loading'].indexOf(state) >= 0 &&
        player.origin !== null;
      playBtn.disabled = !ready;
      root.querySelectorAll('[data-step]').forEach(function (b) { b.disabled = !ready; });
      playBtn.textContent = video.paused ? 'Play' : 'Pause';
    },
    onFrame: showFrame,
    findNext: nextRecording,
    vodUrl: function (from, to) {
      return api + '/vod.m3u8?' + query({ from: from.toFixed(3), to: to.toFixed(3) });
    },
    onNote: function (text) {
      noteEl.textContent = text;
      noteEl.hidden = false;
      window.clearTimeout(noteTimer);
      noteTimer = window.setTimeout(function () { noteEl.hidden = true; }, 6000);
    }
  });

  /* The start of the first recording at or after `wall` (within 7 days), or null. */
  function nextRecording(wall) {
    var to = Math.min(wall + 7 * 86400 - 1, Date.now() / 1000 + 60);
    if (!(to > wall)) { return Promise.resolve(null); }
    var url = api + '?' + query({ from: wall.toFixed(3), to: to.toFixed(3) });
    return fetch(url, { credentials: 'same-origin', cache: 'no-store' }).then(function (resp) {
      if (!resp.ok) { return null; }
      return resp.json().then(function (data) {
        var found = (data.spans || []).filter(function (s) {
          return s.kind !== 'gap' && s.end > wall;
        })[0];
        return found ? Math.max(found.start, wall) : null;
      });
    });
  }

  // -- times

  function dateValue(wall) {
    var d = new Date(wall * 1000);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
  }

  function localValue(wall) {
    var d = new Date(Math.floor(wall) * 1000);
    return dateValue(wall) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' +
      pad(d.getSeconds());
  }

  /* `2026-12-03T15:00:05` (the browser's time zone) → epoch s, or NaN. */
  function parseLocal(value) {
    var m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?$/.exec(value || '');
    if (!m) { return NaN; }
    var d = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
    return d.getTime() / 1000 + (m[7] ? parseFloat('0.' + m[7]) : 0);
  }

  function dayStart(wall) {
    var d = new Date(wall * 1000);
    return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime() / 1000;
  }

  function nextDay(start) {
    var d = new Date(start * 1000);
    return new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1).getTime() / 1000;
  }

  function duration(s) {
    s = Math.round(s);
    if (s < 60) { return s + ' s'; }
    if (s < 3600) { return Math.floor(s / 60) + ' min' + (s % 60 ? ' ' + (s % 60) + ' s' : ''); }
    return Math.floor(s / 3600) + ' h' + (s % 3600 >= 60 ? ' ' + Math.floor(s % 3600 / 60) + ' min' : '');
  }

  // -- the picture's time

  function showFrame(wall) {
    lastWall = wall;
    clock.textContent = PB.isoText(wall);
    clock.setAttribute('datetime', PB.isoText(wall));
    var d = new Date(wall * 1000);
    localEl.textContent = d.toLocaleDateString() + ' ' + PB.clockText(wall) + '.' +
      String(Math.floor((wall % 1) * 10));
    placePlayhead();
    var zoom = view.to - view.from;
    if (zoom < 86400 && !video.paused && (wall > view.to || wall < view.from)) {
      setView(wall - zoom / 6, zoom);  // follow the picture
    }
  }

  function placePlayhead() {
    if (lastWall === null || lastWall < view.from || lastWall > view.to) {
      head.hidden = true;
      return;
    }
    head.style.left = (100 * (lastWall - view.from) / (view.to - view.from)) + '%';
    head.hidden = false;
  }

  // -- the bar

  function setView(from, zoom) {
    if (zoom >= 86400) {
      from = dayStart(from + 1);
      view = { from: from, to: nextDay(from) };
    } else {
      from = Math.floor(from / 10) * 10;
      view = { from: from, to: from + zoom };
    }
    zoomInput.value = String(zoom >= 86400 ? 86400 : zoom);
    dateInput.value = dateValue(view.from);
    bar.setAttribute('data-from', String(view.from));
    bar.setAttribute('data-to', String(view.to));
    drawAxis();
    loadSpans();
  }

  function pct(t) { return (100 * (t - view.from) / (view.to - view.from)) + '%'; }

  function drawAxis() {
    var zoom = view.to - view.from;
    var steps = [10, 30, 60, 120, 300, 600, 1800, 3600, 10800];
    var step = steps.filter(function (s) { return zoom / s <= 8; })[0] || 21600;
    axis.textContent = '';
    var first = Math.ceil(view.from / step) * step;
    for (var t = first; t <= view.to; t += step) {
      var d = new Date(t * 1000);
      var tick = document.createElement('span');
      tick.textContent = pad(d.getHours()) + ':' + pad(d.getMinutes()) +
        (step < 60 ? ':' + pad(d.getSeconds()) : '');
      tick.style.left = pct(t);
      axis.appendChild(tick);
    }
  }

  function loadSpans() {
    var gen = ++loadGen;
    window.clearTimeout(refreshTimer);
    var url = api + '?' + query({ from: view.from.toFixed(3), to: view.to.toFixed(3) });
    fetch(url, { credentials: 'same-origin', cache: 'no-store' }).then(function (resp) {
      if (!resp.ok) { return PB.readError(resp); }
      return resp.json();
    }).then(function (data) {
      if (gen !== loadGen) { return; }
      spans = data.spans || [];
      drawSpans(data);
    }).catch(function (err) {
      if (gen !== loadGen) { return; }
      spans = [];
      spansEl.textContent = '';
      status.textContent = err.message;
      status.setAttribute('data-error', err.code || 'error');
    }).then(function () {
      if (gen === loadGen && view.to > Date.now() / 1000 - 60) {
        refreshTimer = window.setTimeout(loadSpans, REFRESH_MS);  // today: it grows
      }
    });
  }

  function drawSpans(data) {
    spansEl.textContent = '';
    var recorded = 0;
    var gaps = 0;
    spans.forEach(function (s) {
      var from = Math.max(s.start, view.from);
      var to = Math.min(s.end, view.to);
      if (to <= from) { return; }
      var el = document.createElement('div');
      el.className = 'span span-' + (s.kind === 'gap' ? 'gap' : 'recording');
      el.style.left = pct(from);
      el.style.width = (100 * (to - from) / (view.to - view.from)) + '%';
      el.setAttribute('data-start', String(s.start));
      el.setAttribute('data-end', String(s.end));
      var what = s.kind === 'gap' ? 'No recording' + (s.reason ? ' (' + s.reason + ')' : '') :
        'Recorded';
      el.title = what + ': ' + PB.clockText(s.start) + ' – ' + PB.clockText(s.end);
      spansEl.appendChild(el);
      if (s.kind === 'gap') { gaps += 1; } else { recorded += to - from; }
    });
    var now = Date.now() / 1000;
    nowMark.hidden = !(now > view.from && now < view.to);
    if (!nowMark.hidden) { nowMark.style.left = pct(now); }
    placePlayhead();
    status.removeAttribute('data-error');
    if (!recorded) {
      var oldest = data.oldest ? ' The oldest recording is from ' +
        new Date(data.oldest * 1000).toLocaleString() + '.' : '';
      status.textContent = 'No recording at this time.' + oldest;
      return;
    }
    status.textContent = 'Recorded ' + duration(recorded) + ' of ' +
      duration(Math.min(view.to, now) - view.from) + ' shown' +
      (gaps ? ', ' + gaps + (gaps === 1 ? ' gap' : ' gaps') : '') + '. Click the bar to play.';
  }

  function timeAt(clientX) {
    var r = bar.getBoundingClientRect();
    var f = Math.min(1, Math.max(0, (clientX - r.left) / r.width));
    return view.from + f * (view.to - view.from);
  }

  function inGap(t) {
    return spans.some(function (s) { return s.kind === 'gap' && t >= s.start && t < s.end; });
  }

  // -- playing

  function play(wall, paused) {
    if (wall > Date.now() / 1000) {
      player.show('no-recording', 'That is in the future: nothing is recorded yet.');
      return;
    }
    root.setAttribute('data-requested', String(wall));
    if (inGap(wall)) { player.note('No recording at ' + PB.clockText(wall) + '.'); }
    player.seek(wall, { paused: !!paused });
    var zoom = view.to - view.from;
    if (wall < view.from || wall > view.to) { setView(zoom >= 86400 ? wall : wall - zoom / 2, zoom); }
  }

  bar.addEventListener('click', function (ev) { play(timeAt(ev.clientX)); });
  bar.addEventListener('mousemove', function (ev) {
    bar.title = 'Play from ' + PB.clockText(timeAt(ev.clientX));
  });

  dateInput.addEventListener('change', function () {
    var t = parseLocal(dateInput.value + 'T00:00:00');
    if (isFinite(t)) { setView(t, 86400); }
  });
  zoomInput.addEventListener('change', function () {
    var zoom = parseInt(zoomInput.value, 10);
    var now = Date.now() / 1000;
    var from = lastWall !== null ? lastWall - zoom / 2 :
      (now >= view.from && now <= view.to ? now - zoom * 0.8 : (view.from + view.to - zoom) / 2);
    setView(zoom >= 86400 ? from + zoom / 2 : from, zoom);
  });
  root.querySelectorAll('[data-pan]').forEach(function (btn) {
    btn.addEventListener('click', function () {
      var zoom = view.to - view.from;
      var dir = parseInt(btn.getAttribute('data-pan'), 10);
      setView(zoom >= 86400 ? view.from + dir * 86400 + 3600 * dir : view.from + dir * zoom,
        zoom >= 86400 ? 86400 : zoom);
    });
  });

  $('#footage-goto').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var t = parseLocal($('#footage-goto-time').value);
    if (isFinite(t)) { play(t); }
  });

  playBtn.addEventListener('click', function () {
    if (video.paused) { player.play(); } else { video.pause(); }
  });
  video.addEventListener('play', function () { playBtn.textContent = 'Pause'; });
  video.addEventListener('pause', function () { playBtn.textContent = 'Play'; });
  root.querySelectorAll('[data-step]').forEach(function (btn) {
    btn.addEventListener('click', function () {
      player.step(parseInt(btn.getAttribute('data-step'), 10));
    });
  });
  root.querySelectorAll('[data-rate]').forEach(function (btn) {
    btn.addEventListener('click', function () {
      player.setRate(parseInt(btn.getAttribute('data-rate'), 10));
      root.querySelectorAll('[data-rate]').forEach(function (b) {
        b.setAttribute('aria-pressed', b === btn ? 'true' : 'false');
      });
    });
  });

  // -- clips

  function clipRange() {
    var from = parseLocal($('#clip-start').value);
    var to = parseLocal($('#clip-end').value);
    if (!isFinite(from) || !isFinite(to)) { return 'Enter the clip\'s start and end.'; }
    if (to <= from) { return 'The clip must end after it starts.'; }
    if (to - from > MAX_CLIP_S) { return 'A clip is at most 30 minutes.'; }
    return { from: from, to: to };
  }

  function say(text, error) {
    clipStatus.textContent = text;
    clipStatus.classList.toggle('alert', !!error);
  }

  root.querySelectorAll('[data-mark]').forEach(function (btn) {
    btn.addEventListener('click', function () {
      if (lastWall === null) { say('Play the recording first.', true); return; }
      var which = btn.getAttribute('data-mark');
      $(which === 'start' ? '#clip-start' : '#clip-end').value =
        localValue(which === 'start' ? lastWall : Math.ceil(lastWall));
    });
  });

  $('#footage-clip').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var range = clipRange();
    if (typeof range === 'string') { say(range, true); return; }
    // Nothing recorded in the range: say so here rather than download an error.
    var check = api + '?' + query({ from: range.from, to: range.to });
    fetch(check, { credentials: 'same-origin', cache: 'no-store' }).then(function (resp) {
      if (!resp.ok) { return PB.readError(resp); }
      return resp.json();
    }).then(function (data) {
      var any = (data.spans || []).some(function (s) { return s.kind !== 'gap'; });
      if (!any) { say('No recording between these times.', true); return; }
      say('Downloading the clip…', false);
      window.location.assign(api + '/export?' + query({ from: range.from, to: range.to }));
    }).catch(function (err) { say(err.message, true); });
  });

  $('#clip-share').addEventListener('click', function () {
    var range = clipRange();
    if (typeof range === 'string') { say(range, true); return; }
    var body = {
      pod_id: pod, camera_id: camera, from: range.from, to: range.to,
      expires_in_hours: parseInt($('#share-hours').value, 10)
    };
    say('Creating the share link…', false);
    fetch('/api/shares', {
      method: 'POST', credentials: 'same-origin', cache: 'no-store',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify(body)
    }).then(function (resp) {
      if (!resp.ok) { return PB.readError(resp); }
      return resp.json();
    }).then(function (share) {
      var box = $('.share-result');
      var input = $('#share-url');
      input.value = new URL(share.url, window.location.href).toString();
      var expires = typeof share.expires_at === 'number' ? share.expires_at * 1000 :
        share.expires_at;
      $('.share-expires').textContent = 'Expires ' + new Date(expires).toLocaleString() + '.';
      box.hidden = false;
      input.focus();
      input.select();
      say('Share link created.', false);
    }).catch(function (err) { say(err.message, true); });
  });

  // -- start

  try {
    $('.timeline-zone').textContent = 'Times in ' + Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) { /* no Intl */ }
  var params = new URLSearchParams(window.location.search);
  var opened = (window.performance && performance.timeOrigin) || Date.now();
  var start = null;
  if (params.get('t') !== null && isFinite(parseFloat(params.get('t')))) {
    start = parseFloat(params.get('t'));
  } else if (params.get('back') !== null && isFinite(parseFloat(params.get('back')))) {
    start = opened / 1000 - Math.min(86400 * 31, Math.max(0, parseFloat(params.get('back'))));
  }
  if (start !== null) {
    setView(start - 300, 600);
    $('#footage-goto-time').value = localValue(start);
    play(start);
  } else {
    setView(Date.now() / 1000, 86400);
    $('#footage-goto-time').value = localValue(Date.now() / 1000 - 60);
  }
  $('#clip-start').value = localValue((start || Date.now() / 1000) - 30);
  $('#clip-end').value = localValue((start || Date.now() / 1000) + 30);
  window.PlateBridgeFootage = { player: player, view: function () { return view; }, play: play };
}());
