// Questionnaire engine for the browser (問診): shows and hides questions as the patient answers.
//
// The same semantics as the server's interview_forms.engine (Python), checked against the same
// JSON vectors (interview_forms/vectors/*.json) by tests/js/questionnaire_engine.test.mjs. The
// server stays the authority: it re-evaluates everything on submit.
//
//   import { parseQuestionnaire, evaluate } from "./questionnaire_engine.js";
//   const definition = parseQuestionnaire(fhirQuestionnaireJson);
//   const result = evaluate(definition, answers);
//   result.enabled        // Set of item keys ("smoker", "meds[1]/dose")
//   result.missing        // keys of enabled required items without an answer
//   result.errors         // [{key, linkId, code, ja, en}]
//   result.computed       // {key: value} from calculatedExpression
//   result.outcomes       // [{id, action, menu, ja, en}] routing outcomes that fire
//   result.dropped        // keys whose answers the server will drop (item disabled)
//
// Answers: {linkId: value | [values]}; a repeating group: {linkId: [{...instance answers}]}.
//
// FHIRPath subset for calculatedExpression (the server uses the full fhirpathpy library):
//   literals (numbers, 'strings', true, false, {}), %resource, %context, member access
//   (item, answer, linkId, value → value[x], any other key), indexer [n];
//   functions where(), select(), repeat(), exists(), empty(), count(), first(), last(), not(),
//   iif(), round(decimals), power(n), sqrt(), abs(), floor(), ceiling(), sum();
//   operators * / div mod + - & | < > <= >= = != and or xor implies, unary minus, parentheses.
// Arithmetic needs single values; an empty operand gives no value, division by zero gives no
// value, power() of a negative base or to a fractional exponent gives no value (as fhirpathpy),
// anything outside the subset gives no value. Numbers are IEEE doubles (the server uses
// decimals: results can differ in the last digits, which is why vectors round).

const WHITESPACE =
  "\t\n\u000b\u000c\r\u001c\u001d\u001e\u001f \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004" +
  "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000";
