// Parvis form builder: drag and drop of steps and questions, as an enhancement. A drop posts
// the builder's own form (op=place, with the page's CSRF token), swaps in the page the server
// sends back and announces the move in the status region. The up/down buttons stay the way
// for keyboards and for browsers without JavaScript.
(function () {
  "use strict";
  var root = document.getElementById("forms-builder");
  var status = document.getElementById("forms-builder-status");
  if (!root || !status || !window.fetch || !("draggable" in document.createElement("span"))) { return; }
  var dragged = null;

  function say(text) { status.textContent = ""; window.setTimeout(function () { status.textContent = text; }, 50); }
  function fill(tpl, item, target) { return tpl.replace("{item}", item).replace("{target}", target); }
  function isStep(el) { return el.classList.contains("forms-builder-step"); }
  function clear() {
    root.querySelectorAll(".forms-builder-drop-before,.forms-builder-drop-after,.forms-builder-drop-into").forEach(function (el) {
      el.classList.remove("forms-builder-drop-before", "forms-builder-drop-after", "forms-builder-drop-into");
    });
  }
  // Where a drop on el would go: null when it does not fit (a step only next to a step).
  function place(el, ev) {
    if (!dragged || el === dragged) { return null; }
    if (isStep(dragged) !== isStep(el)) {
      return isStep(el) && !isStep(dragged) ? "into" : null;
    }
    var r = el.getBoundingClientRect();
    return ev.clientY < r.top + r.height / 2 ? "before" : "after";
  }
  function target(ev) {
    var el = ev.target.closest ? ev.target.closest("[data-key]") : null;
    if (el && dragged && isStep(dragged) && !isStep(el)) { el = el.closest(".forms-builder-step"); }
    return el && root.contains(el) ? el : null;
  }

  function bind() {
    var hint = root.querySelector(".forms-builder-dnd");
    if (hint) { hint.hidden = false; }
    root.querySelectorAll("[data-key]").forEach(function (el) {
      if (el.querySelector(":scope > .forms-builder-handle")) { return; }
      var h = document.createElement("span");
      h.className = "forms-builder-handle";
      h.textContent = "\u2807";
      h.title = root.getAttribute("data-handle");
      h.setAttribute("aria-hidden", "true"); // keyboards use the buttons
      h.draggable = true;
      h.addEventListener("dragstart", function (ev) {
        dragged = el;
        el.classList.add("forms-builder-dragging");
        ev.dataTransfer.effectAllowed = "move";
        ev.dataTransfer.setData("text/plain", el.getAttribute("data-key"));
        if (ev.dataTransfer.setDragImage) { ev.dataTransfer.setDragImage(el, 10, 10); }
        ev.stopPropagation();
      });
      h.addEventListener("dragend", function () { el.classList.remove("forms-builder-dragging"); dragged = null; clear(); });
      el.insertBefore(h, el.firstChild);
    });
  }

  root.addEventListener("dragover", function (ev) {
    var el = target(ev);
    var pos = el && place(el, ev);
    clear();
    if (!pos) { return; }
    ev.preventDefault();
    ev.dataTransfer.dropEffect = "move";
    el.classList.add("forms-builder-drop-" + pos);
  });
  root.addEventListener("dragleave", function (ev) { if (!root.contains(ev.relatedTarget)) { clear(); } });
  root.addEventListener("drop", function (ev) {
    var el = target(ev);
    var pos = el && place(el, ev);
    clear();
    if (!pos) { return; }
    ev.preventDefault();
    move(dragged, el, pos);
  });

  function move(item, to, pos) {
    var csrf = root.querySelector('input[name="csrf"]');
    var body = new URLSearchParams();
    body.set("csrf", csrf ? csrf.value : "");
    body.set("op", "place");
    body.set("key", item.getAttribute("data-key"));
    body.set("target", to.getAttribute("data-key"));
    body.set("pos", pos === "into" ? "after" : pos);
    var msg = fill(root.getAttribute("data-moved-" + pos), item.getAttribute("data-label"), to.getAttribute("data-label"));
    fetch(window.location.pathname, { method: "POST", body: body, credentials: "same-origin" }).then(function (res) {
      return res.text().then(function (html) { return { ok: res.ok, html: html }; });
    }).then(function (r) {
      var fresh = new DOMParser().parseFromString(r.html, "text/html").getElementById("forms-builder");
      if (fresh) { root.innerHTML = fresh.innerHTML; bind(); }
      say(r.ok && fresh ? msg : root.getAttribute("data-move-failed"));
    }).catch(function () { say(root.getAttribute("data-move-failed")); });
  }

  bind();
})();
