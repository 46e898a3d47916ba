"""A clinic's questionnaires as numbered versions: drafts, publishing, test cases, import/export.

A questionnaire is known to the clinic's menus by its ``key`` (``Menu.questionnaire_id``); each
key has versions 1, 2, 3 … Only a **draft** changes. Publishing turns the draft into the key's
one **published** version and retires the one before it; a published version never changes again
(editing it means :func:`new_draft_from`, a copy with the next number). A key has at most one
draft at a time. Every definition stored here passed :func:`interview_forms.validate` without
errors; a refused change writes nothing.

Canonical URL: version *n* of ``key`` at clinic *c* is
``https://tsunagu.dev/fhir/Questionnaire/<c>/<key>|<n>`` — the stored body carries that ``url``
and ``version`` so a QuestionnaireResponse built from it names the exact version it answered.

**Test cases** are the clinic's own checks of its branching ("with these answers, these
questions show and this outcome fires")::

    {"name": "胸痛で救急", "answers": {"chest_pain": true},
     "expect": {"enabled": ["chest_detail"], "disabled": ["cough_days"],
                "outcomes": ["chest"], "missing": ["onset"]}}

``enabled``/``disabled`` list item keys that must (not) be enabled; ``outcomes`` and ``missing``
are the exact sets of fired outcome ids and required-but-unanswered item keys. Answers the engine
finds invalid fail the case (a misspelt linkId shows up that way). The cases run on every save;
publishing is refused while one fails. An export carries them in a Tsunagu extension
(:data:`TEST_CASE`) so that export → import keeps them.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import yaml
from tortoise.transactions import in_transaction

from .definition import Questionnaire, parse_document
from .engine import answers_from_response, evaluate
from .errors import DefinitionError, InterviewFormError, Problem
from .models import FormResponse, QuestionnaireVersion, ResponseStatus, VersionStatus
from .validate import Validation, validate
from .values import JSON

CANONICAL_BASE: Final = "https://tsunagu.dev/fhir/Questionnaire"
TEST_CASE: Final = "https://tsunagu.dev/fhir/StructureDefinition/test-case"
TEMPLATE_DIR: Final = Path(__file__).parent / "templates"
KEY: Final = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
MAX_TEST_CASES: Final = 100
_EXPECT_KEYS: Final = ("enabled", "disabled", "outcomes", "missing")
_FHIR_STATUS: Final = {
    VersionStatus.DRAFT: "draft",
    VersionStatus.PUBLISHED: "active",
    VersionStatus.RETIRED: "retired",
}

# Problems this module finds (Japanese, English); ``{…}`` fields filled by str.format.
_TEXT: Final[dict[str, tuple[str, str]]] = {
    "key-invalid": (
        "キーは半角英小文字・数字・ハイフンで 1〜64 文字にしてください（例: naika-shoshin）。",
        "The key must be 1-64 lowercase letters, digits or hyphens (e.g. naika-shoshin).",
    ),
    "yaml-alias": (
        "YAML のアンカー・エイリアス（& と *）は使えません。",
        "YAML anchors and aliases (& and *) are not accepted.",
    ),
    "not-json": (
        "JSON に変換できない値があります（{detail}）。",
        "The document holds a value that is not JSON ({detail}).",
    ),
    "empty": ("定義が空です。", "The definition is empty."),
    "tests-invalid": (
        "テストケースの形式が正しくありません: {detail}",
        "The test cases are malformed: {detail}",
    ),
}


def _problem(code: str, link_id: str | None = None, **params: object) -> Problem:
    ja, en = _TEXT[code]
    return Problem(code, link_id, ja.format(**params), en.format(**params))


def tests_problem(detail: str) -> Problem:
    """The problem of test cases that are not even JSON (``detail`` says where)."""
    return _problem("tests-invalid", detail=detail)


class VersionRefused(InterviewFormError):
    """A change this module will not make. ``code`` says which rule; nothing was written.

    ``not-a-draft``: only drafts change. ``invalid``: the definition or the test cases have
    ``problems``. ``tests-failing``: publishing with a failing test case (see ``results``).
    ``draft-exists``: the key already has a draft. ``key-taken``: a new questionnaire with a key
    the clinic already uses.
    """

    TEXT: Final[dict[str, tuple[str, str]]] = {
        "not-a-draft": (
            "公開済み・廃止済みの版は変更できません。編集するには新しい下書きを作成してください。",
            "A published or retired version cannot change; make a new draft to edit it.",
        ),
        "invalid": (
            "定義に問題があります。内容を確認してください。",
            "The definition has problems; see below.",
        ),
        "tests-failing": (
            "失敗しているテストケースがあるため公開できません。",
            "Cannot publish while a test case fails.",
        ),
        "draft-exists": (
            "この問診票にはすでに下書きがあります。その下書きを編集してください。",
            "This questionnaire already has a draft; edit that draft.",
        ),
        "key-taken": (
            "このキーはすでに使われています。別のキーにするか、その問診票に取り込んでください。",
            "This key is already in use; choose another or import into that questionnaire.",
        ),
    }

    def __init__(
        self,
        code: str,
        problems: tuple[Problem, ...] = (),
        results: tuple[CaseResult, ...] = (),
    ) -> None:
        super().__init__(code)
        self.code = code
        self.problems = problems
        self.results = results
        self.message_ja, self.message_en = self.TEXT[code]


# --- reading documents ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Parsed:
    """An uploaded document: its JSON (``None`` when unreadable) and what validation found."""

    data: dict[str, JSON] | None
    validation: Validation
    tests: list[dict[str, JSON]]

    @property
    def ok(self) -> bool:
        return self.data is not None and self.validation.ok

    @property
    def questionnaire(self) -> Questionnaire | None:
        return self.validation.questionnaire


def parse(text: str | bytes) -> Parsed:
    """Read FHIR JSON or YAML text and validate it; never raises on bad input.

    YAML anchors and aliases are refused (an alias bomb expands exponentially once written as
    JSON). Test cases found in :data:`TEST_CASE` extensions are taken out of the definition.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not text.strip():
        return _unreadable(_problem("empty"))
    try:
        data: JSON = json.loads(text)
    except ValueError:
        if _has_yaml_alias(text):
            return _unreadable(_problem("yaml-alias"))
        try:
            data = parse_document(text)
        except DefinitionError as error:
            return Parsed(None, Validation(None, error.problems), [])
        try:
            data = json.loads(json.dumps(data, ensure_ascii=False))
        except (TypeError, ValueError) as error:
            return _unreadable(_problem("not-json", detail=type(error).__name__))
    return parse_data(data)


