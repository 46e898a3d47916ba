"""The doctor's view of a completed questionnaire (pure): readable answers and an S-note text.

:func:`summarize` takes a definition and the patient's answers (the engine's answer shape, e.g.
:func:`interview_forms.engine.answers_from_response` of the stored QuestionnaireResponse) and gives

* the answers grouped as the questionnaire groups them — each top-level group is one block,
  loose questions between groups form their own — with the question text and a readable answer
  (an option's display text, the unit, はい/いいえ …); disabled and unanswered items are left out;
* **red flags**: answers that made an outcome fire (the condition's question, where the condition
  holds) and answers to items the author marked with the :data:`RED_FLAG` extension
  (``{"url": RED_FLAG, "valueBoolean": true}`` on the item: any answer but "no" is a red flag);
* **changes** since the patient's previous completed response to the same questionnaire key
  (compared by item key and readable answer, so a new version of the form still compares);
* a concise Japanese text for the subjective (S) part of a SOAP note, one ``label: answer`` line
  per answered item in document order — consecutive plain "no" answers joined on one line as
  ``label(-)``, the pertinent negatives — red flags and changes called out (English too).
  A label is the item's :data:`SUMMARY_LABEL` extension (e.g. 主訴) if it has one, else its text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from .definition import Item, Outcome, Questionnaire
from .engine import Evaluation, condition_holds, evaluate
from .values import JSON, Attachment, Coding, Kind, Quantity, Reference, TypedValue

RED_FLAG: Final = "https://tsunagu.dev/fhir/StructureDefinition/red-flag"
SUMMARY_LABEL: Final = "https://tsunagu.dev/fhir/StructureDefinition/summary-label"
TRANSLATION: Final = "http://hl7.org/fhir/StructureDefinition/translation"
_YES_NO: Final = {"ja": ("はい", "いいえ"), "en": ("Yes", "No")}
_PHOTO: Final = {"ja": "写真", "en": "Photo"}
_SEPARATOR: Final = {"ja": "、", "en": ", "}


@dataclass(frozen=True, slots=True)
class Line:
    """One answered question (or, with ``heading``, the title of a nested group or instance)."""

    key: str
    label: str
    answer: str
    depth: int = 0
    heading: bool = False
    red_flag: bool = False
    changed: bool = False
    previous: str | None = None  # the previous response's answer, when it changed
    negative: bool = False  # a plain "no" (boolean false): written "label(-)" in the S text


@dataclass(frozen=True, slots=True)
class Block:
    title: str  # the group's text; "" for loose questions
    lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class Flag:
    """A fired outcome: what it means, and the answers that fired it."""

    outcome_id: str
    action: str
    message_ja: str
    message_en: str
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Summary:
    title: str
    blocks: tuple[Block, ...]
    flags: tuple[Flag, ...]
    has_previous: bool
    removed: tuple[Line, ...]  # answered last time, not this time
    text_ja: str
    text_en: str
    locale: str = "ja"
    red_keys: frozenset[str] = field(default_factory=frozenset)

    @property
    def lines(self) -> tuple[Line, ...]:
        return tuple(line for block in self.blocks for line in block.lines if not line.heading)

    @property
    def changed(self) -> tuple[Line, ...]:
        return tuple(line for line in self.lines if line.changed)

    def text(self, locale: str) -> str:
        return self.text_en if locale == "en" else self.text_ja


def summarize(
    questionnaire: Questionnaire,
    answers: Mapping[str, JSON],
    *,
    previous: tuple[Questionnaire, Mapping[str, JSON]] | None = None,
    locale: str = "ja",
    heading: str = "",
) -> Summary:
    """The doctor's view model; ``previous``: the definition and answers of the last response.

    ``locale`` chooses the language of the readable answers in ``blocks`` (labels are the
    questionnaire's own text, translated when it carries FHIR translation extensions);
    ``heading`` is put first in the S text (e.g. the form's title and when it was answered).
    """
    evaluation = evaluate(questionnaire, answers)
    red = _red_keys(questionnaire, evaluation)
    before: dict[str, str] = {}
    before_lines: list[Line] = []
    if previous is not None:
        old_q, old_answers = previous
        old = _Walker(old_q, evaluate(old_q, old_answers), frozenset(), locale)
        for block in old.blocks({}):
            before_lines += [line for line in block.lines if not line.heading]
        before = {line.key: line.answer for line in before_lines}
    walker = _Walker(questionnaire, evaluation, red, locale)
    blocks = walker.blocks(before if previous is not None else None)
    current = {line.key for block in blocks for line in block.lines}
    removed = tuple(line for line in before_lines if line.key not in current)
    flags = tuple(_flag(o, questionnaire, evaluation) for o in evaluation.outcomes)
    texts = {
        lang: _s_text(
            questionnaire, evaluation, red, flags, previous, before, removed, lang, heading
        )
        for lang in ("ja", "en")
    }
    return Summary(
        title=questionnaire.title or "",
        blocks=blocks,
        flags=flags,
        has_previous=previous is not None,
        removed=removed,
        text_ja=texts["ja"],
        text_en=texts["en"],
        locale=locale,
        red_keys=red,
    )


# --- walking the answered items ------------------------------------------------------------------


class _Walker:
    def __init__(
        self, q: Questionnaire, evaluation: Evaluation, red: frozenset[str], locale: str
    ) -> None:
        self.q, self.evaluation, self.red, self.locale = q, evaluation, red, locale

    def blocks(self, before: dict[str, str] | None) -> tuple[Block, ...]:
        out: list[Block] = []
        loose: list[Line] = []
        for item in self.q.items:
            if item.type == "group" and not item.repeats:
                if loose:
                    out.append(Block("", tuple(loose)))
                    loose = []
                lines = list(self.lines(item.items, "", 0, before))
                if lines:
                    out.append(Block(label_of(item, self.locale), tuple(lines)))
            else:
                loose += self.lines((item,), "", 0, before)
        if loose:
            out.append(Block("", tuple(loose)))
        return tuple(out)

    def lines(
        self, items: tuple[Item, ...], prefix: str, depth: int, before: dict[str, str] | None
    ) -> Iterator[Line]:
        for item in items:
            key = prefix + item.link_id
            if not self.evaluation.is_enabled(key) or item.type == "display":
                continue
            if item.hidden and item.calculated_expression is None:
                continue  # fixed by the definition, not something the patient said
            if item.is_repeating_group:
                count = self.evaluation.instances.get(key, 0)
                for number in range(count):
                    children = list(self.lines(item.items, f"{key}[{number}]/", depth + 1, before))
                    if children:
                        title = f"{label_of(item, self.locale)} {number + 1}"
                        yield Line(f"{key}[{number}]", title, "", depth, heading=True)
                        yield from children
            elif item.type == "group":
                children = list(self.lines(item.items, prefix, depth + 1, before))
                if children:
                    yield Line(key, label_of(item, self.locale), "", depth, heading=True)
                    yield from children
            else:
                values = self.evaluation.answers.get(key, ())
                if not values:
                    continue
                answer = readable(item, values, self.locale)
                changed = before is not None and before.get(key) != answer
                yield Line(
                    key,
                    label_of(item, self.locale),
                    answer,
                    depth,
                    red_flag=key in self.red,
                    negative=all(v.value is False for v in values),
                    changed=changed,
                    previous=before.get(key) if changed and before is not None else None,
                )


def label_of(item: Item, locale: str = "ja") -> str:
    """What the item is called: its summary label, else its (translated) text, else linkId."""
    for extension in _extensions(item):
        if extension.get("url") == SUMMARY_LABEL and isinstance(extension.get("valueString"), str):
            return str(extension["valueString"])
    text = _translated(item, locale) or item.link_id
    return text.rstrip("?？:：").strip()


def _translated(item: Item, locale: str) -> str:
    if locale == "ja" or item.text is None:
        return item.text or ""
    try:
        entries = json.loads(item.extra).get("_text", {}).get("extension", [])
    except (ValueError, AttributeError):
        return item.text
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("url") != TRANSLATION:
            continue
        parts = {p.get("url"): p for p in entry.get("extension", []) if isinstance(p, dict)}
        lang = parts.get("lang", {}).get("valueCode")
        content = parts.get("content", {}).get("valueString")
        if isinstance(lang, str) and lang.split("-")[0] == locale and isinstance(content, str):
            return content
    return item.text


def _extensions(item: Item) -> list[dict[str, JSON]]:
    try:
        found = json.loads(item.other_extensions)
    except ValueError:
        return []
    return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []


# --- readable values -----------------------------------------------------------------------------


def readable(item: Item, values: tuple[TypedValue, ...], locale: str = "ja") -> str:
    """The answers of one item as a person reads them, joined."""
    lang = "en" if locale == "en" else "ja"
    return _SEPARATOR[lang].join(_one(item, v, lang) for v in values)


def _one(item: Item, value: TypedValue, lang: str) -> str:
    raw = value.value
    if isinstance(raw, bool):
        return _YES_NO[lang][0 if raw else 1]
    if isinstance(raw, Coding):
        return raw.display or _option_display(item, raw) or raw.code
    if isinstance(raw, Quantity):
        unit = raw.unit or raw.code or ""
        return f"{_number(raw.value)} {unit}".strip()
    if isinstance(raw, Attachment):
        name = raw.title or raw.content_type
        return f"{_PHOTO[lang]}（{name}）" if lang == "ja" else f"{_PHOTO[lang]} ({name})"
    if isinstance(raw, Reference):
        return raw.display or raw.reference
    if isinstance(raw, int | float) and value.kind in (Kind.DECIMAL, Kind.INTEGER):
        number = _number(round(raw, 1) if item.calculated_expression else raw)
        unit = (item.unit.display or item.unit.code) if item.unit is not None else ""
        return f"{number} {unit}".strip()
    return str(raw)


def _option_display(item: Item, coding: Coding) -> str | None:
    for option in item.answer_options:
        known = option.value.value
        if isinstance(known, Coding) and known.matches(coding) and known.display:
            return known.display
    return None


def _number(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- red flags -----------------------------------------------------------------------------------


def _instances_of(evaluation: Evaluation, link_id: str) -> list[str]:
    """Keys of the answered instances of ``link_id`` (``x`` or ``…/x``)."""
    return [k for k in evaluation.answers if k == link_id or k.endswith("/" + link_id)]


def _red_keys(q: Questionnaire, evaluation: Evaluation) -> frozenset[str]:
    red: set[str] = set()
    for outcome in evaluation.outcomes:
        red.update(_outcome_keys(outcome, evaluation))
    for item in q.walk():
        if any(
            e.get("url") == RED_FLAG and e.get("valueBoolean") is True for e in _extensions(item)
        ):
            for key in _instances_of(evaluation, item.link_id):
                if any(v.value is not False for v in evaluation.answers[key]):
                    red.add(key)
    return frozenset(red)


def _outcome_keys(outcome: Outcome, evaluation: Evaluation) -> list[str]:
    keys = []
    for condition in outcome.conditions:
        for key in _instances_of(evaluation, condition.question):
            if condition_holds(condition, list(evaluation.answers[key])):
                keys.append(key)
    return keys


def _flag(outcome: Outcome, q: Questionnaire, evaluation: Evaluation) -> Flag:
    keys = tuple(_outcome_keys(outcome, evaluation))
    return Flag(outcome.id, outcome.action, outcome.message_ja, outcome.message_en, keys)


# --- the S text ----------------------------------------------------------------------------------

_WORDS: Final = {
    "ja": {
        "flag": "【注意】",
        "changed": "前回から変更",
        "removed": "前回あり・今回なし",
        "previous": "前回",
        "none": "回答なし",
        "colon": ": ",
    },
    "en": {
        "flag": "[Alert] ",
        "changed": "Changed since last time",
        "removed": "Reported last time, not now",
        "previous": "was",
        "none": "No answers",
        "colon": ": ",
    },
}


def _s_text(
    q: Questionnaire,
    evaluation: Evaluation,
    red: frozenset[str],
    flags: tuple[Flag, ...],
    previous: tuple[Questionnaire, Mapping[str, JSON]] | None,
    before: dict[str, str],
    removed: tuple[Line, ...],
    lang: str,
    heading: str,
) -> str:
    words = _WORDS[lang]
    walker = _Walker(q, evaluation, red, lang)
    lines: list[str] = [heading] if heading else []
    for flag in flags:
        message = flag.message_en if lang == "en" else flag.message_ja
        lines.append(words["flag"] + (message or flag.outcome_id))
    answered = 0
    changes: list[str] = []
    old = before if previous is not None else None
    negatives: list[str] = []  # consecutive plain "no" answers, written on one line

    def flush() -> None:
        if negatives:
            lines.append(("、" if lang == "ja" else ", ").join(f"{n}(-)" for n in negatives))
            negatives.clear()

    for block in walker.blocks(old):
        for line in block.lines:
            if line.heading:
                flush()
                lines.append(f"〔{line.label}〕" if lang == "ja" else f"[{line.label}]")
                continue
            answered += 1
            if line.negative and not line.red_flag and not line.changed:
                negatives.append(line.label)
                continue
            flush()
            mark = "⚠ " if line.red_flag else ""
            lines.append(f"{mark}{line.label}{words['colon']}{line.answer}")
            if line.changed:
                was = line.previous if line.previous is not None else "—"
                changes.append(
                    f"{line.label}（{was}→{line.answer}）"
                    if lang == "ja"
                    else f"{line.label} ({was} → {line.answer})"
                )
        flush()
    if answered == 0:
        lines.append(words["none"])
    if changes:
        separator = "、" if lang == "ja" else "; "
        lines.append(f"{words['changed']}: {separator.join(changes)}")
    if removed:
        separator = "、" if lang == "ja" else "; "
        gone = separator.join(
            f"{line.label}（{line.answer}）" if lang == "ja" else f"{line.label} ({line.answer})"
            for line in removed
        )
        lines.append(f"{words['removed']}: {gone}")
    return "\n".join(lines)
