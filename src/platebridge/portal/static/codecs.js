/* PlateBridge codecs: can THIS browser play what a camera sends? (docs/live.md, "Codecs")
 *
 * The portal knows the camera's codecs (RFC 6381, from its POD's heartbeat: `data-codecs` on
 * camera cards, grid tiles and the live player) but not the viewer's browser. On load, and for
 * elements added later (`PlateBridgeCodecs.check(root)`), every `[data-codecs]` element gets
 * `data-codec-supported` = `true` | `false` | `unknown` from
 * `(Managed)MediaSource.isTypeSupported('video/mp4; codecs="…"')` (without MSE: a video
 * element's `canPlayType`, as native HLS would decide). When `false`, a "live" badge inside it
 * becomes "unsupported codec" and its `.codec-note` (or, on a player, `.player-status`) says
 * what to do. The live player (live.js) uses the same label and sentence.
 */
(function () {
  'use strict';

  var AVC_PROFILES = { 66: 'Baseline', 77: 'Main', 88: 'Extended', 100: 'High', 110: 'High 10',
    122: 'High 4:2:2', 244: 'High 4:4:4' };
  var H265_TEXT = 'This camera sends H.265, which this browser cannot play. Use the camera\'s ' +
    'H.264 substream, or turn on transcoding (transcode: h264) for it.';
  var SAFE = /^[A-Za-z0-9][A-Za-z0-9.]*(,[A-Za-z0-9][A-Za-z0-9.]*)*$/;

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

  function mimeOf(codecs) { return 'video/mp4; codecs="' + codecs + '"'; }

  /* The sentence for a codec this browser cannot play. */
  function unsupportedText(codecs) {
    return isH265(codecs) ? H265_TEXT :
      'This camera sends ' + codecLabel(codecs) + ', which this browser cannot play.';
  }

  /* true / false, or null when it cannot be known (no codecs, an odd string). */
  function canPlay(codecs) {
    if (!codecs || !SAFE.test(codecs)) { return null; }
    var MS = window.ManagedMediaSource || window.MediaSource;
    if (MS && MS.isTypeSupported) { return !!MS.isTypeSupported(mimeOf(codecs)); }
    var v = document.createElement('video');
    return v.canPlayType ? v.canPlayType(mimeOf(codecs)) !== '' : null;
  }

  function mark(el) {
    var codecs = el.getAttribute('data-codecs');
    var ok = canPlay(codecs);
    el.setAttribute('data-codec-supported', ok === null ? 'unknown' : String(ok));
    if (ok !== false) { return; }
    var text = unsupportedText(codecs);
    el.querySelectorAll('.badge-live').forEach(function (badge) {
      badge.textContent = 'unsupported codec';
      badge.classList.remove('badge-live');
      badge.classList.add('badge-unsupported');
      badge.title = text;
    });
    var note = el.querySelector('.codec-note');
    if (note) {
      note.textContent = text;
      note.hidden = false;
    }
    if (el.matches('.player')) {  // not started by live.js: say why in its status line
      el.setAttribute('data-state', 'unsupported');
      var status = el.querySelector('.player-status');
      if (status) {
        status.textContent = text;
        status.hidden = false;
      }
    }
  }

  /* Check every [data-codecs] element in `root` (itself included); default: the document. */
  function check(root) {
    root = root || document;
    if (root.matches && root.matches('[data-codecs]')) { mark(root); }
    if (root.querySelectorAll) { root.querySelectorAll('[data-codecs]').forEach(mark); }
  }

  window.PlateBridgeCodecs = {
    check: check, canPlay: canPlay, codecLabel: codecLabel, isH265: isH265, mimeOf: mimeOf,
    unsupportedText: unsupportedText, H265_TEXT: H265_TEXT
  };

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', function () { check(document); });
  } else {
    check(document);
  }
}());