const WS_SET = new Set(WHITESPACE);
const CODE_RE = new RegExp(`^[^${WHITESPACE}]+(?:[${WHITESPACE}][^${WHITESPACE}]+)*$`, "u");
const DATE_RE = /^([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?$/;
const DATETIME_RE =
  /^([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2})(?:T([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])(\.[0-9]{1,9})?(Z|[+-](?:0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00))?)?)?$/;
const TIME_RE = /^([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])(\.[0-9]{1,9})?$/;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

const EXT = {
  hidden: "http://hl7.org/fhir/StructureDefinition/questionnaire-hidden",
  minValue: "http://hl7.org/fhir/StructureDefinition/minValue",
  maxValue: "http://hl7.org/fhir/StructureDefinition/maxValue",
  unit: "http://hl7.org/fhir/StructureDefinition/questionnaire-unit",
  calculated:
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression",
  itemControl: "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl",
  outcome: "https://tsunagu.dev/fhir/StructureDefinition/outcome",
};

const KINDS = [
  "Boolean", "Decimal", "Integer", "Date", "DateTime", "Time", "String", "Uri", "Coding",
  "Quantity", "Attachment", "Reference",
];
// Order in which kinds are tried for an answer (as in the Python engine).
const KIND_ORDER = [
  "Coding", "Boolean", "Decimal", "Integer", "Date", "DateTime", "Time", "Quantity",
  "Attachment", "Reference", "Uri", "String",
];
const KINDS_BY_TYPE = {
  boolean: ["Boolean"],
  decimal: ["Decimal", "Integer"],
  integer: ["Integer"],
  date: ["Date"],
  dateTime: ["DateTime"],
  time: ["Time"],
  string: ["String"],
  text: ["String"],
  choice: ["Coding"],
  "open-choice": ["Coding", "String"],
  quantity: ["Quantity"],
  attachment: ["Attachment"],
};

// The same texts as interview_forms/messages.py (answers part).
const MESSAGES = {
  required: ["この質問にお答えください。", "Please answer this question."],
  "unknown-item": [
    "「{link_id}」という項目はこの問診票にありません。",
    "There is no item '{link_id}' in this questionnaire.",
  ],
  "not-answerable": [
    "この項目（見出し・説明）には回答できません。",
    "This item is a heading or an explanation and takes no answer.",
  ],
  "invalid-type": ["{expected_ja}で入力してください。", "Please enter {expected_en}."],
  "invalid-format": [
    "{expected_ja}の形式で入力してください（例: {example}）。",
    "Please enter {expected_en} (e.g. {example}).",
  ],
  "out-of-range": ["数値が大きすぎるか小さすぎます。", "The number is too large or too small."],
  "not-repeating": ["回答は一つだけ選んでください。", "Please give only one answer."],
  "not-an-option": ["選択肢の中から選んでください。", "Please choose one of the options."],
  "below-min": ["{limit} 以上で入力してください。", "Please enter {limit} or more."],
  "above-max": ["{limit} 以下で入力してください。", "Please enter {limit} or less."],
  "too-long": ["{limit} 文字以内で入力してください。", "Please use at most {limit} characters."],
  "wrong-unit": ["単位は {unit} で入力してください。", "Please use the unit {unit}."],
  "invalid-group-instances": [
    "{link_id}: 繰り返しグループの回答は、回答の組のリストで渡してください。",
    "{link_id}: answers to a repeating group must be a list of answer sets.",
  ],
};

const EXPECTED = {
  boolean: ["「はい」か「いいえ」", "yes or no", "はい"],
  decimal: ["数値", "a number", "36.8"],
  integer: ["整数", "a whole number", "3"],
  date: ["日付", "a date", "2026-04-01"],
  dateTime: ["日時", "a date and time", "2026-04-01T09:30:00+09:00"],
  time: ["時刻", "a time", "09:30:00"],
  string: ["文字", "text", "ロキソニン"],
  text: ["文字", "text", "昨日から咳が出ます"],
  choice: ["選択肢", "one of the options", "-"],
  "open-choice": ["選択肢か文字", "an option or text", "-"],
  quantity: ["数値と単位", "an amount with its unit", "65 kg"],
  attachment: ["ファイル", "a file", "photo.jpg"],
};

function expected(type) {
  const [ja, en, example] = EXPECTED[type] ?? ["回答", "an answer", "-"];
  return { expected_ja: ja, expected_en: en, example };
}

// --- values ----------------------------------------------------------------------------------

class InvalidValue extends Error {
  constructor(code) {
    super(code);
    this.code = code;
  }
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const isNumber = (v) => typeof v === "number" && Number.isFinite(v);
export const isBlank = (s) => [...s].every((c) => WS_SET.has(c));
const isCode = (s) => typeof s === "string" && CODE_RE.test(s);
const isUri = (s) => typeof s === "string" && s !== "" && ![...s].some((c) => WS_SET.has(c));

function optionalText(v) {
  if (v === undefined || v === null) return null;
  if (typeof v !== "string") throw new InvalidValue("invalid-type");
  return isBlank(v) ? null : v;
}

function daysInMonth(year, month) {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function validDateParts(year, month, day) {
  if (Number(year) < 1) return false;
  if (month !== undefined && !(Number(month) >= 1 && Number(month) <= 12)) return false;
  if (day !== undefined) {
    const d = Number(day);
    if (d < 1 || d > daysInMonth(Number(year), Number(month))) return false;
  }
  return true;
}

export function isValidDate(text) {
  const m = DATE_RE.exec(text);
  return m !== null && validDateParts(m[1], m[2], m[3]);
}

export function isValidDateTime(text) {
  const m = DATETIME_RE.exec(text);
  return m !== null && validDateParts(m[1], m[2], m[3]);
}

export const isValidTime = (text) => TIME_RE.test(text);

function stringOf(check) {
  return (raw) => {
    if (typeof raw !== "string") throw new InvalidValue("invalid-type");
    if (!check(raw)) throw new InvalidValue("invalid-format");
    return raw;
  };
}

function number(raw) {
  if (!isNumber(raw)) throw new InvalidValue("invalid-type");
  return raw;
}

const PARSERS = {
  Boolean(raw) {
    if (typeof raw !== "boolean") throw new InvalidValue("invalid-type");
    return raw;
  },
  Decimal: number,
  Integer(raw) {
    if (!isNumber(raw) || !Number.isInteger(raw)) throw new InvalidValue("invalid-type");
    if (raw < INT32_MIN || raw > INT32_MAX) throw new InvalidValue("out-of-range");
    return raw;
  },
  Date: stringOf(isValidDate),
  DateTime: stringOf(isValidDateTime),
  Time: stringOf(isValidTime),
  String: stringOf((s) => !isBlank(s)),
  Uri: stringOf(isUri),
  Coding(raw) {
    if (!isObject(raw) || !isCode(raw.code)) throw new InvalidValue("invalid-type");
    const system = raw.system ?? null;
    if (system !== null && !isUri(system)) throw new InvalidValue("invalid-type");
    return { code: raw.code, system, display: optionalText(raw.display) };
  },
  Quantity(raw) {
    if (!isObject(raw)) throw new InvalidValue("invalid-type");
    const value = number(raw.value);
    const system = raw.system ?? null;
    const code = raw.code ?? null;
    if ((system !== null && !isUri(system)) || (code !== null && !isCode(code))) {
      throw new InvalidValue("invalid-type");
    }
    return { value, unit: optionalText(raw.unit), system, code };
  },
  Attachment(raw) {
    if (!isObject(raw) || !isCode(raw.contentType)) throw new InvalidValue("invalid-type");
    const url = raw.url ?? null;
    const size = raw.size ?? null;
    if (url !== null && !isUri(url)) throw new InvalidValue("invalid-type");
    if (size !== null && !(Number.isInteger(size) && size >= 0 && size <= 2 ** 32 - 1)) {
      throw new InvalidValue("invalid-type");
    }
    return { contentType: raw.contentType, url, title: optionalText(raw.title), size };
  },
  Reference(raw) {
    if (!isObject(raw) || optionalText(raw.reference) === null) {
      throw new InvalidValue("invalid-type");
    }
    return { reference: raw.reference, display: optionalText(raw.display) };
  },
};

export function parseValue(kind, raw) {
  return { kind, value: PARSERS[kind](raw) };
}

function typedFromFhir(element, prefix) {
  const found = [];
  for (const kind of KINDS) {
    if (Object.hasOwn(element, prefix + kind)) found.push(parseValue(kind, element[prefix + kind]));
  }
  return found;
}

function toJson(typed) {
  const v = typed.value;
  if (!isObject(v)) return v;
  const out = {};
  for (const [k, x] of Object.entries(v)) if (x !== null && x !== undefined) out[k] = x;
  return out;
}

const sign = (a, b) => (a > b ? 1 : a < b ? -1 : 0);

function compareCodePoints(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return Math.sign(d);
  }
  return sign(x.length, y.length);
}

function timeSeconds(text) {
  const [h, m, s] = text.split(":");
  return Number(h) * 3600 + Number(m) * 60 + Number(s);
}

// [seconds since the epoch, nanoseconds]: the fraction kept to the nanosecond, as the server does.
function instant(text) {
  if (!text.includes("T")) return null;
  const fraction = /\.([0-9]+)/.exec(text);
  const seconds = Date.parse(text.replace(/\.[0-9]+/, "")) / 1000;
  return [seconds, fraction ? Number((fraction[1] + "000000000").slice(0, 9)) : 0];
}

function compareText(kind, a, b) {
  if (kind === "Date" && a.length !== b.length) return null;
  if (kind === "DateTime") {
    const ia = instant(a);
    const ib = instant(b);
    if (ia === null && ib === null) return a.length === b.length ? compareCodePoints(a, b) : null;
    if (ia === null || ib === null) return null;
    return sign(ia[0], ib[0]) || sign(ia[1], ib[1]);
  }
  if (kind === "Time") return sign(timeSeconds(a), timeSeconds(b));
  return compareCodePoints(a, b);
}

const unitKey = (q) => (q.code !== null ? q.code : q.unit);

export function compare(left, right) {
  const a = left.value;
  const b = right.value;
  const numeric = ["Integer", "Decimal"];
  if (numeric.includes(left.kind) && numeric.includes(right.kind)) return sign(a, b);
  if (left.kind !== right.kind) return null;
  if (typeof a === "string" && typeof b === "string") return compareText(left.kind, a, b);
  if (left.kind === "Boolean") return a === b ? 0 : null;
  if (left.kind === "Quantity" && unitKey(a) === unitKey(b)) return sign(a.value, b.value);
  return null;
}

function codingMatches(a, b) {
  if (a.code !== b.code) return false;
  return a.system === null || b.system === null || a.system === b.system;
}

function sameObject(a, b) {
  return JSON.stringify(toJson({ value: a })) === JSON.stringify(toJson({ value: b }));
}

export function equal(left, right) {
  const a = left.value;
  const b = right.value;
  if (left.kind === "Coding" && right.kind === "Coding") return codingMatches(a, b);
  if (["Attachment", "Reference"].includes(left.kind) || ["Attachment", "Reference"].includes(right.kind)) {
    return left.kind === right.kind && sameObject(a, b);
  }
  return compare(left, right) === 0;
}

// --- definitions -----------------------------------------------------------------------------

function extensions(element) {
  return Array.isArray(element.extension) ? element.extension.filter(isObject) : [];
}

function single(element, prefix) {
  const values = typedFromFhir(element, prefix);
  return values.length === 1 ? values[0] : null;
}

const listOf = (value) => (Array.isArray(value) ? value.filter(isObject) : []);

function parseItem(raw) {
  const item = {
    linkId: raw.linkId,
    type: raw.type,
    text: raw.text ?? null,
    required: raw.required === true,
    repeats: raw.repeats === true,
    readOnly: raw.readOnly === true,
    maxLength: Number.isInteger(raw.maxLength) ? raw.maxLength : null,
    enableBehavior: raw.enableBehavior ?? null,
    enableWhen: listOf(raw.enableWhen).map((e) => ({
      question: e.question,
      operator: e.operator,
      answer: single(e, "answer"),
    })),
    answerOptions: listOf(raw.answerOption)
      .map((o) => ({ value: single(o, "value"), initialSelected: o.initialSelected === true }))
      .filter((o) => o.value !== null),
    initial: listOf(raw.initial).map((i) => single(i, "value")).filter((v) => v !== null),
    hidden: false,
    minValue: null,
    maxValue: null,
    unit: null,
    calculatedExpression: null,
    items: [],
  };
  for (const ext of extensions(raw)) {
    if (ext.url === EXT.hidden) item.hidden = ext.valueBoolean === true;
    else if (ext.url === EXT.minValue) item.minValue = single(ext, "value");
    else if (ext.url === EXT.maxValue) item.maxValue = single(ext, "value");
    else if (ext.url === EXT.unit && isObject(ext.valueCoding)) {
      item.unit = parseValue("Coding", ext.valueCoding).value;
    } else if (ext.url === EXT.calculated && isObject(ext.valueExpression)) {
      item.calculatedExpression = ext.valueExpression.expression ?? null;
    }
  }
  item.items = listOf(raw.item).map(parseItem);
  item.isQuestion = item.type !== "group" && item.type !== "display";
  item.isRepeatingGroup = item.type === "group" && item.repeats;
  item.hasCodedOptions = item.answerOptions.some((o) => o.value && o.value.kind === "Coding");
  item.answerKinds = answerKinds(item);
  return item;
}

function answerKinds(item) {
  if ((item.type === "choice" || item.type === "open-choice") && item.answerOptions.length) {
    const kinds = new Set(item.answerOptions.map((o) => o.value.kind));
    if (item.type === "open-choice") kinds.add("String");
    return kinds;
  }
  return new Set(KINDS_BY_TYPE[item.type] ?? []);
}

function parseOutcome(ext) {
  const outcome = { id: null, action: null, behavior: "any", ja: "", en: "", menu: null, conditions: [] };
  const names = { "message-ja": "ja", "message-en": "en" };
  for (const part of extensions(ext)) {
    if (part.url === "condition") {
      const sub = Object.fromEntries(extensions(part).map((p) => [p.url, p]));
      outcome.conditions.push({
        question: sub.question?.valueString,
        operator: sub.operator?.valueCode,
        answer: sub.answer ? single(sub.answer, "value") : null,
      });
    } else {
      const value = Object.entries(part).find(([k]) => k.startsWith("value"));
      if (value) outcome[names[part.url] ?? part.url] = value[1];
    }
  }
  return outcome;
}

/** A FHIR R4 Questionnaire (parsed JSON) → the definition `evaluate` takes. */
export function parseQuestionnaire(resource) {
  const items = listOf(resource.item).map(parseItem);
  const byLinkId = new Map();
  const parents = new Map();
  const visit = (item, parent) => {
    if (!byLinkId.has(item.linkId)) {
      byLinkId.set(item.linkId, item);
      parents.set(item.linkId, parent);
    }
    item.items.forEach((child) => visit(child, item.linkId));
  };
  items.forEach((item) => visit(item, null));
  const repeatingScope = new Map();
  for (const linkId of byLinkId.keys()) {
    const scope = [];
    for (let p = parents.get(linkId); p !== null && p !== undefined; p = parents.get(p)) {
      if (byLinkId.get(p).isRepeatingGroup) scope.unshift(p);
    }
    repeatingScope.set(linkId, scope);
  }
  const outcomes = extensions(resource).filter((e) => e.url === EXT.outcome).map(parseOutcome);
  return { items, byLinkId, repeatingScope, outcomes, url: resource.url, version: resource.version };
}

// --- conditions ------------------------------------------------------------------------------

function matches(operator, answer, expected) {
  if (operator === "=") return equal(answer, expected);
  if (operator === "!=") return !equal(answer, expected);
  const order = compare(answer, expected);
  if (order === null) return false;
  return { ">": order > 0, "<": order < 0, ">=": order >= 0, "<=": order <= 0 }[operator] ?? false;
}

export function conditionHolds(condition, answers) {
  const expected = condition.answer;
  if (expected === null || expected === undefined) return false;
  if (condition.operator === "exists") return answers.length > 0 === (expected.value === true);
  return answers.some((a) => matches(condition.operator, a, expected));
}

function present(raw) {
  if (raw === null || raw === undefined) return false;
  if (typeof raw === "string" && isBlank(raw)) return false;
  if (Array.isArray(raw)) return raw.some(present);
  return true;
}

function fixedValues(item) {
  if (!(item.hidden || item.readOnly)) return null;
  const values = [...item.initial, ...item.answerOptions.filter((o) => o.initialSelected).map((o) => o.value)];
  return values.length ? values : null;
}

const editable = (item) => fixedValues(item) === null && item.calculatedExpression === null;

function parseOne(item, raw) {
  if (typeof raw === "string" && (item.type === "choice" || item.type === "open-choice") && item.hasCodedOptions) {
    for (const option of item.answerOptions) {
      if (option.value.kind === "Coding" && option.value.value.code === raw) return option.value;
    }
  }
  const unit = item.type === "quantity" ? item.unit : null;
  if (unit !== null && isObject(raw) && (raw.code ?? null) === null && (raw.unit ?? null) === null) {
    raw = { ...raw, unit: unit.display ?? unit.code, code: unit.code };
    if (unit.system !== null) raw.system = unit.system;
  }
  let firstError = null;
  for (const kind of KIND_ORDER) {
    if (!item.answerKinds.has(kind)) continue;
    try {
      return parseValue(kind, raw);
    } catch (error) {
      if (!(error instanceof InvalidValue)) throw error;
      firstError = firstError ?? error.code;
    }
  }
  return firstError ?? "invalid-type";
}

function boundText(bound) {
  if (bound.kind === "Quantity") return `${bound.value.value} ${bound.value.unit ?? bound.value.code ?? ""}`.trim();
  return String(bound.value);
}

function violation(item, value) {
  if ((item.type === "choice" || item.type === "open-choice") && item.answerOptions.length) {
    const freeText = item.type === "open-choice" && value.kind === "String";
    if (!freeText && !item.answerOptions.some((o) => equal(value, o.value))) return ["not-an-option", {}];
  }
  const limit = item.type === "string" || item.type === "text" ? item.maxLength : null;
  if (limit !== null && typeof value.value === "string" && [...value.value].length > limit) {
    return ["too-long", { limit }];
  }
  const unit = item.type === "quantity" ? item.unit : null;
  if (unit !== null && value.kind === "Quantity" && unitKey(value.value) !== unit.code) {
    return ["wrong-unit", { unit: unit.display ?? unit.code }];
  }
  for (const [bound, code, bad] of [[item.minValue, "below-min", -1], [item.maxValue, "above-max", 1]]) {
    if (bound === null) continue;
    const order =
      value.kind === "Quantity" && (bound.kind === "Decimal" || bound.kind === "Integer")
        ? compare({ kind: "Decimal", value: value.value.value }, bound)
        : compare(value, bound);
    if (order === bad) return [code, { limit: boundText(bound) }];
  }
  return [null, {}];
}

function answerError(code, key, linkId, params = {}) {
  const values = { link_id: linkId, ...params };
  const [ja, en] = MESSAGES[code].map((t) => t.replace(/\{(\w+)\}/g, (_, name) => String(values[name])));
  return { key, linkId, code, ja, en };
}

// --- one evaluation ----------------------------------------------------------------------------

class Run {
  constructor(definition, answers) {
    this.d = definition;
    this.errors = [];
    this.nodes = [];
    this.byKey = new Map();
    this.byLinkId = new Map();
    this.roots = this.build(definition.items, answers, "", null, []);
    this.values = new Map();
    this.nodeErrors = new Map();
    this.computed = new Map();
    this.enabled = new Map();
    for (const node of this.nodes) {
      if (node.item.type !== "group" && !node.instance) this.values.set(node.key, this.parse(node));
    }
  }

  build(items, scope, prefix, parent, indices) {
    if (!isObject(scope)) return [];
    const allowed = new Set();
    const collect = (list) => {
      for (const item of list) {
        allowed.add(item.linkId);
        if (item.type === "group" && !item.repeats) collect(item.items);
      }
    };
    collect(items);
    for (const [linkId, raw] of Object.entries(scope)) {
      if (!allowed.has(linkId) && present(raw)) this.errors.push(answerError("unknown-item", prefix + linkId, linkId));
    }
    return this.buildItems(items, scope, prefix, parent, indices);
  }

  buildItems(items, scope, prefix, parent, indices) {
    const out = [];
    for (const item of items) {
      const key = prefix + item.linkId;
      if (this.byKey.has(key)) continue;
      const node = { key, item, parent, indices, raw: [], instance: false, children: [] };
      this.add(node);
      out.push(node);
      let raw = scope[item.linkId];
      if (item.isRepeatingGroup) {
        if (raw !== undefined && raw !== null && !(Array.isArray(raw) && raw.every(isObject))) {
          this.errors.push(answerError("invalid-group-instances", key, item.linkId));
          raw = [];
        }
        (raw ?? []).forEach((instanceAnswers, number) => {
          const instance = {
            key: `${key}[${number}]`, item, parent: node, indices: [...indices, number],
            raw: [], instance: true, children: [],
          };
          this.add(instance);
          node.children.push(instance);
          instance.children = this.build(item.items, instanceAnswers, `${instance.key}/`, instance, instance.indices);
        });
      } else if (item.type === "group") {
        if (present(raw)) this.errors.push(answerError("not-answerable", key, item.linkId));
        node.children = this.buildItems(item.items, scope, prefix, node, indices);
      } else {
        node.raw = (Array.isArray(raw) ? raw : [raw]).filter(present);
        if (item.items.length) node.children = this.buildItems(item.items, {}, prefix, node, indices);
      }
    }
    return out;
  }

  add(node) {
    node.position = this.nodes.length;
    this.nodes.push(node);
    this.byKey.set(node.key, node);
    if (!node.instance) {
      if (!this.byLinkId.has(node.item.linkId)) this.byLinkId.set(node.item.linkId, []);
      this.byLinkId.get(node.item.linkId).push(node);
    }
  }

  parse(node) {
    const item = node.item;
    if (item.type === "display") {
      if (node.raw.length) this.errors.push(answerError("not-answerable", node.key, item.linkId));
      return [];
    }
    if (!editable(item)) return fixedValues(item) ?? [];
    const errors = [];
    this.nodeErrors.set(node.key, errors);
    if (node.raw.length > 1 && !item.repeats) errors.push(answerError("not-repeating", node.key, item.linkId));
    const out = [];
    for (const raw of node.raw) {
      const value = parseOne(item, raw);
      if (typeof value === "string") {
        errors.push(answerError(value, node.key, item.linkId, expected(item.type)));
        continue;
      }
      const [code, params] = violation(item, value);
      if (code !== null) {
        errors.push(answerError(code, node.key, item.linkId, params));
        continue;
      }
      out.push(value);
    }
    return out;
  }

  visible(node) {
    if (!this.isEnabled(node)) return [];
    if (node.item.calculatedExpression !== null && fixedValues(node.item) === null) {
      const value = this.computed.get(node.key);
      return value === undefined ? [] : [value];
    }
    return this.values.get(node.key) ?? [];
  }

  isEnabled(node) {
    const known = this.enabled.get(node.key);
    if (known !== undefined) return known;
    this.enabled.set(node.key, false); // a cycle back to this node sees it disabled
    const result =
      (node.parent === null || this.isEnabled(node.parent)) && (node.instance || this.conditionsHold(node));
    this.enabled.set(node.key, result);
    return result;
  }

  conditionsHold(node) {
    const conditions = node.item.enableWhen;
    if (!conditions.length) return true;
    const holds = (c) => this.holds(c, this.sources(node, c.question));
    return node.item.enableBehavior === "any" ? conditions.some(holds) : conditions.every(holds);
  }

  sources(node, linkId) {
    const candidates = this.byLinkId.get(linkId) ?? [];
    if (node === null || !candidates.length) return candidates;
    const questionScope = this.d.repeatingScope.get(linkId) ?? [];
    const ownScope = this.d.repeatingScope.get(node.item.linkId) ?? [];
    let shared = 0;
    while (shared < Math.min(questionScope.length, ownScope.length) && questionScope[shared] === ownScope[shared]) {
      shared += 1;
    }
    return candidates.filter((c) => c.indices.slice(0, shared).every((v, i) => v === node.indices[i]));
  }

  holds(condition, sources) {
    return conditionHolds(condition, sources.flatMap((s) => this.visible(s)));
  }

  evaluation() {
    const calculated = this.nodes.filter((n) => n.item.calculatedExpression !== null && !n.instance);
    for (let round = 0; round <= calculated.length; round++) {
      this.enabled = new Map();
      this.nodes.forEach((n) => this.isEnabled(n));
      const computed = this.calculate(calculated);
      if (sameComputed(computed, this.computed)) break;
      this.computed = computed;
    }
    this.enabled = new Map();
    this.nodes.forEach((n) => this.isEnabled(n));
    return this.result();
  }

  calculate(calculated) {
    const out = new Map();
    if (!calculated.length) return out;
    const response = {
      resourceType: "QuestionnaireResponse",
      status: "in-progress",
      item: this.responseItems(this.effectiveAnswers()),
    };
    for (const node of calculated) {
      if (!this.enabled.get(node.key) || fixedValues(node.item) !== null) continue;
      let result;
      try {
        result = evaluateFhirPath(node.item.calculatedExpression, response);
      } catch {
        continue; // outside the subset or a runtime error: no value
      }
      const value = computedValue(node.item, result);
      if (value !== null) out.set(node.key, value);
    }
    return out;
  }

  effectiveAnswers() {
    const out = new Map();
    for (const node of this.nodes) {
      if (node.item.isQuestion && !node.instance && this.enabled.get(node.key)) {
        const values = this.visible(node);
        if (values.length) out.set(node.key, values);
      }
    }
    return out;
  }

  answered(node, answers) {
    if (node.item.isQuestion) return answers.has(node.key) || (this.nodeErrors.get(node.key) ?? []).length > 0;
    return node.children.some(
      (c) => this.enabled.get(c.key) && c.item.type !== "display" && this.answered(c, answers),
    );
  }

  fires(outcome) {
    if (!outcome.conditions.length) return false;
    const holds = (c) => this.holds(c, this.sources(null, c.question));
    return outcome.behavior === "all" ? outcome.conditions.every(holds) : outcome.conditions.some(holds);
  }

  result() {
    const answers = this.effectiveAnswers();
    for (const [key, errors] of this.nodeErrors) if (this.enabled.get(key)) this.errors.push(...errors);
    const on = (n) => this.enabled.get(n.key);
    const position = (key) => this.byKey.get(key)?.position ?? this.nodes.length;
    const errors = [...this.errors].sort((a, b) => position(a.key) - position(b.key));
    return {
      enabled: new Set(this.nodes.filter((n) => on(n) && !n.instance).map((n) => n.key)),
      answers,
      missing: this.nodes
        .filter((n) => n.item.required && n.item.type !== "display" && !n.instance && on(n) && !this.answered(n, answers))
        .map((n) => n.key),
      errors,
      computed: Object.fromEntries(
        [...this.computed].filter(([k]) => this.enabled.get(k)).map(([k, v]) => [k, v.value]),
      ),
      outcomes: this.d.outcomes
        .filter((o) => this.fires(o))
        .map(({ id, action, menu, ja, en }) => ({ id, action, menu, ja, en })),
      instances: Object.fromEntries(
        this.nodes.filter((n) => n.item.isRepeatingGroup && !n.instance && on(n)).map((n) => [n.key, n.children.length]),
      ),
      dropped: this.nodes.filter((n) => !on(n) && n.item.isQuestion && n.raw.length).map((n) => n.key),
    };
  }

  responseItems(answers, nodes = this.roots) {
    const out = [];
    const entry = (item, content) => ({ linkId: item.linkId, ...(item.text ? { text: item.text } : {}), ...content });
    for (const node of nodes) {
      const item = node.item;
      if (item.isRepeatingGroup) {
        for (const instance of node.children) {
          const children = this.responseItems(answers, instance.children);
          if (children.length) out.push(entry(item, { item: children }));
        }
      } else if (item.type === "group") {
        const children = this.responseItems(answers, node.children);
        if (children.length) out.push(entry(item, { item: children }));
      } else if (answers.has(node.key)) {
        out.push(entry(item, { answer: answers.get(node.key).map((v) => ({ [`value${v.kind}`]: toJson(v) })) }));
      }
    }
    return out;
  }
}

function sameComputed(a, b) {
  if (a.size !== b.size) return false;
  for (const [key, value] of a) {
    const other = b.get(key);
    if (other === undefined || other.kind !== value.kind || other.value !== value.value) return false;
  }
  return true;
}

function computedValue(item, result) {
  if (result.length !== 1) return null;
  const value = result[0];
  if (item.type === "decimal" && isNumber(value)) return { kind: "Decimal", value };
  if (item.type === "integer" && isNumber(value)) return Number.isInteger(value) ? { kind: "Integer", value } : null;
  if ((item.type === "string" || item.type === "text") && typeof value === "string" && value) {
    return { kind: "String", value };
  }
  if (item.type === "boolean" && typeof value === "boolean") return { kind: "Boolean", value };
  return null;
}

/**
 * Evaluates the answers so far. `definition` comes from parseQuestionnaire; answers are plain
 * JSON shaped by the repeating groups (see the top of this file).
 */
export function evaluate(definition, answers) {
  return new Run(definition, answers ?? {}).evaluation();
}

// --- FHIRPath subset -----------------------------------------------------------------------------

const TOKEN_RE =
  /\s*(?:(\d+(?:\.\d+)?)|'((?:[^'\\]|\\.)*)'|(%?[A-Za-z_][A-Za-z0-9_]*|\$this)|(<=|>=|!=|[-+*/&|<>=().,[\]{}]))/y;

