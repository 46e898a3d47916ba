// The patient's questionnaire page: show and hide questions the moment an answer changes.
//
// The page works without this script (the server shows a section again when an answer brings up
// more questions). Here the browser evaluator (questionnaire_engine.js, the same semantics as the
// server, checked against the same vectors) runs on every change: items that stop applying are
// hidden, items that start applying appear, calculated values (BMI …) update. Hidden items'
// inputs are disabled so they are not sent; the server drops such answers anyway.

const form = document.querySelector("form[data-questionnaire]");

function readJson(id) {
  const element = document.getElementById(id);
  return element ? JSON.parse(element.textContent) : null;
}

// "meds[1]/dose" → [["meds", 1], ["dose", null]]
function pathOf(key) {
  return key.split("/").map((part) => {
    const match = /^(.*)\[(\d+)\]$/.exec(part);
    return match ? [match[1], Number(match[2])] : [part, null];
  });
}

function scopeFor(answers, key, create) {
  let scope = answers;
  const path = pathOf(key);
  for (const [linkId, index] of path.slice(0, -1)) {
    if (index === null) continue;
    if (!Array.isArray(scope[linkId])) {
      if (!create) return null;
      scope[linkId] = [];
    }
    while (scope[linkId].length <= index) scope[linkId].push({});
    scope = scope[linkId][index];
  }
  return { scope, linkId: path[path.length - 1][0] };
}

function fieldValues(container) {
  const type = container.dataset.type;
  const inputs = [...container.querySelectorAll("input, select, textarea")].filter(
    (input) => input.type !== "file" && !input.name.endsWith(":other"),
  );
  const raw = [];
  for (const input of inputs) {
    if ((input.type === "radio" || input.type === "checkbox") && !input.checked) continue;
    if (input.value.trim() !== "") raw.push(input.value.trim());
  }
  const other = container.querySelector('input[name$=":other"]');
  if (other && other.value.trim() !== "") raw.push(other.value.trim());
  return raw.map((text) => convert(type, text, container));
}

function convert(type, text, container) {
  if (type === "boolean") return text === "true" ? true : text === "false" ? false : text;
  if (type === "integer" || type === "decimal" || type === "quantity") {
    const normal = text.replace(/[０-９]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0));
    const number = Number(normal.replace(/,/g, ""));
    if (normal === "" || Number.isNaN(number)) return text;
    if (type === "integer" && !Number.isInteger(number)) return text;
    if (type === "quantity") {
      const unit = container.querySelector("[data-unit]")?.dataset.unit;
      return unit ? { value: number, unit, code: unit } : { value: number };
    }
    return number;
  }
  if (type === "time" && /^\d{2}:\d{2}$/.test(text)) return `${text}:00`;
  if (type === "dateTime" && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(text)) {
    return `${text}:00${form.dataset.offset || "+09:00"}`;
  }
  return text;
}

async function start() {
  if (!form) return;
  const { parseQuestionnaire, evaluate } = await import(form.dataset.engine);
  const definition = parseQuestionnaire(readJson("q-definition"));
  const saved = readJson("q-answers") || {};
  const shownBox = form.querySelector("[data-shown]");

  function collect() {
    const answers = structuredClone(saved);
    for (const container of form.querySelectorAll("[data-key][data-type]")) {
      if (container.closest("[data-field-key]")?.hidden) continue;
      const key = container.dataset.key;
      const place = scopeFor(answers, key, true);
      const values = fieldValues(container);
      if (values.length === 0) delete place.scope[place.linkId];
      else place.scope[place.linkId] = values.length === 1 ? values[0] : values;
    }
    return answers;
  }

  function refresh() {
    const result = evaluate(definition, collect());
    const shown = [];
    for (const wrapper of form.querySelectorAll("[data-field-key]")) {
      const on = result.enabled.has(wrapper.dataset.fieldKey);
      wrapper.hidden = !on;
      if (on) shown.push(wrapper.dataset.fieldKey);
    }
    for (const wrapper of form.querySelectorAll("[data-field-key]")) {
      const hiddenAbove = wrapper.hidden || wrapper.parentElement.closest("[data-field-key][hidden]");
      for (const input of wrapper.querySelectorAll(":scope > .field input, :scope > .field select, :scope > .field textarea, :scope > fieldset.field input")) {
        input.disabled = Boolean(hiddenAbove);
      }
    }
    for (const output of form.querySelectorAll("[data-computed-key]")) {
      const value = result.computed[output.dataset.computedKey];
      output.textContent =
        value === undefined || value === null
          ? "—"
          : typeof value === "number" && !Number.isInteger(value)
            ? value.toFixed(1)
            : typeof value === "object"
              ? `${value.value ?? ""}`
              : String(value);
    }
    shownBox.replaceChildren(
      ...shown.map((key) => {
        const input = document.createElement("input");
        input.type = "hidden";
        input.name = "shown";
        input.value = key;
        return input;
      }),
    );
  }

  form.addEventListener("input", refresh);
  form.addEventListener("change", refresh);
  refresh();
  form.dataset.live = "on"; // for tests and styles: the evaluator is running
}

start().catch((error) => {
  // The page still works as plain HTML forms; say why the live updates stopped.
  console.error("questionnaire: live updates are off", error);
});
