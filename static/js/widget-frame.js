// Inside a status widget frame: tells the page that framed it how tall the
// content is, on load, after every HTMX swap and whenever its size changes,
// so the loader (widget.js) sizes the iframe to fit. The height is not
// secret, hence the target origin "*"; the loader checks where it came from.
(function () {
  "use strict";

  if (window.parent === window) return;
  var last = -1;
  var pending = false;

  // The bottom of the content rather than the document's scroll height
  // alone: a body at least as tall as the viewport (min-height: 100vh)
  // would otherwise keep the frame from ever shrinking.
  function contentHeight() {
    var body = document.body;
    var height = 0;
    if (body) {
      var children = body.children;
      for (var i = 0; i < children.length; i++) {
        var bottom = children[i].getBoundingClientRect().bottom;
        if (bottom > height) height = bottom;
      }
      var style = window.getComputedStyle(body);
      height += window.scrollY + (parseFloat(style.paddingBottom) || 0) + (parseFloat(style.marginBottom) || 0);
    }
    return Math.ceil(height || document.documentElement.scrollHeight);
  }

  function post(always) {
    var height = contentHeight();
    if (!always && height === last) return;
    last = height;
    window.parent.postMessage({ type: "tracking-widget:resize", height: height }, "*");
  }

  function soon() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      post(false);
    });
  }

  // The root alone would miss content that shrinks inside a body held at
  // the viewport's height, so the body's own blocks are watched too.
  function watch() {
    if (!window.ResizeObserver) return;
    var observer = new window.ResizeObserver(soon);
    observer.observe(document.documentElement);
    var children = document.body ? document.body.children : [];
    for (var i = 0; i < children.length; i++) observer.observe(children[i]);
  }

  window.addEventListener("load", function () {
    watch();
    post(true);
  });
  document.addEventListener("htmx:afterSwap", soon);
  document.addEventListener("htmx:afterSettle", soon);
  window.addEventListener("resize", soon);
  if (document.readyState === "complete") {
    watch();
    post(true);
  }
})();
