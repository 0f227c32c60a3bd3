// The map beside the pickup points a customer chooses from after a failed
// attempt. The list of radio buttons is the choice and works without this
// file; the map only shows where the points are, each marker lettered as
// its point in the list: picking a marker picks its point, and picking a
// point shows its marker.
(function () {
  "use strict";

  function draw(container) {
    if (!window.L || container.getAttribute("data-drawn") === "1") return;
    var form = container.closest(".pickup-choose");
    var options = form ? form.querySelectorAll(".pickup-option[data-letter]") : [];
    if (!options.length) return;
    container.setAttribute("data-drawn", "1");
    container.hidden = false;
    form.classList.add("map-on");
    var tiles = container.getAttribute("data-tiles");
    var map = window.L.map(container, { scrollWheelZoom: false, zoomControl: true });
    window.L.tileLayer(tiles, {
      maxZoom: 19,
      attribution: tiles.indexOf("openstreetmap.org") >= 0 ? "© OpenStreetMap contributors" : "",
    }).addTo(map);
    var markers = [];
    var bounds = [];
    Array.prototype.forEach.call(options, function (option) {
      var at = [parseFloat(option.getAttribute("data-lat")), parseFloat(option.getAttribute("data-lng"))];
      var radio = option.querySelector("input[type=radio]");
      var marker = window.L.marker(at, {
        // The list is what a keyboard and a screen reader use.
        keyboard: false,
        title: option.getAttribute("data-name"),
        icon: window.L.divIcon({
          className: "",
          html: '<div class="point-marker">' + option.getAttribute("data-letter") + "</div>",
          iconSize: [30, 30],
          iconAnchor: [15, 15],
        }),
      }).addTo(map);
      marker.on("click", function () {
        if (!radio) return;
        radio.checked = true;
        radio.dispatchEvent(new Event("change", { bubbles: true }));
        radio.focus({ preventScroll: true });
      });
      markers.push({ marker: marker, radio: radio });
      bounds.push(at);
    });

    function showChosen() {
      markers.forEach(function (entry) {
        var element = entry.marker.getElement();
        var chosen = !!(entry.radio && entry.radio.checked);
        if (element) element.classList.toggle("chosen", chosen);
        entry.marker.setZIndexOffset(chosen ? 1000 : 0);
        if (chosen && !map.getBounds().contains(entry.marker.getLatLng())) map.panTo(entry.marker.getLatLng());
      });
    }
    form.addEventListener("change", showChosen);

    function fit() {
      map.invalidateSize();
      map.fitBounds(window.L.latLngBounds(bounds), { padding: [28, 28], maxZoom: 15 });
      showChosen();
    }
    fit();
    // Drawn inside a closed <details>, the map has no size until it opens.
    var details = container.closest("details");
    if (details) {
      details.addEventListener("toggle", function () {
        if (details.open) fit();
      });
    }
  }

  function drawAll() {
    Array.prototype.forEach.call(document.querySelectorAll(".pickup-map"), draw);
  }

  // The forms come into the tracking page with htmx, after it has loaded.
  document.addEventListener("htmx:afterSettle", drawAll);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
