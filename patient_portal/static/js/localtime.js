// Shows the viewer's own time beside a clinic time when the device is in another time zone.
// Clinic times are rendered by the server in the clinic's zone; elements carry the instant in
// data-instant (ISO 8601 with offset) and the clinic's zone in data-zone. Without JavaScript the
// clinic time stands alone, which is always correct.
(function () {
  "use strict";
  var here = Intl.DateTimeFormat().resolvedOptions().timeZone;
  var elements = document.querySelectorAll("[data-instant][data-zone]");
  for (var i = 0; i < elements.length; i++) {
    var element = elements[i];
    if (!here || element.getAttribute("data-zone") === here) continue;
    var instant = new Date(element.getAttribute("data-instant"));
    if (isNaN(instant.getTime())) continue;
    var local = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
      month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", timeZone: here,
    }).format(instant);
    var note = document.createElement("span");
    note.className = "local-time";
    note.textContent = " (" + local + " " + here + ")";
    element.appendChild(note);
  }
})();
