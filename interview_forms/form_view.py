"""The patient's form, pure: sections, widgets, and HTML form fields ⇄ engine answers.

A questionnaire is shown one **section** per screen: each top-level group is a section, and
top-level questions between groups are gathered into one. Every item of a section is rendered,
the disabled ones with ``hidden`` (the browser evaluator shows them the moment they apply; without
JavaScript the server shows the section again when an answer enabled more questions in it).

Form fields are named ``a:<key>`` where ``<key>`` is the engine's item key (``smoker``,
``meds[0]/dose``). A field's strings become FHIR JSON values by the item's type; a string that
does not parse is passed on unchanged so that the engine reports it as invalid, in the patient's
language, rather than being lost.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .definition import Item, Questionnaire
from .engine import Evaluation
from .values import JSON, Coding

PREFIX: Final = "a:"
TRANSLATION: Final = "http://hl7.org/fhir/StructureDefinition/translation"
_INTEGER = re.compile(r"^[+-]?\d{1,10}$")
_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_FULLWIDTH = str.maketrans("０１２３４５６７８９．－＋", "0123456789.-+")


@dataclass(frozen=True, slots=True)
class Section:
    index: int
    items: tuple[Item, ...]
    title: str | None  # the group's text (None for loose questions)
    link_id: str | None  # the group's linkId


def sections(questionnaire: Questionnaire) -> list[Section]:
    """Top-level groups one by one; loose top-level items gathered between them."""
    out: list[Section] = []
    loose: list[Item] = []

    def flush() -> None:
        if loose:
            out.append(Section(len(out), tuple(loose), None, None))
            loose.clear()

    for item in questionnaire.items:
        if item.type == "group" and not item.repeats:
            flush()
            out.append(Section(len(out), item.items, item.text, item.link_id))
        else:
            loose.append(item)
    flush()
    return out


def translated(text: str | None, extra: str, element: str, locale: str) -> str:
    """``text`` in ``locale`` when the definition carries a FHIR translation extension for it."""
    if text is None:
        return ""
    if locale == "ja":
        return text
    try:
        extension = json.loads(extra).get(f"_{element}", {}).get("extension", [])
    except (ValueError, AttributeError):
        return text
    for entry in extension if isinstance(extension, list) else []:
        if not isinstance(entry, dict) or entry.get("url") != TRANSLATION:
            continue
        parts = {p.get("url"): p for p in entry.get("extension", []) if isinstance(p, dict)}
        lang = parts.get("lang", {}).get("valueCode")
        content = parts.get("content", {}).get("valueString")
        if isinstance(lang, str) and lang.split("-")[0] == locale and isinstance(content, str):
            return content
    return text


def item_text(item: Item, locale: str) -> str:
    return translated(item.text, item.extra, "text", locale)


# --- widgets -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Choice:
    value: str  # what the form posts
    label: str
    selected: bool


@dataclass(slots=True)
class Field:
    """One item instance as the template draws it."""

    key: str
    item: Item
    widget: str  # display | group | repeating | boolean | number | date | datetime | time | …
    label: str
    enabled: bool
    required: bool
    values: list[str] = field(default_factory=list)  # current values as form strings
    choices: list[Choice] = field(default_factory=list)
    other: str = ""  # open-choice: the free text
    unit: str = ""
    step: str = ""
    minimum: str = ""
    maximum: str = ""
    errors: list[str] = field(default_factory=list)
    children: list[Field] = field(default_factory=list)
    instances: list[list[Field]] = field(default_factory=list)  # a repeating group's
    computed: str = ""

    @property
    def name(self) -> str:
        return PREFIX + self.key

    @property
    def value(self) -> str:
        return self.values[0] if self.values else ""


def _widget(item: Item) -> str:
    if item.type == "group":
        return "repeating" if item.repeats else "group"
    if item.calculated_expression:
        return "computed"
    return {
        "display": "display",
        "boolean": "boolean",
        "integer": "number",
        "decimal": "number",
        "date": "date",
        "dateTime": "datetime",
        "time": "time",
        "string": "string",
        "text": "text",
        "quantity": "quantity",
        "attachment": "attachment",
    }.get(item.type, _choice_widget(item))


def _choice_widget(item: Item) -> str:
    if item.type not in ("choice", "open-choice"):
        return "string"
    if item.item_control == "drop-down" and not item.repeats:
        return "select"
    return "checkboxes" if item.repeats else "radios"


def option_value(value: Any) -> str:
    """The form string of an answer option or answer (a coding posts its code)."""
    if isinstance(value, Coding):
        return value.code
    if isinstance(value, dict):
        return str(value.get("code", value.get("value", "")))
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _option_label(value: Any, locale: str) -> str:
    if isinstance(value, Coding):
        return (value.display_in(locale) if locale != "ja" else value.display) or value.code
    return str(value)


def _form_strings(raw: JSON, item: Item) -> list[str]:
    values = raw if isinstance(raw, list) else [raw]
    out = []
    for value in values:
        if value is None or value == "":
            continue
        if item.type == "time" and isinstance(value, str) and len(value) >= 5:
            out.append(value[:5])
        elif item.type == "dateTime" and isinstance(value, str) and len(value) >= 16:
            out.append(value[:16])
        elif item.type == "quantity" and isinstance(value, dict):
            out.append(option_value(value.get("value")))
        elif item.type == "attachment" and isinstance(value, dict):
            out.append(str(value.get("title") or value.get("url") or ""))
        else:
            out.append(option_value(value))
    return out


def build_fields(
    questionnaire: Questionnaire,
    section: Section,
    answers: Mapping[str, JSON],
    evaluation: Evaluation,
    locale: str,
    error_text: Mapping[str, list[str]] | None = None,
) -> list[Field]:
    """The fields of ``section``, with values from ``answers`` (the engine's answer shape)."""
    errors = error_text or {}
    return _fields(section.items, answers, "", evaluation, locale, errors)


def _fields(
    items: Sequence[Item],
    scope: Mapping[str, JSON],
    prefix: str,
    evaluation: Evaluation,
    locale: str,
    errors: Mapping[str, list[str]],
) -> list[Field]:
    out = []
    for item in items:
        if item.hidden:
            continue
        key = prefix + item.link_id
        widget = _widget(item)
        view = Field(
            key=key,
            item=item,
            widget=widget,
            label=item_text(item, locale),
            enabled=evaluation.is_enabled(key),
            required=item.required,
            errors=list(errors.get(key, [])),
        )
        if widget == "repeating":
            raw = scope.get(item.link_id)
            instances = [i for i in raw if isinstance(i, Mapping)] if isinstance(raw, list) else []
            for number, instance in enumerate(instances or [{}]):
                view.instances.append(
                    _fields(item.items, instance, f"{key}[{number}]/", evaluation, locale, errors)
                )
        elif widget == "group":
            view.children = _fields(item.items, scope, prefix, evaluation, locale, errors)
        elif widget != "display":
            _fill(view, item, scope.get(item.link_id), evaluation, locale)
        out.append(view)
    return out


def _fill(view: Field, item: Item, raw: JSON, evaluation: Evaluation, locale: str) -> None:
    view.values = _form_strings(raw, item)
    if item.type in ("choice", "open-choice"):
        known = {option_value(o.value.value) for o in item.answer_options}
        chosen = set(view.values) or {
            option_value(o.value.value) for o in item.answer_options if o.initial_selected
        }
        view.choices = [
            Choice(
                option_value(o.value.value),
                _option_label(o.value.value, locale),
                option_value(o.value.value) in chosen,
            )
            for o in item.answer_options
        ]
        if item.type == "open-choice":
            view.other = next((v for v in view.values if v not in known), "")
    if item.unit is not None:
        view.unit = item.unit.display or item.unit.code
    if item.type == "integer":
        view.step = "1"
    elif item.type in ("decimal", "quantity"):
        view.step = "any"
    if item.min_value is not None:
        view.minimum = option_value(item.min_value.value)
    if item.max_value is not None:
        view.maximum = option_value(item.max_value.value)
    if item.calculated_expression and view.key in evaluation.computed:
        view.computed = _display(evaluation.computed[view.key])


def _display(value: JSON) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, dict):
        amount = value.get("value")
        unit = value.get("unit") or value.get("code") or ""
        return f"{_display(amount)} {unit}".strip()
    return option_value(value)