function tokenize(text) {
  const tokens = [];
  TOKEN_RE.lastIndex = 0;
  let position = 0;
  while (position < text.length) {
    if (/^\s*$/.test(text.slice(position))) break;
    TOKEN_RE.lastIndex = position;
    const m = TOKEN_RE.exec(text);
    if (m === null) throw new Error(`FHIRPath: unexpected text at ${position}`);
    position = TOKEN_RE.lastIndex;
    if (m[1] !== undefined) tokens.push({ type: "number", value: Number(m[1]), decimal: m[1].includes(".") });
    else if (m[2] !== undefined) tokens.push({ type: "string", value: m[2].replace(/\\(.)/g, "$1") });
    else if (m[3] !== undefined) tokens.push({ type: "name", value: m[3] });
    else tokens.push({ type: "op", value: m[4] });
  }
  tokens.push({ type: "end" });
  return tokens;
}

const BINARY = [
  ["implies"],
  ["or", "xor"],
  ["and"],
  ["=", "!="],
  ["<", ">", "<=", ">="],
  ["|"],
  ["+", "-", "&"],
  ["*", "/", "div", "mod"],
];

class Parser {
  constructor(text) {
    this.tokens = tokenize(text);
    this.at = 0;
  }

  peek() {
    return this.tokens[this.at];
  }

