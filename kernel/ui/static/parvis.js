// Parvis progressive enhancements. Every page works without this file; it only makes some
// things smoother. CSP: loaded as a file, no inline script, no eval; it changes styles only
// through the CSSOM (allowed by a CSP without 'unsafe-inline').
(function () {
  "use strict";

  // After a failed post, take the reader to the error summary (announced as an alert).
  function focusErrorSummary() {
    var s = document.querySelector("[data-error-summary]");
    if (s) { s.focus(); }
  }

  // A summary link moves focus to its field and scrolls its label or legend into view, so
  // the question stays visible above the input (browsers scroll only to the input).
  function followSummaryLinks() {
    document.addEventListener("click", function (e) {
      var a = e.target.closest && e.target.closest("[data-error-summary] a[href^='#']");
      if (!a) { return; }
      var input = document.getElementById(a.getAttribute("href").slice(1));
      if (!input) { return; }
      var fieldset = input.closest("fieldset");
      var legend = fieldset && fieldset.querySelector("legend");
      var label = legend || document.querySelector("label[for='" + input.id + "']");
      e.preventDefault();
      (label || input).scrollIntoView();
      input.focus({ preventScroll: true });
    });
  }

  // Character counts: "N characters left", read out by screen readers once typing pauses.
  function characterCounts() {
    var boxes = document.querySelectorAll("[data-maxlength]");
    Array.prototype.forEach.call(boxes, function (box) {
      var max = parseInt(box.getAttribute("data-maxlength"), 10);
      var area = box.querySelector("textarea");
      var count = area && document.getElementById(area.id + "-count");
      if (!max || !count) { return; }
      var live = document.createElement("div");
      live.className = "pv-visually-hidden";
      live.setAttribute("aria-live", "polite");
      count.parentNode.insertBefore(live, count.nextSibling);
      var timer;
      function update(announce) {
        var left = max - area.value.length;
        var msg = (left >= 0 ? box.getAttribute("data-count-left") : box.getAttribute("data-count-over"))
          .replace("{n}", String(Math.abs(left)));
        count.textContent = msg;
        count.classList.toggle("pv-char-count--over", left < 0);
        clearTimeout(timer);
        if (announce) { timer = setTimeout(function () { live.textContent = msg; }, 1000); }
      }
      area.addEventListener("input", function () { update(true); });
      update(false);
    });
  }

  // Destructive buttons ask first (data-confirm="question"). Without JavaScript the action
  // goes ahead, so such actions also lead to a confirmation page or can be undone.
  function confirmations() {
    document.addEventListener("click", function (e) {
      var b = e.target.closest && e.target.closest("[data-confirm]");
      if (b && !window.confirm(b.getAttribute("data-confirm"))) {
        e.preventDefault();
      }
    });
  }

  // Theme editor: the preview follows the primary colour as it is typed, with its contrast.
  function luminance(hex) {
    var v = [0, 2, 4].map(function (i) {
      var c = parseInt(hex.substr(i, 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
  }
  function mix(hex, to, t) {
    var out = "#";
    for (var i = 0; i < 6; i += 2) {
      var a = parseInt(hex.substr(i, 2), 16);
      var c = Math.round(a + (to - a) * t).toString(16);
      out += c.length < 2 ? "0" + c : c;
    }
    return out;
  }
  function themePreview() {
    var form = document.querySelector("[data-theme-form]");
    var box = document.querySelector("[data-theme-preview]");
    if (!form || !box) { return; }
    var colour = form.querySelector("[name=primary]");
    var name = form.querySelector("[name=name]");
    var band = box.querySelector(".pv-theme-preview__band");
    var ratioText = box.querySelector("[data-theme-ratio]");
    if (name && band) {
      name.addEventListener("input", function () { band.textContent = name.value; });
    }
    if (!colour || !ratioText) { return; }
    colour.addEventListener("input", function () {
      var m = /^#?([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(colour.value.trim());
      if (!m) { return; }
      var hex = m[1].length === 3 ? m[1].replace(/(.)/g, "$1$1") : m[1];
      var ratio = 1.05 / (luminance(hex) + 0.05);
      var shown = (Math.floor(ratio * 100) / 100).toFixed(2);
      if (ratio < 4.5) {
        ratioText.textContent = box.getAttribute("data-ratio-fail").replace("{ratio}", shown);
        return;
      }
      ratioText.textContent = box.getAttribute("data-ratio-text").replace("{ratio}", shown);
      var s = box.style;
      s.setProperty("--pv-primary", "#" + hex);
      s.setProperty("--pv-link", "#" + hex);
      s.setProperty("--pv-primary-dark", mix(hex, 0, 0.3));
      s.setProperty("--pv-link-hover", mix(hex, 0, 0.3));
      s.setProperty("--pv-primary-tint", mix(hex, 255, 0.9));
    });
  }

  function start() {
    focusErrorSummary();
    followSummaryLinks();
    characterCounts();
    confirmations();
    themePreview();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