def walk_fields(fields_: Sequence[Field]) -> Iterator[Field]:
    for view in fields_:
        yield view
        yield from walk_fields(view.children)
        for instance in view.instances:
            yield from walk_fields(instance)


# --- form → answers ----------------------------------------------------------------------------


def merge_section(
    questionnaire: Questionnaire,
    section: Section,
    answers: Mapping[str, JSON],
    form: Mapping[str, Sequence[str]],
    *,
    zone_offset: str = "+09:00",
    attachments: Mapping[str, JSON] | None = None,
    add_instance: str | None = None,
    remove_instance: str | None = None,
) -> dict[str, JSON]:
    """``answers`` with the section's items replaced by what the form posted.

    ``form`` maps field names to their strings (several for check boxes). ``attachments`` maps
    keys to attachment values uploaded with this post. ``add_instance`` / ``remove_instance``
    name a repeating group's key (``meds``) or instance key (``meds[1]``) to grow or shrink.
    """
    merged: dict[str, JSON] = json.loads(json.dumps(dict(answers)))  # a deep copy of plain JSON
    _merge(
        section.items,
        merged,
        "",
        form,
        zone_offset,
        attachments or {},
        add_instance,
        remove_instance,
    )
    return merged


def _merge(
    items: Sequence[Item],
    scope: dict[str, JSON],
    prefix: str,
    form: Mapping[str, Sequence[str]],
    zone_offset: str,
    attachments: Mapping[str, JSON],
    add_instance: str | None,
    remove_instance: str | None,
) -> None:
    for item in items:
        key = prefix + item.link_id
        if item.hidden or item.calculated_expression or item.type == "display":
            continue
        if item.type == "group" and item.repeats:
            raw = scope.get(item.link_id)
            instances = [i for i in raw if isinstance(i, dict)] if isinstance(raw, list) else []
            count = max(len(instances), 1, _posted_instances(form, key))
            instances += [{} for _ in range(count - len(instances))]
            for number, instance in enumerate(instances):
                _merge(
                    item.items,
                    instance,
                    f"{key}[{number}]/",
                    form,
                    zone_offset,
                    attachments,
                    add_instance,
                    remove_instance,
                )
            if remove_instance is not None and remove_instance.startswith(f"{key}["):
                removed = _instance_number(remove_instance, key)
                if removed is not None and removed < len(instances):
                    del instances[removed]
            if add_instance == key:
                instances.append({})
            scope[item.link_id] = instances
        elif item.type == "group":
            _merge(item.items, scope, prefix, form, zone_offset, attachments, add_instance, None)
        elif key in attachments:
            scope[item.link_id] = attachments[key]
        elif item.type == "attachment":
            continue  # no new file: keep what was uploaded before
        else:
            values = [
                converted
                for raw in form.get(PREFIX + key, [])
                if (converted := to_json(item, raw, zone_offset)) is not None
            ]
            if item.type == "open-choice":
                other = (form.get(f"{PREFIX}{key}:other") or [""])[0].strip()
                if other:
                    values.append(other)
            if not values:
                scope.pop(item.link_id, None)
            elif item.repeats:
                scope[item.link_id] = values
            else:
                scope[item.link_id] = values[0] if len(values) == 1 else values