  isOp(value) {
    const t = this.peek();
    return (t.type === "op" || t.type === "name") && t.value === value;
  }

  expect(value) {
    if (!this.isOp(value)) throw new Error(`FHIRPath: expected ${value}`);
    this.at += 1;
  }

  parse() {
    const node = this.binary(0);
    if (this.peek().type !== "end") throw new Error("FHIRPath: unexpected trailing text");
    return node;
  }

  binary(level) {
    if (level === BINARY.length) return this.unary();
    let left = this.binary(level + 1);
    for (;;) {
      const op = BINARY[level].find((o) => this.isOp(o));
      if (op === undefined) return left;
      this.at += 1;
      left = { type: "binary", op, left, right: this.binary(level + 1) };
    }
  }

  unary() {
    if (this.isOp("-") || this.isOp("+")) {
      const op = this.peek().value;
      this.at += 1;
      return { type: "unary", op, operand: this.unary() };
    }
    return this.postfix(this.term());
  }

  term() {
    const t = this.peek();
    this.at += 1;
    if (t.type === "number") return { type: "literal", value: [t.value] };
    if (t.type === "string") return { type: "literal", value: [t.value] };
    if (t.type === "op" && t.value === "(") {
      const inner = this.binary(0);
      this.expect(")");
      return inner;
    }
    if (t.type === "op" && t.value === "{") {
      this.expect("}");
      return { type: "literal", value: [] };
    }
    if (t.type === "name") {
      if (t.value === "true" || t.value === "false") return { type: "literal", value: [t.value === "true"] };
      if (t.value.startsWith("%")) return { type: "variable", name: t.value.slice(1) };
      if (t.value === "$this") return { type: "this" };
      if (this.isOp("(")) return this.call({ type: "this" }, t.value);
      return { type: "member", target: { type: "this" }, name: t.value };
    }
    throw new Error("FHIRPath: unexpected token");
  }

