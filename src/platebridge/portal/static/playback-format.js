/* PlateBridge recorded-footage player, the formats (loaded before playback.js): what an fMP4
 * init segment holds (its codecs for addSourceBuffer, its length) and the HLS VOD playlist of
 * the fallback (its segments' wall-clock dates). Pure functions, no page state.
 */
(function () {
  'use strict';

  // -- the codecs of an init segment (ftyp + moov), for addSourceBuffer

  function boxes(view, start, end, cb) {
    var pos = start;
    while (pos + 8 <= end) {
      var size = view.getUint32(pos);
      var type = String.fromCharCode(view.getUint8(pos + 4), view.getUint8(pos + 5),
                                     view.getUint8(pos + 6), view.getUint8(pos + 7));
      var header = 8;
      if (size === 1 && pos + 16 <= end) {
        size = view.getUint32(pos + 12);  // 64-bit size (high word 0 for init segments)
        header = 16;
      } else if (size === 0) {
        size = end - pos;
      }
      if (size < header || pos + size > end) { return; }
      if (cb(type, pos + header, pos + size) === false) { return; }
      pos += size;
    }
  }

  function hex2(n) { return (n < 16 ? '0' : '') + n.toString(16); }

  /* `video/mp4; codecs="avc1.640028,mp4a.40.2"` from the sample entries, or null. */
  function initMime(buffer) {
    var view = new DataView(buffer);
    var codecs = [];
    var CONTAINERS = { moov: 1, trak: 1, mdia: 1, minf: 1, stbl: 1 };
    function walk(start, end) {
      boxes(view, start, end, function (type, body, stop) {
        if (CONTAINERS[type]) { walk(body, stop); return true; }
        if (type === 'stsd') { entries(body + 8, stop); }
        if (type === 'moof' || type === 'mdat') { return false; }
        return true;
      });
    }
    function entries(start, end) {
      boxes(view, start, end, function (type, body, stop) {
        if (type === 'avc1' || type === 'avc3') {
          boxes(view, body + 78, stop, function (t, b) {
            if (t === 'avcC' && b + 4 <= stop) {
              codecs.push(type + '.' + hex2(view.getUint8(b + 1)) + hex2(view.getUint8(b + 2)) +
                          hex2(view.getUint8(b + 3)));
            }
            return true;
          });
        } else if (type === 'hvc1' || type === 'hev1') {
          codecs.push(type + '.1.6.L120.90');  // H.265: Chromium says no either way
        } else if (type === 'mp4a') {
          codecs.push('mp4a.40.2');
        } else if (type === 'Opus') {
          codecs.push('opus');
        }
        return true;
      });
    }
    walk(0, buffer.byteLength);
    return codecs.length ? 'video/mp4; codecs="' + codecs.join(',') + '"' : null;
  }

  /* Bytes of the init segment (up to the end of `moov`) at the start of a body; 0: none. */
  function initLength(buffer) {
    var end = 0;
    boxes(new DataView(buffer), 0, buffer.byteLength, function (type, body, stop) {
      if (type === 'moov') { end = stop; return false; }
      return type === 'ftyp' || type === 'free' || type === 'styp';
    });
    return end;
  }

  /* {segments: [{wall, media, duration}]} from an HLS playlist with a date per segment. */
  function parseVod(text) {
    var segments = [];
    var media = 0;
    var date = null;
    var duration = null;
    text.split(/\r?\n/).forEach(function (line) {
      if (line.indexOf('#EXT-X-PROGRAM-DATE-TIME:') === 0) {
        date = Date.parse(line.slice(25)) / 1000;
      } else if (line.indexOf('#EXTINF:') === 0) {
        duration = parseFloat(line.slice(8));
      } else if (line && line.charAt(0) !== '#' && duration !== null) {
        var prev = segments[segments.length - 1];
        var wall = isFinite(date) && date !== null ? date : (prev ? prev.wall + prev.duration : 0);
        segments.push({ wall: wall, media: media, duration: duration });
        media += duration;
        date = null;
        duration = null;
      }
    });
    return { segments: segments };
  }

  function vodWall(vod, t) {
    var segs = vod.segments;
    for (var i = segs.length - 1; i >= 0; i--) {
      if (t >= segs[i].media) { return segs[i].wall + (t - segs[i].media); }
    }
    return segs.length ? segs[0].wall : null;
  }

  /* The playlist's time of `wall` (the next segment's start inside a gap), or null after it. */
  function vodMedia(vod, wall) {
    var segs = vod.segments;
    for (var i = 0; i < segs.length; i++) {
      if (wall < segs[i].wall) { return segs[i].media; }
      if (wall < segs[i].wall + segs[i].duration) { return segs[i].media + wall - segs[i].wall; }
    }
    return null;
  }

  window.PlateBridgePlaybackFormat = {
    initMime: initMime, initLength: initLength, parseVod: parseVod, vodWall: vodWall,
    vodMedia: vodMedia
  };
}());
