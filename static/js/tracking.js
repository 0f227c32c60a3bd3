// The tracking page's live parts. The page is complete without this file:
// it adds the map, keeps the live stream's state visible, falls back to
// polling when server-sent events don't get through, and reloads the
// customer's forms when what they can do changes, but not while they are
// filling one in.
(function () {
  "use strict";

  var POLL_MS = 15000;
  var TRUCK =
    '<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" fill="none" stroke="#fff" stroke-width="2" stroke-linejoin="round">' +
    '<rect x="2" y="5" width="12" height="10" rx="1"/><path d="M14 9h4l3 3.5V15h-7z"/>' +
    '<circle cx="6.5" cy="17.5" r="1.8" fill="#fff"/><circle cx="17" cy="17.5" r="1.8" fill="#fff"/></svg>';
  var live = document.getElementById("live");
  var pollTimer = null;
  var opened = false;
  var map = null;
  var driverMarker = null;
  var area = null;
  var place = null;
  // Follow the van: when the driver's marker leaves the inner part of the
  // view, pan to it, unless the visitor has moved the map themselves in
  // the last while (then the map is theirs to look around).
  var FOLLOW_INNER = -0.2; // the view's bounds, shrunk by a fifth on each side
  var USER_MOVE_RESPECT_MS = 60000;
  var userMovedAt = 0;
  var movingOurselves = false;

  function followDriver(latLng) {
    if (!map || Date.now() - userMovedAt < USER_MOVE_RESPECT_MS) return;
    if (map.getBounds().pad(FOLLOW_INNER).contains(latLng)) return;
    movingOurselves = true;
    map.panTo(latLng, { animate: true, duration: 0.5 });
    movingOurselves = false;
  }

  function isFinal() {
    var status = document.querySelector("#status .status");
    return !status || status.getAttribute("data-final") === "1";
  }

  function refresh() {
    var link = document.getElementById("refresh");
    if (link && window.htmx) window.htmx.trigger(link, "poll");
  }

  function stopPolling() {
    if (pollTimer) window.clearInterval(pollTimer);
    pollTimer = null;
  }

  function startPolling() {
    if (pollTimer || isFinal()) return;
    pollTimer = window.setInterval(function () {
      if (isFinal()) stopPolling();
      else refresh();
    }, POLL_MS);
  }

  function number(element, name) {
    var value = element.getAttribute(name);
    return value === null ? null : parseFloat(value);
  }

  function updateMap() {
    var data = document.getElementById("map-data");
    var card = document.getElementById("map-card");
    if (!data || !card || !window.L) return;
    if (data.getAttribute("data-show") !== "1") {
      card.hidden = true;
      return;
    }
    card.hidden = false;
    var accent = window.getComputedStyle(document.documentElement).getPropertyValue("--accent").trim() || "#0f766e";
    var first = map === null;
    if (first) {
      map = window.L.map("map", { scrollWheelZoom: false, zoomControl: true });
      var tiles = data.getAttribute("data-tiles");
      window.L.tileLayer(tiles, {
        maxZoom: 19,
        attribution: tiles.indexOf("openstreetmap.org") >= 0 ? "© OpenStreetMap contributors" : "",
      }).addTo(map);
      map.on("dragstart", function () { userMovedAt = Date.now(); });
      map.on("zoomstart", function () { if (!movingOurselves) userMovedAt = Date.now(); });
    }
    var points = [];
    var destLat = number(data, "data-dest-lat");
    var destLng = number(data, "data-dest-lng");
    if (destLat !== null && destLng !== null) {
      if (!area) {
        area = window.L.circle([destLat, destLng], {
          radius: 150, color: accent, weight: 2, fillColor: accent, fillOpacity: 0.15,
        }).addTo(map);
        area.bindTooltip(data.getAttribute("data-label-area"));
      } else {
        area.setLatLng([destLat, destLng]);
      }
      points.push([destLat, destLng]);
    }
    // A pickup point is a shop, whose place is public: a pin on it, not
    // the circle that keeps a home's address vague.
    var placeLat = number(data, "data-place-lat");
    var placeLng = number(data, "data-place-lng");
    if (placeLat !== null && placeLng !== null) {
      if (!place) {
        place = window.L.marker([placeLat, placeLng], {
          keyboard: false,
          title: data.getAttribute("data-label-area"),
          icon: window.L.divIcon({ className: "", html: '<div class="place-pin"></div>', iconSize: [26, 26], iconAnchor: [13, 26] }),
        }).addTo(map);
      } else {
        place.setLatLng([placeLat, placeLng]);
      }
      points.push([placeLat, placeLng]);
    }
    var driverLat = number(data, "data-driver-lat");
    var driverLng = number(data, "data-driver-lng");
    if (driverLat !== null && driverLng !== null) {
      if (!driverMarker) {
        driverMarker = window.L.marker([driverLat, driverLng], {
          keyboard: false,
          title: data.getAttribute("data-label-driver"),
          icon: window.L.divIcon({ className: "", html: '<div class="driver-icon">' + TRUCK + "</div>", iconSize: [34, 34], iconAnchor: [17, 17] }),
        }).addTo(map);
      } else {
        driverMarker.setLatLng([driverLat, driverLng]);
        followDriver(driverMarker.getLatLng());
      }
      points.push([driverLat, driverLng]);
    } else if (driverMarker) {
      driverMarker.remove();
      driverMarker = null;
    }
    if (first && points.length) {
      var bounds = window.L.latLngBounds(points);
      // The circle's own getBounds needs a map view, which this sets.
      if (area) bounds.extend(area.getLatLng().toBounds(2 * area.getRadius()));
      movingOurselves = true;
      map.fitBounds(bounds, { padding: [24, 24], maxZoom: 16 });
      movingOurselves = false;
    }
    map.invalidateSize();
  }

  function isBeingEdited(container) {
    var fields = container.querySelectorAll("input, textarea, select");
    for (var i = 0; i < fields.length; i++) {
      var field = fields[i];
      if (field === document.activeElement) return true;
      if (field.type === "radio" || field.type === "checkbox") {
        if (field.checked !== field.defaultChecked) return true;
      } else if (field.type !== "hidden" && field.value !== field.defaultValue) {
        return true;
      }
    }
    return false;
  }

  // The #actions slot holds this visitor's forms, loaded on their own (they
  // carry a CSRF token, which the shared, cached page can't). A live update
  // brings the slot's shared version: rather than swap it in, reload the
  // forms, and only when what the customer can do has changed and they are
  // not filling one in.
  var keptNotify = null;
  document.body.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target;
    if (!target || target.id !== "actions") return;
    event.detail.shouldSwap = false;
    var incoming = event.detail.fragment && event.detail.fragment.firstElementChild;
    var state = incoming ? incoming.getAttribute("data-actions") : null;
    if (state === null || state === target.getAttribute("data-actions") || isBeingEdited(target)) return;
    target.setAttribute("data-actions", state);
    if (window.htmx) window.htmx.trigger(target, "actions-changed");
  });
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (!target || target.id !== "actions") return;
    // A subscription confirmed just now belongs to this visitor, not to the
    // page everyone shares: keep it through the reload.
    var mine = target.querySelector("#notify .notify-done");
    keptNotify = mine ? mine.closest("#notify").cloneNode(true) : null;
  });
  document.body.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (!target || target.id !== "actions" || !keptNotify) return;
    var incoming = target.querySelector("#notify");
    if (incoming) incoming.replaceWith(keptNotify);
    keptNotify = null;
  });
  document.body.addEventListener("htmx:oobAfterSwap", function (event) {
    if (event.target && event.target.id === "map-data") updateMap();
  });
  document.body.addEventListener("htmx:afterSettle", function () {
    updateMap();
    if (isFinal()) stopPolling();
  });
  // The driver's position comes in the stream's own message: move the map
  // and the caption's time without fetching the page again.
  function showPosition(event) {
    var data = document.getElementById("map-data");
    var position;
    try { position = JSON.parse(event.data); } catch (error) { return; }
    if (!data || data.getAttribute("data-show") !== "1") return;
    data.setAttribute("data-driver-lat", String(position.lat));
    data.setAttribute("data-driver-lng", String(position.lng));
    var caption = data.querySelector(".driver-seen");
    if (caption && window.Intl) {
      var time = new Intl.DateTimeFormat("en-GB", {
        hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: caption.getAttribute("data-zone") || undefined,
      }).format(new Date(position.at));
      var old = caption.getAttribute("data-time");
      if (old && time !== old) {
        caption.textContent = caption.textContent.replace(old, time);
        caption.setAttribute("data-time", time);
      }
    }
    updateMap();
  }
  // When only the expected times move (the ETA worked out again after the
  // van's pings), the stream sends the status card itself: put it in place
  // without fetching the page again.
  function showStatus(event) {
    var current = document.getElementById("status");
    if (!current) return;
    var holder = document.createElement("template");
    holder.innerHTML = event.data;
    var incoming = holder.content.getElementById("status");
    if (!incoming) return;
    current.innerHTML = incoming.innerHTML;
    if (window.htmx) window.htmx.process(current);
  }
  var listenedTo = null;
  document.body.addEventListener("htmx:sseOpen", function (event) {
    var source = event.detail && event.detail.source;
    if (source && source !== listenedTo) {
      source.addEventListener("position", showPosition);
      source.addEventListener("status", showStatus);
      listenedTo = source;
    }
    if (live) live.classList.add("connected");
    stopPolling();
    // Whether anything changed between this page's render and the stream's
    // opening is the stream's to say: its first message is "changed" then
    // (pages/live/stream.py), and a reconnection asks again.
    opened = true;
  });
  document.body.addEventListener("htmx:sseError", function () {
    if (live) live.classList.remove("connected");
    startPolling();
  });
  document.body.addEventListener("htmx:sseClose", function () {
    if (live) live.classList.remove("connected");
  });

  var liveText = document.getElementById("live-text");
  if (liveText) liveText.hidden = false;
  if (!("EventSource" in window) && !isFinal()) startPolling();
  updateMap();
  window.trackingPage = {
    mapCentre: function () { return map ? map.getCenter() : null; },
    driverInView: function () { return !!(map && driverMarker && map.getBounds().pad(FOLLOW_INNER).contains(driverMarker.getLatLng())); },
    refresh: refresh, isPolling: function () { return pollTimer !== null; }, opened: function () { return opened; } };
})();
