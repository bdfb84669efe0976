// Reads the clock the test camera burns into each picture (tools/clock_code.py) back from the
// decoded frame, for glass-to-glass measurement. Injected by Playwright (bench/live_latency.py,
// tests/camera/test_clock.py); nothing in the portal loads it.
//
// Layout: 48 blocks, two rows of 24, top-left block at (B, B), B = 16 px (8 below 480 px wide).
// Bits 0-39: ms since the epoch mod 2^40, MSB first; bits 40-47: CRC-8 (poly 0x07) of them XOR
// 0xA5 (so all-black and all-white pictures fail the check).
(() => {
  const BITS = 48;
  const PER_ROW = 24;
  const MOD = 2 ** 40;
  let canvas = null;

  function crc8(bytes) {
    let crc = 0;
    for (const b of bytes) {
      crc ^= b;
      for (let i = 0; i < 8; i++) {
        crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
      }
    }
    return crc;
  }

  // bits: array of 48 0/1 -> ms mod 2^40, or null when the check fails.
  function decodeBits(bits) {
    if (bits.length !== BITS) return null;
    const bytes = [];
    for (let i = 0; i < 6; i++) {
      let v = 0;
      for (let j = 0; j < 8; j++) v = (v << 1) | bits[i * 8 + j];
      bytes.push(v);
    }
    if ((crc8(bytes.slice(0, 5)) ^ 0xa5) !== bytes[5]) return null;
    let value = 0;
    for (let i = 0; i < 5; i++) value = value * 256 + bytes[i];
    return value;
  }

  // source: <video>, <img> or <canvas>. Returns {stamp, now, latency} (ms) or {stamp: null}.
  function read(source) {
    const w = source.videoWidth || source.naturalWidth || source.width;
    const h = source.videoHeight || source.naturalHeight || source.height;
    if (!w || !h) return {stamp: null, reason: 'no picture'};
    const size = w >= 480 ? 16 : 8;
    const cw = size * (PER_ROW + 2);
    const ch = size * (BITS / PER_ROW + 2);
    if (!canvas) canvas = document.createElement('canvas');
    canvas.width = cw;
    canvas.height = ch;
    const ctx = canvas.getContext('2d', {willReadFrequently: true});
    const now = Date.now();
    ctx.drawImage(source, 0, 0, cw, ch, 0, 0, cw, ch);
    const px = ctx.getImageData(0, 0, cw, ch).data;
    const bits = [];
    const q = size / 4; // sample the middle half of each block
    for (let i = 0; i < BITS; i++) {
      const x0 = size * (1 + (i % PER_ROW));
      const y0 = size * (1 + Math.floor(i / PER_ROW));
      let sum = 0;
      let n = 0;
      for (let y = y0 + q; y < y0 + size - q; y++) {
        for (let x = x0 + q; x < x0 + size - q; x++) {
          const o = (y * cw + x) * 4;
          sum += 0.299 * px[o] + 0.587 * px[o + 1] + 0.114 * px[o + 2];
          n++;
        }
      }
      bits.push(sum / n >= 128 ? 1 : 0);
    }
    const stamp = decodeBits(bits);
    if (stamp === null) return {stamp: null, reason: 'check failed'};
    let latency = (((now % MOD) - stamp) % MOD + MOD) % MOD;
    if (latency > MOD / 2) latency -= MOD; // the picture is "from the future": clock skew
    return {stamp, now, latency};
  }

  // Sample the first `selector` into window.__pbClock: every 20 ms until the first picture
  // reads (time to first frame), then every `everyMs`. Times are performance.now(), i.e. ms
  // since navigation start.
  function start(everyMs = 200, selector = 'video') {
    const state = {samples: [], misses: 0, firstFrameAt: null, firstPlayingAt: null};
    window.__pbClock = state;
    document.addEventListener(
      'playing',
      () => {
        if (state.firstPlayingAt === null) state.firstPlayingAt = performance.now();
      },
      true,
    );
    function tick() {
      const v = document.querySelector(selector);
      if (v && v.readyState >= 2) {
        const r = read(v);
        if (r.stamp === null) {
          state.misses++;
        } else {
          const at = performance.now();
          if (state.firstFrameAt === null) state.firstFrameAt = at;
          state.samples.push({at, latency: r.latency, stamp: r.stamp});
        }
      }
      setTimeout(tick, state.firstFrameAt === null ? 20 : everyMs);
    }
    tick();
  }

  window.PlateBridgeClock = {read, decodeBits, crc8, start};
})();