def parse_data(data: JSON) -> Parsed:
    """Validate a FHIR JSON value (as :func:`json.loads` gives it)."""
    tests: list[dict[str, JSON]] = []
    if isinstance(data, dict) and isinstance(data.get("extension"), list):
        kept = []
        for extension in data["extension"]:
            if isinstance(extension, dict) and extension.get("url") == TEST_CASE:
                try:
                    tests.append(json.loads(str(extension.get("valueString"))))
                except ValueError:
                    tests.append({"name": None})  # reported by check_tests
            else:
                kept.append(extension)
        data = {k: v for k, v in data.items() if k != "extension"}
        if kept:
            data["extension"] = kept
    validation = validate(data)
    return Parsed(data if isinstance(data, dict) else None, validation, tests)


def _unreadable(problem: Problem) -> Parsed:
    return Parsed(None, Validation(None, (problem,)), [])


def _has_yaml_alias(text: str) -> bool:
    try:
        return any(
            isinstance(t, yaml.AliasToken | yaml.AnchorToken)
            for t in yaml.scan(text, Loader=yaml.SafeLoader)
        )
    except yaml.YAMLError:
        return False  # parse_document reports it with its position


# --- test cases ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failure:
    message_ja: str
    message_en: str


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One test case's verdict; ``failures`` is empty when it passed."""

    index: int
    name: str
    failures: tuple[Failure, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def check_tests(tests: JSON) -> list[Problem]:
    """Problems with the *shape* of test cases (what a run cannot make sense of)."""
    if not isinstance(tests, list):
        return [_problem("tests-invalid", detail="[ … ]")]
    if len(tests) > MAX_TEST_CASES:
        return [_problem("tests-invalid", detail=f"> {MAX_TEST_CASES}")]
    problems = []
    for index, case in enumerate(tests):
        where = f"#{index + 1}"
        if not isinstance(case, dict) or not isinstance(case.get("name"), str):
            problems.append(_problem("tests-invalid", detail=f"{where}: name"))
            continue
        unknown = set(case) - {"name", "answers", "expect"}
        if unknown:
            problems.append(_problem("tests-invalid", detail=f"{where}: {sorted(unknown)}"))
        if not isinstance(case.get("answers", {}), dict):
            problems.append(_problem("tests-invalid", detail=f"{where}: answers"))
        expect = case.get("expect", {})
        if not isinstance(expect, dict) or set(expect) - set(_EXPECT_KEYS):
            problems.append(_problem("tests-invalid", detail=f"{where}: expect"))
            continue
        for name, values in expect.items():
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                problems.append(_problem("tests-invalid", detail=f"{where}: expect.{name}"))
    return problems


def run_tests(questionnaire: Questionnaire, tests: list[dict[str, JSON]]) -> tuple[CaseResult, ...]:
    """Every case against the definition (cases must have passed :func:`check_tests`)."""
    return tuple(_run_case(questionnaire, index, case) for index, case in enumerate(tests))


def _run_case(questionnaire: Questionnaire, index: int, case: dict[str, JSON]) -> CaseResult:
    evaluation = evaluate(questionnaire, case.get("answers") or {})
    expect: dict[str, list[str]] = case.get("expect") or {}
    failures: list[Failure] = []
    for error in evaluation.errors:
        failures.append(
            Failure(
                f"回答が不正です（{error.key}）: {error.message_ja}",
                f"Invalid answer ({error.key}): {error.message_en}",
            )
        )
    for key in expect.get("enabled", []):
        if key not in evaluation.enabled:
            failures.append(Failure(f"「{key}」が表示されていません。", f"'{key}' is not shown."))
    for key in expect.get("disabled", []):
        if key in evaluation.enabled:
            failures.append(
                Failure(f"「{key}」が表示されています。", f"'{key}' is shown but should not be.")
            )
    if "outcomes" in expect:
        fired = sorted(o.id for o in evaluation.outcomes)
        if fired != sorted(set(expect["outcomes"])):
            failures.append(
                Failure(
                    f"判定結果: 期待 {_listing(expect['outcomes'])}、実際 {_listing(fired)}。",
                    f"Outcomes: expected {_listing(expect['outcomes'])}, got {_listing(fired)}.",
                )
            )
    if "missing" in expect:
        missing = list(evaluation.missing_required)
        if sorted(missing) != sorted(set(expect["missing"])):
            failures.append(
                Failure(
                    f"未回答の必須項目: 期待 {_listing(expect['missing'])}、"
                    f"実際 {_listing(missing)}。",
                    f"Missing required: expected {_listing(expect['missing'])}, "
                    f"got {_listing(missing)}.",
                )
            )
    return CaseResult(index, str(case.get("name", "")), tuple(failures))


def _listing(values: list[str]) -> str:
    return "[" + ", ".join(sorted(set(values))) + "]"


# --- built-in templates --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Template:
    """A built-in questionnaire (``interview_forms/templates/<name>.json``)."""

    name: str
    title: str
    text: str


def templates() -> list[Template]:
    """The built-in templates, by file name; an unreadable file is skipped (its test fails)."""
    out = []
    for path in sorted(TEMPLATE_DIR.glob("*.json")):
        text = path.read_text(encoding="utf-8")
        try:
            title = json.loads(text).get("title") or path.stem
        except (ValueError, AttributeError):
            continue
        out.append(Template(path.stem, str(title), text))
    return out


def template(name: str) -> Template | None:
    return next((t for t in templates() if t.name == name), None)


# --- the versions --------------------------------------------------------------------------------


def canonical_url(clinic_id: str, key: str) -> str:
    return f"{CANONICAL_BASE}/{clinic_id}/{key}"


def _stamped(data: dict[str, JSON], clinic_id: str, key: str, version: int) -> dict[str, JSON]:
    """The body as stored: url and version name this exact version; status is the row's."""
    out = {k: v for k, v in data.items() if k not in ("url", "version", "status")}
    return {
        "resourceType": "Questionnaire",
        "url": canonical_url(clinic_id, key),
        "version": str(version),
        "status": "draft",
        **{k: v for k, v in out.items() if k != "resourceType"},
    }


def _title(data: dict[str, JSON], key: str) -> str:
    title = data.get("title")
    return (title if isinstance(title, str) and title.strip() else key)[:200]


def _accepted(parsed: Parsed, tests: list[dict[str, JSON]]) -> tuple[CaseResult, ...]:
    """Raise ``invalid`` unless the definition and the cases can be stored; run the cases."""
    problems = tuple(parsed.validation.errors) + tuple(check_tests(tests))
    if problems or parsed.data is None or parsed.questionnaire is None:
        raise VersionRefused("invalid", problems or parsed.validation.problems)
    return run_tests(parsed.questionnaire, tests)


def _key_problem(key: str) -> None:
    if not KEY.match(key):
        raise VersionRefused("invalid", (_problem("key-invalid"),))


async def _next_number(clinic_id: str, key: str) -> int:
    rows = await QuestionnaireVersion.filter(clinic_id=clinic_id, key=key).only("version")
    return max((row.version for row in rows), default=0) + 1


async def create_draft(
    clinic_id: str,
    key: str,
    document: str | bytes | Parsed,
    *,
    created_by: str | None,
    now: datetime,
    new_key: bool = True,
) -> tuple[QuestionnaireVersion, tuple[CaseResult, ...]]:
    """A new draft of ``key`` from JSON/YAML text (a template's, or uploaded).

    ``new_key``: a new questionnaire, refused when the clinic already uses the key; otherwise an
    import into an existing or new key (refused while that key has a draft). Test cases carried
    in the document come along.
    """
    _key_problem(key)
    parsed = document if isinstance(document, Parsed) else parse(document)
    results = _accepted(parsed, parsed.tests)
    assert parsed.data is not None  # noqa: S101 - _accepted refused otherwise
    async with in_transaction():
        existing = QuestionnaireVersion.filter(clinic_id=clinic_id, key=key)
        if new_key and await existing.exists():
            raise VersionRefused("key-taken")
        if await existing.filter(status=VersionStatus.DRAFT).exists():
            raise VersionRefused("draft-exists")
        number = await _next_number(clinic_id, key)
        version = await QuestionnaireVersion.create(
            clinic_id=clinic_id,
            key=key,
            version=number,
            status=VersionStatus.DRAFT,
            title=_title(parsed.data, key),
            body=_stamped(parsed.data, clinic_id, key, number),
            tests=parsed.tests,
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )
    return version, results


async def update_draft(
    version: QuestionnaireVersion,
    *,
    document: str | bytes | Parsed | None = None,
    tests: JSON = None,
    now: datetime,
) -> tuple[CaseResult, ...]:
    """Replace a draft's definition and/or its test cases; the cases run on the result.

    Refused (``not-a-draft``) for published and retired versions — checked against the database
    row, not the caller's copy, so a version published meanwhile stays as it was.
    """
    parsed = None
    if document is not None:
        parsed = document if isinstance(document, Parsed) else parse(document)
    if tests is None:
        tests = parsed.tests if parsed is not None and parsed.tests else version.tests
    if parsed is None:
        parsed = Parsed(version.body, validate(version.body), [])
    results = _accepted(parsed, tests)
    assert parsed.data is not None  # noqa: S101 - _accepted refused otherwise
    body = _stamped(parsed.data, str(version.clinic_id), version.key, version.version)
    title = _title(parsed.data, version.key)
    changed = await QuestionnaireVersion.filter(id=version.id, status=VersionStatus.DRAFT).update(
        body=body, tests=tests, title=title, updated_at=now
    )
    if not changed:
        raise VersionRefused("not-a-draft")
    version.body, version.tests, version.title, version.updated_at = body, tests, title, now
    return results


def results_of(version: QuestionnaireVersion) -> tuple[Validation, tuple[CaseResult, ...]]:
    """A stored version's validation and its test cases' results (run now)."""
    validation = validate(version.body)
    if validation.questionnaire is None or check_tests(version.tests):
        return validation, ()
    return validation, run_tests(validation.questionnaire, version.tests)


async def publish(version: QuestionnaireVersion, *, now: datetime) -> QuestionnaireVersion | None:
    """Publish a draft whose definition is valid and whose test cases all pass.

    Returns the version it retired (the key's previous published one), if any.
    """
    if version.status is not VersionStatus.DRAFT:
        raise VersionRefused("not-a-draft")
    validation, results = results_of(version)
    if not validation.ok or check_tests(version.tests):
        raise VersionRefused("invalid", validation.errors + tuple(check_tests(version.tests)))
    if not all(r.passed for r in results):
        raise VersionRefused("tests-failing", results=results)
    body = {**version.body, "status": "active"}
    async with in_transaction():
        previous = await QuestionnaireVersion.get_or_none(
            clinic_id=version.clinic_id, key=version.key, status=VersionStatus.PUBLISHED
        )
        if previous is not None:
            await QuestionnaireVersion.filter(id=previous.id).update(
                status=VersionStatus.RETIRED, updated_at=now
            )
        changed = await QuestionnaireVersion.filter(
            id=version.id, status=VersionStatus.DRAFT
        ).update(status=VersionStatus.PUBLISHED, body=body, published_at=now, updated_at=now)
        if not changed:
            raise VersionRefused("not-a-draft")
    version.status, version.body, version.published_at = VersionStatus.PUBLISHED, body, now
    return previous


async def new_draft_from(
    version: QuestionnaireVersion, *, created_by: str | None, now: datetime
) -> QuestionnaireVersion:
    """A draft copied from ``version`` (definition and test cases), numbered next."""
    async with in_transaction():
        siblings = QuestionnaireVersion.filter(clinic_id=version.clinic_id, key=version.key)
        if await siblings.filter(status=VersionStatus.DRAFT).exists():
            raise VersionRefused("draft-exists")
        number = await _next_number(str(version.clinic_id), version.key)
        return await QuestionnaireVersion.create(
            clinic_id=version.clinic_id,
            key=version.key,
            version=number,
            status=VersionStatus.DRAFT,
            title=version.title,
            body=_stamped(version.body, str(version.clinic_id), version.key, number),
            tests=list(version.tests),
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )


async def discard_draft(version: QuestionnaireVersion) -> None:
    """Delete a draft (never a published or retired version: responses point at those)."""
    deleted = await QuestionnaireVersion.filter(id=version.id, status=VersionStatus.DRAFT).delete()
    if not deleted:
        raise VersionRefused("not-a-draft")


# --- lookups -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeySummary:
    """One questionnaire of a clinic: its published version and draft (either may be missing)."""

    key: str
    title: str
    published: QuestionnaireVersion | None
    draft: QuestionnaireVersion | None
    versions: tuple[QuestionnaireVersion, ...]


async def clinic_versions(clinic_id: str) -> list[KeySummary]:
    """Every key of the clinic with its versions (newest first), keys in title order."""
    rows = await QuestionnaireVersion.filter(clinic_id=clinic_id).order_by("key", "-version")
    by_key: dict[str, list[QuestionnaireVersion]] = {}
    for row in rows:
        by_key.setdefault(row.key, []).append(row)
    out = []
    for key, versions in by_key.items():
        published = next((v for v in versions if v.status is VersionStatus.PUBLISHED), None)
        draft = next((v for v in versions if v.status is VersionStatus.DRAFT), None)
        title = (published or versions[0]).title
        out.append(KeySummary(key, title, published, draft, tuple(versions)))
    return sorted(out, key=lambda k: (k.title, k.key))


async def key_versions(clinic_id: str, key: str) -> KeySummary | None:
    return next((k for k in await clinic_versions(clinic_id) if k.key == key), None)


async def clinic_version(clinic_id: str, version_id: str) -> QuestionnaireVersion | None:
    """The clinic's version with this id; ``None`` for another clinic's or a malformed id."""
    try:
        key = uuid.UUID(version_id)
    except ValueError:
        return None
    return await QuestionnaireVersion.get_or_none(id=key, clinic_id=clinic_id)


async def published_version(clinic_id: str, key: str) -> QuestionnaireVersion | None:
    """What a patient booking a menu with ``key`` answers now."""
    return await QuestionnaireVersion.get_or_none(
        clinic_id=clinic_id, key=key, status=VersionStatus.PUBLISHED
    )


def definition(version: QuestionnaireVersion) -> Questionnaire:
    """The typed definition of a stored version (stored bodies always load)."""
    validation = validate(version.body)
    if validation.questionnaire is None:
        raise DefinitionError(validation.problems)
    return validation.questionnaire


# --- structured edits ----------------------------------------------------------------------------


def with_item_edits(
    body: dict[str, JSON], texts: dict[str, str], required: set[str]
) -> dict[str, JSON]:
    """A copy of ``body`` where each item named in ``texts`` (by linkId) gets that text (empty:
    none) and, if it is a question, is required exactly when it is in ``required``.

    Items not named in ``texts`` are left as they are; the result is validated like any upload.
    """
    copy: dict[str, JSON] = json.loads(json.dumps(body))

    def visit(items: JSON) -> None:
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            link_id = item.get("linkId")
            if isinstance(link_id, str) and link_id in texts:
                text = texts[link_id].strip()
                if text:
                    item["text"] = text
                else:
                    item.pop("text", None)
            edited = isinstance(link_id, str) and link_id in texts
            if edited and item.get("type") not in ("group", "display"):
                if link_id in required:
                    item["required"] = True
                else:
                    item.pop("required", None)
            visit(item.get("item"))

    visit(copy.get("item"))
    return copy


_FIRST_KEYS: Final = {
    k: n
    for n, k in enumerate(
        (
            *("resourceType", "id", "meta", "url", "version", "name", "title", "_title"),
            *("status", "linkId", "prefix", "text", "_text", "type"),
        )
    )
}
_LAST_KEYS: Final = {"answerOption": 0, "initial": 1, "item": 2}


def fhir_order(value: JSON) -> JSON:
    """``value`` with object keys in the order people read FHIR in (resourceType, url … first,
    child items last, the rest alphabetical): PostgreSQL's jsonb does not keep key order."""
    if isinstance(value, list):
        return [fhir_order(v) for v in value]
    if not isinstance(value, dict):
        return value

    def rank(key: str) -> tuple[int, int, str]:
        if key in _FIRST_KEYS:
            return (0, _FIRST_KEYS[key], key)
        if key in _LAST_KEYS:
            return (2, _LAST_KEYS[key], key)
        return (1, 0, key)

    return {k: fhir_order(value[k]) for k in sorted(value, key=rank)}


# --- export / import -----------------------------------------------------------------------------


def export(version: QuestionnaireVersion) -> dict[str, Any]:
    """The FHIR R4 Questionnaire of a version, with its test cases as extensions."""
    body = dict(version.body)
    body["url"] = canonical_url(str(version.clinic_id), version.key)
    body["version"] = str(version.version)
    body["status"] = _FHIR_STATUS[version.status]
    extensions = [e for e in body.get("extension", []) if e.get("url") != TEST_CASE]
    extensions += [
        {"url": TEST_CASE, "valueString": json.dumps(case, ensure_ascii=False)}
        for case in version.tests
    ]
    if extensions:
        body["extension"] = extensions
    return dict(fhir_order(body))


def key_from(data: dict[str, JSON] | None) -> str | None:
    """A key suggested by an imported document: the last part of its url, or its name/id."""
    if data is None:
        return None
    url = data.get("url")
    candidates = [url.rstrip("/").rsplit("/", 1)[-1] if isinstance(url, str) else None]
    candidates += [data.get("id"), data.get("name")]
    for candidate in candidates:
        if isinstance(candidate, str) and KEY.match(candidate.lower()):
            return candidate.lower()
    return None


# --- the doctor's view: an appointment's completed answers ---------------------------------------


async def appointment_responses(
    clinic_id: str, appointment_id: str
) -> tuple[FormResponse, FormResponse | None] | None:
    """The newest completed response of an appointment at this clinic, with the same patient's
    completed response to the same questionnaire key before it (for "changed since last time").
    """
    try:
        key = uuid.UUID(appointment_id)
    except ValueError:
        return None
    current = (
        await FormResponse.filter(
            clinic_id=clinic_id, appointment_id=key, status=ResponseStatus.COMPLETED
        )
        .order_by("-completed_at")
        .prefetch_related("questionnaire")
        .first()
    )
    if current is None:
        return None
    previous = (
        await FormResponse.filter(
            clinic_id=clinic_id,
            patient_id=current.patient_id,
            status=ResponseStatus.COMPLETED,
            questionnaire__key=current.questionnaire.key,
            completed_at__lt=current.completed_at,
        )
        .exclude(id=current.id)
        .order_by("-completed_at")
        .prefetch_related("questionnaire")
        .first()
    )
    return current, previous


def answers_of(response: FormResponse) -> tuple[Questionnaire, dict[str, JSON]]:
    """The definition a response answered and its answers in the engine's shape (from the
    stored QuestionnaireResponse when there is one: what the server accepted)."""
    questionnaire = definition(response.questionnaire)
    if isinstance(response.response, dict):
        return questionnaire, answers_from_response(questionnaire, response.response)
    answers = response.answers if isinstance(response.answers, dict) else {}
    return questionnaire, dict(answers)