def _posted_instances(form: Mapping[str, Sequence[str]], key: str) -> int:
    numbers = [
        _instance_number(name[len(PREFIX) :], key)
        for name in form
        if name.startswith(f"{PREFIX}{key}[")
    ]
    found = [n for n in numbers if n is not None]
    return max(found) + 1 if found else 0


def _instance_number(instance_key: str, key: str) -> int | None:
    match = re.match(re.escape(key) + r"\[(\d{1,3})\]", instance_key)
    return int(match.group(1)) if match else None


def to_json(item: Item, raw: str, zone_offset: str = "+09:00") -> JSON:
    """One posted string as the JSON answer of ``item`` (None for "no answer")."""
    text = raw.strip()
    if not text:
        return None
    if item.type == "boolean":
        return {"true": True, "false": False}.get(text, text)
    if item.type in ("integer", "decimal", "quantity"):
        number = text.translate(_FULLWIDTH).replace(",", "")
        value: JSON = text
        if item.type == "integer" and _INTEGER.match(number):
            value = int(number)
        elif item.type != "integer" and _DECIMAL.match(number):
            value = float(number) if "." in number else int(number)
        if item.type == "quantity" and not isinstance(value, str):
            unit = item.unit
            quantity: dict[str, JSON] = {"value": value}
            if unit is not None:
                quantity.update({"unit": unit.display or unit.code, "code": unit.code})
                if unit.system:
                    quantity["system"] = unit.system
            return quantity
        return value
    if item.type == "time" and re.match(r"^\d{2}:\d{2}$", text):
        return text + ":00"
    if item.type == "dateTime" and re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$", text):
        return f"{text}:00{zone_offset}"
    if item.type in ("choice", "open-choice"):
        for option in item.answer_options:
            if option_value(option.value.value) == text:
                return option.value.to_json()
        return text
    return text


# --- moving through the sections -------------------------------------------------------------


def padded(questionnaire: Questionnaire, answers: Mapping[str, Any]) -> dict[str, Any]:
    """Answers with one empty instance in every repeating group that has none (so its first
    instance can be shown and evaluated)."""
    out: dict[str, Any] = json.loads(json.dumps(dict(answers)))

    def pad(items: Sequence[Any], scope: dict[str, Any]) -> None:
        for item in items:
            if item.type == "group" and item.repeats:
                instances = scope.get(item.link_id)
                if not isinstance(instances, list) or not instances:
                    instances = [{}]
                    scope[item.link_id] = instances
                for instance in instances:
                    if isinstance(instance, dict):
                        pad(item.items, instance)
            elif item.type == "group":
                pad(item.items, scope)

    pad(questionnaire.items, out)
    return out


def section_of(questionnaire: Questionnaire, sections: list[Section]) -> dict[str, int]:
    """linkId → the index of the section it is shown in."""
    where: dict[str, int] = {}
    for section in sections:
        for top in section.items:
            for item in top.walk():
                where[item.link_id] = section.index
    return where


def link_id_of(key: str) -> str:
    """The linkId of an item key (``meds[1]/dose`` → ``dose``)."""
    last = key.rsplit("/", 1)[-1]
    return last.split("[", 1)[0]


def answerable(questionnaire: Questionnaire, key: str) -> bool:
    """Whether the patient answers the item of ``key`` (a visible question)."""
    item = questionnaire.item(link_id_of(key))
    return item is not None and item.is_question and not item.hidden


def next_section(
    evaluation: Evaluation,
    sections: list[Section],
    where: Mapping[str, int],
    index: int,
) -> int | None:
    """The next section with something enabled to show (a section can be all disabled)."""
    visible = {where.get(link_id_of(key)) for key in evaluation.enabled}
    for candidate in range(index + 1, len(sections)):
        if candidate in visible:
            return candidate
    return None
