// Reads [{questionnaire, answers}] as JSON on stdin, writes the browser evaluator's verdicts as
// JSON on stdout. Used by tests/unit/interview_forms/test_js_parity.py (random cases, Python vs JS).
import { readFileSync } from "node:fs";

import { evaluate, parseQuestionnaire } from "../../patient_portal/static/js/questionnaire_engine.js";

const cases = JSON.parse(readFileSync(0, "utf8"));
const out = cases.map(({ questionnaire, answers }) => {
  const result = evaluate(parseQuestionnaire(questionnaire), answers);
  return {
    enabled: [...result.enabled],
    missing: result.missing,
    errors: result.errors.map((e) => [e.key, e.code, e.ja, e.en]),
    computed: result.computed,
    outcomes: result.outcomes.map((o) => o.id),
    dropped: result.dropped,
  };
});
process.stdout.write(JSON.stringify(out));
