// The status widget's loader (GET /widget.js): each [data-tracking-widget]
// element becomes an iframe of one of the portal's frames, sized from that
// frame's resize messages. No cookie, nothing loaded but the frames; the
// element's fallback content stays without JavaScript.
(function () {
  "use strict";

  var MIN_HEIGHT = 120;
  var MAX_HEIGHT = 2000;
  var INITIAL_HEIGHT = 200;
  // A frame that loads but never speaks was refused or broke: the fallback
  // comes back.
  var SILENCE_MS = 3000;
  var TITLES = { en: "Parcel tracking", es: "Seguimiento de paquetes", de: "Sendungsverfolgung" };
  var SANDBOX = "allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox allow-forms";

  // The portal is where this script came from.
  var script = document.currentScript || document.querySelector('script[src$="/widget.js"]');
  if (!script || !script.src) return;
  var portal = new URL(script.src, document.baseURI).origin;
  var frames = [];

  // One path segment: not empty, not "." or ".." (the URL parser would
  // resolve those to another path), slashes encoded.
  function segment(value) {
    if (!value || /^\.{1,2}$/.test(value)) return null;
    return encodeURIComponent(value);
  }

  function frameUrl(element) {
    var data = element.dataset;
    var url;
    if (data.token) {
      var token = segment(data.token);
      if (!token) return null;
      url = new URL("/embed/t/" + token + "/", portal);
      // The frame then shows the parcel only if it is this brand's.
      if (data.brand) url.searchParams.set("brand", data.brand);
    } else {
      var brand = segment(data.brand);
      if (!brand) return null;
      if (data.order) {
        var order = segment(data.order);
        if (!order) return null;
        url = new URL("/embed/" + brand + "/orders/" + order + "/", portal);
        url.searchParams.set("expires", data.expires || "");
        url.searchParams.set("signature", data.signature || "");
      } else {
        url = new URL("/embed/" + brand + "/", portal);
      }
    }
    var lang = language(element);
    if (lang) url.searchParams.set("lang", lang);
    return url;
  }

  // The host page's language as its primary subtag (en-GB is en).
  function language(element) {
    var lang = element.getAttribute("data-lang") || document.documentElement.lang || "";
    lang = lang.toLowerCase().split("-")[0];
    return /^[a-z]{2,3}$/.test(lang) ? lang : "";
  }

  function mount(element) {
    if (element.getAttribute("data-tracking-widget-mounted") !== null) return;
    var url = frameUrl(element);
    if (!url) return;
    var frame = document.createElement("iframe");
    frame.src = url.href;
    frame.title = element.getAttribute("data-title") || TITLES[language(element)] || TITLES.en;
    frame.setAttribute("loading", "lazy");
    frame.setAttribute("referrerpolicy", "no-referrer");
    frame.setAttribute("sandbox", SANDBOX);
    frame.style.cssText = "display:block;width:100%;border:0;height:" + INITIAL_HEIGHT + "px";
    element.setAttribute("data-tracking-widget-mounted", "");
    var widget = { frame: frame, spoke: false };
    frames.push(widget);
    var fallback = Array.prototype.slice.call(element.childNodes);
    frame.addEventListener("load", function () {
      window.setTimeout(function () {
        if (!widget.spoke && frame.parentNode === element) element.replaceChildren.apply(element, fallback);
      }, SILENCE_MS);
    });
    // The fallback goes in the same step as the frame comes.
    element.replaceChildren(frame);
  }

  function mountAll() {
    var elements = document.querySelectorAll("[data-tracking-widget]");
    for (var i = 0; i < elements.length; i++) mount(elements[i]);
  }

  // A resize counts only from the portal's origin and one of this loader's
  // own frames; any other window (the host page, a popup) changes nothing.
  window.addEventListener("message", function (event) {
    if (event.origin !== portal || !event.source) return;
    var data = event.data;
    if (!data || typeof data !== "object" || data.type !== "tracking-widget:resize") return;
    var height = data.height;
    if (typeof height !== "number" || !isFinite(height)) return;
    height = Math.min(MAX_HEIGHT, Math.max(MIN_HEIGHT, Math.ceil(height)));
    for (var i = 0; i < frames.length; i++) {
      if (frames[i].frame.contentWindow === event.source) {
        frames[i].spoke = true;
        frames[i].frame.style.height = height + "px";
        return;
      }
    }
  });

  mountAll();
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
})();
