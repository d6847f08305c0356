// Parvis forms: shows and hides conditional questions as the citizen answers, with the same
// operators as the server (logic.go), which stays the authority. Without this script every
// question of the page is shown and the server ignores answers to hidden ones.
(function () {
  "use strict";
  var form = document.querySelector("form[data-forms]");
  if (!form) { return; }
  var earlier = {};
  try { earlier = JSON.parse(form.getAttribute("data-answers") || "{}"); } catch (e) { earlier = {}; }

  function value(name) {
    var els = form.querySelectorAll('[name="' + name.replace(/"/g, '\\"') + '"]');
    if (els.length === 0) {
      var d = form.querySelector('[name="' + name + '-day"]');
      if (d) {
        var m = form.querySelector('[name="' + name + '-month"]').value, y = form.querySelector('[name="' + name + '-year"]').value;
        if (!d.value && !m && !y) { return ""; }
        return y + "-" + ("0" + m).slice(-2) + "-" + ("0" + d.value).slice(-2);
      }
      return Object.prototype.hasOwnProperty.call(earlier, name) ? earlier[name] : undefined;
    }
    if (els[0].type === "checkbox") {
      var out = [];
      els.forEach(function (el) { if (el.checked) { out.push(el.value); } });
      return out;
    }
    if (els[0].type === "radio") {
      var v = "";
      els.forEach(function (el) { if (el.checked) { v = el.value; } });
      return v;
    }
    return els[0].value;
  }
  function str(v) {
    if (v === undefined || v === null) { return ""; }
    if (v === true) { return "yes"; }
    if (v === false) { return "no"; }
    return String(v);
  }
  function empty(v) {
    if (v === undefined || v === null) { return true; }
    if (Array.isArray(v)) { return v.length === 0; }
    if (typeof v === "object") { return Object.keys(v).every(function (k) { return empty(v[k]); }); }
    return str(v).trim() === "";
  }
  function num(s) { var t = str(s).trim(); return t === "" || isNaN(Number(t)) ? null : Number(t); }
  function equal(a, b) {
    if (Array.isArray(a)) { return a.length === 1 && a[0] === str(b); }
    var x = num(a), y = num(b);
    if (x !== null && y !== null) { return x === y; }
    return str(a) === str(b);
  }
  function compare(a, b) {
    var x = num(a), y = num(b);
    if (x !== null && y !== null) { return x < y ? -1 : x > y ? 1 : 0; }
    return str(a) < str(b) ? -1 : str(a) > str(b) ? 1 : 0;
  }
  function holds(c) {
    if (!c) { return true; }
    if (c.all && c.all.length) { return c.all.every(holds); }
    if (c.any && c.any.length) { return c.any.some(holds); }
    var v = value(c.field);
    switch (c.op) {
      case "empty": return empty(v);
      case "not_empty": return !empty(v);
      case "eq": return !empty(v) && equal(v, c.value);
      case "ne": return !equal(v, c.value);
      case "in": return (c.values || []).some(function (x) { return equal(v, x); });
      case "contains":
        if (Array.isArray(v)) { return v.indexOf(str(c.value)) >= 0; }
        return !empty(v) && str(v).toLowerCase().indexOf(str(c.value).toLowerCase()) >= 0;
      case "gt": return !empty(v) && compare(v, c.value) > 0;
      case "lt": return !empty(v) && compare(v, c.value) < 0;
    }
    return false;
  }
  var blocks = Array.prototype.slice.call(form.querySelectorAll("[data-if]"));
  function update() {
    blocks.forEach(function (el) {
      var c = null;
      try { c = JSON.parse(el.getAttribute("data-if")); } catch (e) { return; }
      el.hidden = !holds(c);
    });
  }
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();

  // Map points. Without this script the address field is the answer; with it the
  // coordinates show, "use my position" fills them, and a Leaflet map (loaded only on pages
  // that have a map) sets them by a click, by dragging the marker, or with the keyboard
  // (Enter places the point at the centre). If Leaflet or the tiles fail to load, the
  // fields still work.
  var boxes = Array.prototype.slice.call(form.querySelectorAll("[data-map]"));
  boxes.forEach(function (box) {
    var coords = box.querySelector("[data-map-coords]");
    if (coords) { coords.hidden = false; }
  });
  function coordInputs(box) {
    var inputs = box.querySelectorAll("[data-map-coords] input");
    return { lat: inputs[0], lng: inputs[1] };
  }
  var setters = [];
  function enhance(box, L) {
    var canvas = box.querySelector("[data-map-canvas]");
    var wrap = box.querySelector("[data-map-box]");
    var status = box.querySelector("[data-map-status]");
    var io = coordInputs(box);
    if (!canvas || !wrap || !io.lat || !io.lng) { return; }
    wrap.hidden = false;
    var d = box.dataset;
    var map = L.map(canvas, { keyboard: true, zoomControl: false, attributionControl: true })
      .setView([Number(d.lat) || 46.6, Number(d.lng) || 2.4], Number(d.zoom) || 5);
    L.control.zoom({ zoomInTitle: d.zoomIn, zoomOutTitle: d.zoomOut }).addTo(map);
    map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
    function esc(t) {
      return String(t).replace(/[&<>"']/g, function (c) { return "&#" + c.charCodeAt(0) + ";"; });
    }
    var credit = esc(d.attribution || "");
    if (credit && d.attributionUrl) { credit = '<a href="' + esc(d.attributionUrl) + '">' + credit + "</a>"; }
    L.tileLayer(d.tiles, { attribution: credit, maxZoom: 19 }).addTo(map);
    var icon = L.icon({ iconUrl: d.icon, iconRetinaUrl: d.icon2x, shadowUrl: d.shadow,
      iconSize: [25, 41], iconAnchor: [12, 41], popupAnchor: [1, -34], shadowSize: [41, 41] });
    var marker = null;
    function show(ll, announce) {
      if (!marker) {
        marker = L.marker(ll, { draggable: true, keyboard: true, title: d.marker, alt: d.marker, icon: icon }).addTo(map);
        marker.on("dragend", function () { place(marker.getLatLng(), true); });
      } else {
        marker.setLatLng(ll);
      }
      if (announce && status) {
        status.textContent = (d.placed || "").replace("{lat}", io.lat.value).replace("{lng}", io.lng.value);
      }
    }
    function place(ll, announce) {
      io.lat.value = ll.lat.toFixed(6);
      io.lng.value = ll.lng.toFixed(6);
      show(ll, announce);
      io.lat.dispatchEvent(new Event("change", { bubbles: true }));
    }
    function fromInputs() {
      var lat = parseFloat(io.lat.value), lng = parseFloat(io.lng.value);
      if (isFinite(lat) && isFinite(lng) && Math.abs(lat) <= 90 && Math.abs(lng) <= 180) { return L.latLng(lat, lng); }
      return null;
    }
    var start = fromInputs();
    if (start) {
      show(start, false);
      map.setView(start, Math.max(map.getZoom(), 16));
    }
    map.on("click", function (e) { place(e.latlng, true); });
    // data-map-idle: the view is still (tests wait for it after a keyboard pan).
    canvas.setAttribute("data-map-idle", "");
    map.on("movestart", function () { canvas.removeAttribute("data-map-idle"); });
    map.on("moveend", function () { canvas.setAttribute("data-map-idle", ""); });
    canvas.addEventListener("keydown", function (e) {
      if (e.target === canvas && (e.key === "Enter" || e.key === " ")) {
        e.preventDefault();
        place(map.getCenter(), true);
      }
    });
    [io.lat, io.lng].forEach(function (el) {
      el.addEventListener("input", function () {
        var ll = fromInputs();
        if (ll) { show(ll, false); map.panTo(ll); }
      });
    });
    setters.push(function (ll) { place(ll, true); map.setView(ll, Math.max(map.getZoom(), 16)); });
    box._placeOnMap = setters[setters.length - 1];
  }
  if (navigator.geolocation) {
    boxes.forEach(function (box) {
      var btn = box.querySelector("[data-locate]");
      if (!btn) { return; }
      btn.hidden = false;
      btn.addEventListener("click", function () {
        navigator.geolocation.getCurrentPosition(function (p) {
          if (box._placeOnMap && window.L) {
            box._placeOnMap(window.L.latLng(p.coords.latitude, p.coords.longitude));
            return;
          }
          var io = coordInputs(box);
          io.lat.value = p.coords.latitude.toFixed(6);
          io.lng.value = p.coords.longitude.toFixed(6);
        });
      });
    });
  }
  if (boxes.length) {
    // The style sheets first (the map measures its box when it is made), then Leaflet.
    var first = boxes[0].dataset;
    var head = document.head || document.documentElement;
    var sheets = [first.leafletCss, first.mapCss], waiting = sheets.length;
    var loadScript = function () {
      var script = document.createElement("script");
      script.src = first.leafletJs;
      script.onload = function () {
        if (!window.L) { return; }
        boxes.forEach(function (box) {
          try { enhance(box, window.L); } catch (e) { /* the fields still work */ }
        });
        form.setAttribute("data-maps-ready", "");
      };
      head.appendChild(script);
    };
    sheets.forEach(function (href) {
      var link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = href;
      link.onload = link.onerror = function () { if (--waiting === 0) { loadScript(); } };
      head.appendChild(link);
    });
  }
})();
