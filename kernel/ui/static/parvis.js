// Parvis enhancements: everything works without this file.
document.addEventListener("DOMContentLoaded", function () {
  var s = document.querySelector("[data-error-summary]");
  if (s) { s.focus(); }
});