  call(target, name) {
    this.expect("(");
    const args = [];
    if (!this.isOp(")")) {
      args.push(this.binary(0));
      while (this.isOp(",")) {
        this.at += 1;
        args.push(this.binary(0));
      }
    }
    this.expect(")");
    return { type: "call", target, name, args };
  }

  postfix(node) {
    for (;;) {
      if (this.isOp(".")) {
        this.at += 1;
        const t = this.peek();
        if (t.type !== "name") throw new Error("FHIRPath: expected a name");
        this.at += 1;
        node = this.isOp("(") ? this.call(node, t.value) : { type: "member", target: node, name: t.value };
      } else if (this.isOp("[")) {
        this.at += 1;
        const index = this.binary(0);
        this.expect("]");
        node = { type: "index", target: node, index };
      } else {
        return node;
      }
    }
  }
}

function children(value, name) {
  if (!isObject(value)) return [];
  if (Object.hasOwn(value, name)) {
    const v = value[name];
    return Array.isArray(v) ? v : [v];
  }
  if (name === "value") {
    // value[x]: the one key valueSomething
    return Object.entries(value)
      .filter(([k]) => /^value[A-Z]/.test(k))
      .map(([, v]) => v);
  }
  return [];
}

function singleton(collection) {
  if (collection.length === 0) return undefined;
  if (collection.length > 1) throw new Error("FHIRPath: more than one value");
  return collection[0];
}

