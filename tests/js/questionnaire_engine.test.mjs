// The browser evaluator against the shared vectors (interview_forms/vectors/*.json).
// Run: node --test tests/js/
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import {
  evaluate,
  evaluateFhirPath,
  isBlank,
  isValidDate,
  isValidDateTime,
  parseQuestionnaire,
} from "../../patient_portal/static/js/questionnaire_engine.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const VECTORS = join(ROOT, "interview_forms", "vectors");

// Python sorts strings by code point; so do we.
function byCodePoint(a, b) {
  const x = [...a].map((c) => c.codePointAt(0));
  const y = [...b].map((c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}
const sorted = (list) => [...list].sort(byCodePoint);
const sortedPairs = (pairs) => [...pairs].sort((p, q) => byCodePoint(p[0], q[0]) || byCodePoint(p[1], q[1]));

function assertComputed(actual, expected) {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort());
  for (const [key, value] of Object.entries(expected)) {
    const got = actual[key];
    if (typeof value === "number") {
      assert.ok(Math.abs(got - value) <= Math.max(1e-12, 1e-9 * Math.abs(value)), `${key}: ${got} vs ${value}`);
    } else {
      assert.deepEqual(got, value);
    }
  }
}

const files = readdirSync(VECTORS).filter((f) => f.endsWith(".json")).sort();
let count = 0;

for (const file of files) {
  const document = JSON.parse(readFileSync(join(VECTORS, file), "utf8"));
  const definition = parseQuestionnaire(document.questionnaire);
  for (const vector of document.cases) {
    count += 1;
    test(`${file.replace(".json", "")}: ${vector.name}`, () => {
      const result = evaluate(definition, vector.answers);
      const expected = vector.expected;
      assert.deepEqual(sorted(result.enabled), expected.enabled);
      assert.deepEqual(sorted(result.missing), expected.missing);
      assert.deepEqual(sortedPairs(result.errors.map((e) => [e.key, e.code])), expected.errors);
      assertComputed(result.computed, expected.computed);
      assert.deepEqual(result.outcomes.map((o) => o.id), expected.outcomes);
      assert.deepEqual(sorted(result.dropped), expected.dropped);
      for (const error of result.errors) assert.ok(error.ja && error.en, `${error.code} has both texts`);
    });
  }
}

test("there are at least 60 shared vectors", () => {
  assert.ok(count >= 60, `only ${count} vectors`);
});

test("FHIRPath subset: arithmetic, where, round, power, empty operands", () => {
  const qr = {
    resourceType: "QuestionnaireResponse",
    item: [
      { linkId: "w", answer: [{ valueDecimal: 70 }] },
      { linkId: "h", answer: [{ valueDecimal: 170 }] },
      { linkId: "g", item: [{ linkId: "n", answer: [{ valueInteger: 3 }] }] },
    ],
  };
  const bmi = "(%resource.item.where(linkId='w').answer.value / (%resource.item.where(linkId='h').answer.value / 100).power(2)).round(1)";
  assert.deepEqual(evaluateFhirPath(bmi, qr), [24.2]);
  assert.deepEqual(evaluateFhirPath("%resource.repeat(item).where(linkId='n').answer.value * 2 + 1", qr), [7]);
  assert.deepEqual(evaluateFhirPath("%resource.item.where(linkId='zz').answer.value + 1", qr), []);
  assert.deepEqual(evaluateFhirPath("%resource.item.where(linkId='w').answer.value / 0", qr), []);
  assert.deepEqual(evaluateFhirPath("7 div 2", qr), [3]);
  assert.deepEqual(evaluateFhirPath("iif(%resource.item.count() > 2, 'many', 'few')", qr), ["many"]);
  assert.deepEqual(evaluateFhirPath("%resource.item.where(linkId='w').exists() and true", qr), [true]);
  assert.throws(() => evaluateFhirPath("1 + + (", qr));
  assert.throws(() => evaluateFhirPath("%resource.item.unknownFunction()", qr));
});

test("formats: blank strings, dates", () => {
  assert.ok(isBlank("\u3000 \t"));
  assert.ok(!isBlank("山田\u3000太郎"));
  assert.ok(isValidDate("2024-02-29"));
  assert.ok(!isValidDate("2023-02-29"));
  assert.ok(!isValidDate("0000"));
  assert.ok(isValidDateTime("2026-04-01T10:00:00.5+09:00"));
  assert.ok(!isValidDateTime("2026-04-01T10:00:60Z"));
});
