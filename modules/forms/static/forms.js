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

  // Map points: offer the device's position; the address field stays the fallback.
  if (navigator.geolocation) {
    form.querySelectorAll("[data-map]").forEach(function (box) {
      var coords = box.querySelector("[data-map-coords]");
      if (coords) { coords.hidden = false; }
      var btn = box.querySelector("[data-locate]");
      if (!btn) { return; }
      btn.addEventListener("click", function () {
        navigator.geolocation.getCurrentPosition(function (p) {
          var inputs = coords.querySelectorAll("input");
          inputs[0].value = p.coords.latitude.toFixed(6);
          inputs[1].value = p.coords.longitude.toFixed(6);
        });
      });
    });
  }
})();