function singleNumber(collection) {
  const v = singleton(collection);
  if (v === undefined) return undefined;
  if (!isNumber(v)) throw new Error("FHIRPath: not a number");
  return v;
}

function deepEqual(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

function arithmetic(op, left, right) {
  if (op === "&") {
    const a = singleton(left) ?? "";
    const b = singleton(right) ?? "";
    if (typeof a !== "string" || typeof b !== "string") throw new Error("FHIRPath: & needs strings");
    return [a + b];
  }
  const x = singleton(left);
  const y = singleton(right);
  if (op === "+" && typeof x === "string" && typeof y === "string") return [x + y];
  const a = singleNumber(left);
  const b = singleNumber(right);
  if (a === undefined || b === undefined) return [];
  switch (op) {
    case "+":
      return [a + b];
    case "-":
      return [a - b];
    case "*":
      return [a * b];
    case "/":
      return b === 0 ? [] : [a / b];
    case "div":
      return b === 0 ? [] : [Math.trunc(a / b)];
    case "mod": // integers: the sign of the divisor (as Python); decimals: of the dividend
      if (b === 0) return [];
      return [Number.isInteger(a) && Number.isInteger(b) ? a - b * Math.floor(a / b) : a % b];
    default:
      throw new Error(`FHIRPath: ${op}`);
  }
}

function truth(collection) {
  const v = singleton(collection);
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") return true; // a single non-boolean value counts as true
  return v;
}

function logic(op, left, right) {
  const a = truth(left);
  const b = truth(right);
  const out = (v) => (v === undefined ? [] : [v]);
  if (op === "and") {
    if (a === false || b === false) return [false];
    return a === true && b === true ? [true] : [];
  }
  if (op === "or") {
    if (a === true || b === true) return [true];
    return a === false && b === false ? [false] : [];
  }
  if (op === "xor") return a === undefined || b === undefined ? [] : [a !== b];
  if (op === "implies") {
    if (a === false) return [true];
    if (a === true) return out(b);
    return b === true ? [true] : [];
  }
  throw new Error(`FHIRPath: ${op}`);
}

function comparison(op, left, right) {
  const a = singleton(left);
  const b = singleton(right);
  if (a === undefined || b === undefined) return [];
  if (op === "=") return [deepEqual(a, b)];
  if (op === "!=") return [!deepEqual(a, b)];
  if (typeof a !== typeof b || (typeof a !== "number" && typeof a !== "string")) {
    throw new Error("FHIRPath: cannot compare");
  }
  const order = typeof a === "string" ? compareCodePoints(a, b) : sign(a, b);
  return [{ "<": order < 0, ">": order > 0, "<=": order <= 0, ">=": order >= 0 }[op]];
}

// round(n) as fhirpathpy does it: half to even on the decimal value. Doubles only approximate the
// decimal, so the scaled value is first cut to 15 significant digits.
function roundTo(value, digits) {
  const factor = 10 ** digits;
  const scaled = Number((value * factor).toPrecision(15));
  const floor = Math.floor(scaled);
  const rest = scaled - floor;
  const rounded = rest > 0.5 || (rest === 0.5 && floor % 2 !== 0) ? floor + 1 : floor;
  return rounded / factor;
}

const NUMBER_FUNCTIONS = {
  sqrt: (x) => (x < 0 ? undefined : Math.sqrt(x)),
  abs: Math.abs,
  floor: Math.floor,
  ceiling: Math.ceil,
};

function call(node, input, env) {
  const arg = (i, focus) => evalNode(node.args[i], focus, env);
  switch (node.name) {
    case "where":
      return input.filter((item) => truth(arg(0, [item])) === true);
    case "select":
      return input.flatMap((item) => arg(0, [item]));
    case "repeat": {
      const out = [];
      let frontier = input;
      while (frontier.length) {
        frontier = frontier.flatMap((item) => arg(0, [item]));
        out.push(...frontier);
      }
      return out;
    }
    case "exists":
      return [node.args.length ? input.some((item) => truth(arg(0, [item])) === true) : input.length > 0];
    case "empty":
      return [input.length === 0];
    case "count":
      return [input.length];
    case "first":
      return input.slice(0, 1);
    case "last":
      return input.slice(-1);
    case "not": {
      const v = truth(input);
      return v === undefined ? [] : [!v];
    }
    case "iif": {
      const condition = truth(arg(0, input));
      if (condition === true) return arg(1, input);
      return node.args.length > 2 ? arg(2, input) : [];
    }
    case "sum": {
      if (!input.length) return [0];
      if (!input.every(isNumber)) throw new Error("FHIRPath: sum of non-numbers");
      return [input.reduce((a, b) => a + b, 0)];
    }
    case "round": {
      if (node.args.length !== 1) throw new Error("FHIRPath: round() takes the number of decimals");
      const x = singleNumber(input);
      const digits = singleNumber(arg(0, input));
      return x === undefined || digits === undefined ? [] : [roundTo(x, digits)];
    }
    case "power": {
      const x = singleNumber(input);
      const y = singleNumber(arg(0, input));
      if (x === undefined || y === undefined || x < 0 || !Number.isInteger(y)) return [];
      const result = x ** y;
      return Number.isFinite(result) ? [result] : [];
    }
    default: {
      const fn = NUMBER_FUNCTIONS[node.name];
      if (fn === undefined) throw new Error(`FHIRPath: ${node.name}() is outside the supported subset`);
      const x = singleNumber(input);
      if (x === undefined) return [];
      const result = fn(x);
      return result === undefined ? [] : [result];
    }
  }
}

function evalNode(node, focus, env) {
  switch (node.type) {
    case "literal":
      return node.value;
    case "this":
      return focus;
    case "variable":
      if (!Object.hasOwn(env, node.name)) throw new Error(`FHIRPath: unknown %${node.name}`);
      return [env[node.name]];
    case "member":
      return evalNode(node.target, focus, env).flatMap((v) => children(v, node.name));
    case "index": {
      const index = singleNumber(evalNode(node.index, focus, env));
      const target = evalNode(node.target, focus, env);
      return index === undefined || target[index] === undefined ? [] : [target[index]];
    }
    case "call":
      return call(node, evalNode(node.target, focus, env), env);
    case "unary": {
      const v = singleNumber(evalNode(node.operand, focus, env));
      if (v === undefined) return [];
      return [node.op === "-" ? -v : v];
    }
    case "binary": {
      const left = evalNode(node.left, focus, env);
      const right = evalNode(node.right, focus, env);
      if (["+", "-", "*", "/", "div", "mod", "&"].includes(node.op)) return arithmetic(node.op, left, right);
      if (["and", "or", "xor", "implies"].includes(node.op)) return logic(node.op, left, right);
      if (node.op === "|") {
        const out = [...left];
        for (const v of right) if (!out.some((x) => deepEqual(x, v))) out.push(v);
        return out;
      }
      return comparison(node.op, left, right);
    }
    default:
      throw new Error("FHIRPath: unknown node");
  }
}

const compiled = new Map();

/** Evaluates a FHIRPath expression of the supported subset over a QuestionnaireResponse. */
export function evaluateFhirPath(expression, response) {
  let tree = compiled.get(expression);
  if (tree === undefined) {
    tree = new Parser(expression).parse();
    compiled.set(expression, tree);
  }
  return evalNode(tree, [response], { resource: response, context: response });
}
