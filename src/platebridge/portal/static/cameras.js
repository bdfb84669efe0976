/* PlateBridge: the next pages of the cameras page and the grid as the user scrolls
 * (docs/web.md "Long lists"). The page renders its first 100 cameras; `#list-more` (the
 * sentinel, from _more.html) carries `data-more` (GET /cameras/more?view=…&<the filters>) and
 * `data-cursor` (the next page's cursor). When it comes within 800 px of the viewport (an
 * IntersectionObserver), or its button is pressed, the next page is fetched as an HTML fragment
 * of the same partials and appended to the list named by `data-list`; the cursor after it comes
 * in the `X-Next-Cursor` header (none: the end, the sentinel hides). Then codecs.js checks the
 * new cards, and a `platebridge:more` event on the list tells the grid (grid.js) about them.
 * One request at a time; a failed one says so and the button retries.
 */
(function () {
  'use strict';

  var sentinel = document.getElementById('list-more');
  if (!sentinel) { return; }
  var list = document.getElementById(sentinel.getAttribute('data-list'));
  var button = sentinel.querySelector('button');
  var status = sentinel.querySelector('.more-status');
  var loading = false;
  var observer = null;

  function cursor() { return sentinel.getAttribute('data-cursor'); }

  function finish() {
    sentinel.removeAttribute('data-cursor');
    sentinel.hidden = true;
    if (observer) { observer.disconnect(); }
  }

  function load() {
    if (loading || !cursor() || !list) { return; }
    loading = true;
    sentinel.setAttribute('data-loading', 'true');
    if (status) { status.textContent = 'Loading more cameras…'; }
    var url = sentinel.getAttribute('data-more') + '&cursor=' + encodeURIComponent(cursor());
    fetch(url, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (r) {
        if (!r.ok) { throw new Error('HTTP ' + r.status); }
        var next = r.headers.get('X-Next-Cursor');
        return r.text().then(function (html) { return { html: html, next: next }; });
      })
      .then(function (page) {
        list.insertAdjacentHTML('beforeend', page.html);
        if (window.PlateBridgeCodecs && window.PlateBridgeCodecs.check) {
          window.PlateBridgeCodecs.check(list);
        }
        list.dispatchEvent(new CustomEvent('platebridge:more'));
        if (status) { status.textContent = ''; }
        if (page.next) {
          sentinel.setAttribute('data-cursor', page.next);
        } else {
          finish();
        }
      })
      .catch(function () {
        if (status) { status.textContent = 'Could not load more cameras. Press the button to retry.'; }
      })
      .then(function () {
        loading = false;
        sentinel.removeAttribute('data-loading');
        // Still in view after a short page: observe again so the next page follows.
        if (observer && cursor()) { observer.unobserve(sentinel); observer.observe(sentinel); }
      });
  }

  if (button) { button.addEventListener('click', load); }
  if (!cursor()) { return; }
  if ('IntersectionObserver' in window) {
    observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) { if (entry.isIntersecting) { load(); } });
    }, { rootMargin: '800px 0px' });
    observer.observe(sentinel);
  }
  window.PlateBridgeMore = { load: load };
}());
