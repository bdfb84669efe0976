/* PlateBridge grid: only the tiles on screen play (docs/web.md "Long lists"). Every tile's
 * `.player[data-lazy]` is left alone by live.js; an IntersectionObserver calls
 * `PlateBridgeLive.attach(el)` when a tile comes into the viewport and
 * `PlateBridgeLive.detach(el)` when it leaves (its socket and timers stop), so a grid of 100
 * cameras opens with only the visible few streams. `data-attached="true"` marks the playing
 * tiles (the tests count them). Tiles of later pages (cameras.js, `platebridge:more`) are
 * observed as they arrive. Without IntersectionObserver every tile starts (old browsers).
 */
(function () {
  'use strict';

  var grid = document.getElementById('camera-grid');
  if (!grid) { return; }
  var SELECTOR = '.player[data-live][data-lazy]';

  function attach(el) {
    if (!window.PlateBridgeLive || el.getAttribute('data-attached') === 'true') { return; }
    el.setAttribute('data-attached', 'true');
    window.PlateBridgeLive.attach(el);
  }

  function detach(el) {
    if (!window.PlateBridgeLive || el.getAttribute('data-attached') !== 'true') { return; }
    el.removeAttribute('data-attached');
    window.PlateBridgeLive.detach(el);
  }

  var observer = null;
  if ('IntersectionObserver' in window) {
    observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) { attach(entry.target); } else { detach(entry.target); }
      });
    }, { threshold: 0 });
  }

  function watch() {
    grid.querySelectorAll(SELECTOR).forEach(function (el) {
      if (el.platebridgeWatched) { return; }
      el.platebridgeWatched = true;
      if (observer) { observer.observe(el); } else { attach(el); }
    });
  }

  grid.addEventListener('platebridge:more', watch);
  watch();
}());
