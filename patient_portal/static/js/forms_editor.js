// Questionnaire editor: live validation and preview while typing, reading a chosen file into a
// textarea, and copying the S summary. Every page works without this script.
(function () {
  "use strict";

  function csrfToken(element) {
    var form = element.closest("form");
    var field = (form || document).querySelector('input[name="csrf_token"]');
    return field ? field.value : "";
  }

  function showProblems(problems) {
    var box = document.getElementById("problems");
    if (!box) return;
    box.textContent = "";
    var none = document.getElementById("no-problems");
    if (none) none.hidden = problems.length > 0;
    if (!problems.length) return;
    var list = document.createElement("ul");
    list.className = "problems";
    problems.forEach(function (problem) {
      var item = document.createElement("li");
      item.className = problem.warning ? "warning" : "error";
      if (problem.link_id) {
        var code = document.createElement("code");
        code.textContent = problem.link_id;
        item.appendChild(code);
        item.appendChild(document.createTextNode(" "));
      }
      item.appendChild(document.createTextNode(problem.message));
      list.appendChild(item);
    });
    box.appendChild(list);
  }

  function liveValidation(textarea) {
    var timer = null;
    var sent = 0;
    textarea.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var number = ++sent;
        fetch(textarea.dataset.validate, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken(textarea) },
          body: JSON.stringify({ document: textarea.value }),
        })
          .then(function (response) { return response.json(); })
          .then(function (result) {
            if (number !== sent) return; // an older answer arriving late
            showProblems(result.problems || []);
            var preview = document.getElementById("preview");
            if (preview && typeof result.preview === "string") preview.innerHTML = result.preview;
            textarea.setAttribute("aria-invalid", result.ok ? "false" : "true");
          })
          .catch(function () { /* offline: the server checks again on save */ });
      }, 400);
    });
  }

  function fileIntoTextarea(input) {
    var target = document.getElementById(input.dataset.into);
    if (!target) return;
    input.hidden = false;
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      if (!file) return;
      file.text().then(function (text) {
        target.value = text;
        target.dispatchEvent(new Event("input"));
        var upload = document.querySelector('input[name="source"][value="upload"]');
        if (upload) upload.checked = true;
      });
    });
  }

  function copyButton(button) {
    var source = document.getElementById(button.dataset.copy);
    var done = button.parentElement.querySelector(".copied");
    if (!source) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      var finished = function () { if (done) done.hidden = false; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(source.value).then(finished, function () {
          source.select();
        });
      } else {
        source.select();
        if (document.execCommand("copy")) finished();
      }
    });
  }

  document.querySelectorAll("textarea[data-validate]:not([readonly])").forEach(liveValidation);
  document.querySelectorAll("input[type=file][data-into]").forEach(fileIntoTextarea);
  document.querySelectorAll("button[data-copy]").forEach(copyButton);
})();
