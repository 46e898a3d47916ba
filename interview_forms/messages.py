"""Japanese and English text for every rule code of this package.

Templates use ``str.format`` fields; ``{link_id}`` is always available. A code missing here is a
bug that the unit tests catch (every code raised anywhere must have both texts).
"""

from __future__ import annotations

from typing import Final

MESSAGES: Final[dict[str, tuple[str, str]]] = {
    # --- loading / structure --------------------------------------------------------------------
    "not-a-questionnaire": (
        "FHIR の Questionnaire リソース（JSON オブジェクト）ではありません。",
        "This is not a FHIR Questionnaire resource (a JSON object).",
    ),
    "unreadable": (
        "JSON または YAML として読み取れません: {detail}",
        "Cannot be read as JSON or YAML: {detail}",
    ),
    "not-json": (
        "JSON で表せない値があります（{where}）。",
        "A value cannot be represented in JSON ({where}).",
    ),
    "invalid-element": (
        "{link_id}: {element} の形式が正しくありません。",
        "{link_id}: {element} is malformed.",
    ),
    "missing-link-id": (
        "linkId のない項目があります（{where}）。",
        "An item has no linkId ({where}).",
    ),
    "duplicate-link-id": (
        "linkId「{link_id}」が複数の項目で使われています。",
        "linkId '{link_id}' is used by more than one item.",
    ),
    "unknown-type": (
        "{link_id}: 項目の種類「{type}」には対応していません。",
        "{link_id}: item type '{type}' is not supported.",
    ),
    "fhir-invalid": (
        "FHIR R4 の Questionnaire として不正です（{location}）: {detail}",
        "Not a valid FHIR R4 Questionnaire ({location}): {detail}",
    ),
    "fhir-response-invalid": (
        "FHIR R4 の QuestionnaireResponse として不正です（{location}）: {detail}",
        "Not a valid FHIR R4 QuestionnaireResponse ({location}): {detail}",
    ),
    # --- enableWhen -----------------------------------------------------------------------------
    "enable-when-unknown-question": (
        "{link_id}: 表示条件が存在しない質問「{question}」を参照しています。",
        "{link_id}: the enableWhen condition refers to a question '{question}' that does not "
        "exist.",
    ),
    "enable-when-not-question": (
        "{link_id}: 表示条件の参照先「{question}」は回答のある質問ではありません（グループまたは表"
        "示項目）。",
        "{link_id}: the enableWhen condition refers to '{question}', which is a group or display "
        "item and has no answers.",
    ),
    "enable-when-later-question": (
        "{link_id}: 表示条件の参照先「{question}」は、"
        "この項目より前にある質問でなければなりません。",
        "{link_id}: the enableWhen condition refers to '{question}', which must come before this "
        "item.",
    ),
    "enable-when-cycle": (
        "{link_id}: 表示条件が循環しています（{cycle}）。",
        "{link_id}: the enableWhen conditions form a cycle ({cycle}).",
    ),
    "enable-when-out-of-scope": (
        "{link_id}: 表示条件の参照先「{question}」は別の繰り返しグループの中にあり、"
        "どの回答を見るか決まりません。",
        "{link_id}: the enableWhen condition refers to '{question}' inside another repeating "
        "group, so it is not clear which instance to look at.",
    ),
    "enable-when-operator": (
        "{link_id}: 演算子「{operator}」は不正です（exists, =, !=, >, <, >=, <= のいずれか）。",
        "{link_id}: operator '{operator}' is invalid (use exists, =, !=, >, <, >= or <=).",
    ),
    "enable-when-operator-type": (
        "{link_id}: 演算子「{operator}」は種類「{type}」の質問「{question}」には使えません。",
        "{link_id}: operator '{operator}' cannot be used on question '{question}' of type "
        "'{type}'.",
    ),
    "enable-when-answer-missing": (
        "{link_id}: 表示条件には answer[x] がちょうど一つ必要です。",
        "{link_id}: an enableWhen condition needs exactly one answer[x].",
    ),
    "enable-when-exists-boolean": (
        "{link_id}: 演算子 exists の答えは answerBoolean でなければなりません。",
        "{link_id}: the answer of an 'exists' condition must be answerBoolean.",
    ),
    "enable-when-answer-type": (
        "{link_id}: 表示条件の answer{kind} は質問「{question}」（種類「{type}」）"
        "の回答と比べられません。",
        "{link_id}: enableWhen answer{kind} cannot be compared with answers to question "
        "'{question}' of type '{type}'.",
    ),
    "enable-behavior-missing": (
        "{link_id}: 表示条件が複数あるときは enableBehavior（all または any）が必要です。",
        "{link_id}: enableBehavior (all or any) is required when there are several enableWhen "
        "conditions.",
    ),
    "enable-behavior-invalid": (
        "{link_id}: enableBehavior は all か any です。",
        "{link_id}: enableBehavior must be 'all' or 'any'.",
    ),
    # --- item rules -----------------------------------------------------------------------------
    "answer-option-not-choice": (
        "{link_id}: 選択肢（answerOption）は choice / open-choice の項目にだけ付けられます。",
        "{link_id}: answerOption is allowed only on choice and open-choice items.",
    ),
    "answer-option-type": (
        "{link_id}: 選択肢の値の種類 {kind} は使えません（integer, date, time, string, Coding）。",
        "{link_id}: answer option value{kind} is not allowed (use integer, date, time, string or "
        "Coding).",
    ),
    "answer-option-duplicate": (
        "{link_id}: 同じ選択肢が二度あります。",
        "{link_id}: the same answer option appears twice.",
    ),
    "answer-option-with-initial": (
        "{link_id}: 選択肢のある項目では initial ではなく initialSelected を使います。",
        "{link_id}: items with answerOption use initialSelected, not initial.",
    ),
    "choice-without-options": (
        "{link_id}: choice の項目には選択肢（answerOption または answerValueSet）が必要です。",
        "{link_id}: a choice item needs answer options (answerOption or answerValueSet).",
    ),
    "not-answerable-property": (
        "{link_id}: 種類「{type}」の項目には {property} を付けられません（回答を持たないため）。",
        "{link_id}: a '{type}' item cannot have {property} (it has no answers).",
    ),
    "group-without-items": (
        "{link_id}: グループには子項目が必要です。",
        "{link_id}: a group must contain items.",
    ),
    "display-with-items": (
        "{link_id}: 表示項目（display）は子項目を持てません。",
        "{link_id}: a display item cannot contain items.",
    ),
    "question-with-items": (
        "{link_id}: 質問の下に項目を入れることはできません。グループを使ってください。",
        "{link_id}: items nested under a question are not supported; use a group.",
    ),
    "initial-type": (
        "{link_id}: 初期値の種類 {kind} が項目の種類「{type}」と合いません。",
        "{link_id}: initial value{kind} does not match item type '{type}'.",
    ),
    "initial-not-repeating": (
        "{link_id}: 繰り返さない項目に初期値は一つだけです。",
        "{link_id}: an item that does not repeat can have only one initial value.",
    ),
    "initial-selected-not-repeating": (
        "{link_id}: 繰り返さない項目で initialSelected にできる選択肢は一つだけです。",
        "{link_id}: only one option can be initialSelected on an item that does not repeat.",
    ),
    "max-length-not-text": (
        "{link_id}: maxLength は string / text の項目にだけ付けられます。",
        "{link_id}: maxLength is allowed only on string and text items.",
    ),
    "max-length-invalid": (
        "{link_id}: maxLength は 1 以上の整数です。",
        "{link_id}: maxLength must be a positive integer.",
    ),
    "repeats-on-boolean": (
        "{link_id}: はい/いいえの項目は繰り返せません。",
        "{link_id}: a boolean item cannot repeat.",
    ),
    "item-control-invalid": (
        "{link_id}: 入力方法「{control}」は種類「{type}」の項目には使えません。",
        "{link_id}: item control '{control}' cannot be used on a '{type}' item.",
    ),
    "min-max-type": (
        "{link_id}: {bound} の種類 {kind} が項目の種類「{type}」と合いません。",
        "{link_id}: {bound} of kind {kind} does not match item type '{type}'.",
    ),
    "min-above-max": (
        "{link_id}: 最小値が最大値より大きくなっています。",
        "{link_id}: minValue is greater than maxValue.",
    ),
    "unit-not-quantity": (
        "{link_id}: 単位（questionnaire-unit）は decimal / integer / quantity "
        "の項目にだけ付けられます。",
        "{link_id}: questionnaire-unit is allowed only on decimal, integer and quantity items.",
    ),
    "hidden-required": (
        "{link_id}: 非表示の必須項目には初期値か計算式が必要です（患者さんが入力できません）。",
        "{link_id}: a hidden required item needs an initial value or a calculation (patients "
        "cannot fill it).",
    ),
    "calculated-language": (
        "{link_id}: 計算式の言語は text/fhirpath だけに対応しています。",
        "{link_id}: only text/fhirpath calculated expressions are supported.",
    ),
    "calculated-invalid": (
        "{link_id}: 計算式を解釈できません: {detail}",
        "{link_id}: the calculated expression cannot be parsed: {detail}",
    ),
    "calculated-type": (
        "{link_id}: 計算式は decimal / integer / string / boolean の項目にだけ付けられます。",
        "{link_id}: calculatedExpression is allowed only on decimal, integer, string and boolean "
        "items.",
    ),
    "calculated-in-repeat": (
        "{link_id}: 繰り返しグループの中の計算式には対応していません。",
        "{link_id}: calculated expressions inside repeating groups are not supported.",
    ),
    "calculated-cycle": (
        "{link_id}: 計算式が互いに参照し合っています（{cycle}）。",
        "{link_id}: calculated expressions refer to each other in a cycle ({cycle}).",
    ),
    "outcome-invalid": (
        "判定ルール「{outcome}」が不正です: {detail}",
        "Outcome '{outcome}' is invalid: {detail}",
    ),
    # --- answers (shown next to the question: no linkId in the text) ----------------------------
    "required": ("この質問にお答えください。", "Please answer this question."),
    "unknown-item": (
        "「{link_id}」という項目はこの問診票にありません。",
        "There is no item '{link_id}' in this questionnaire.",
    ),
    "not-answerable": (
        "この項目（見出し・説明）には回答できません。",
        "This item is a heading or an explanation and takes no answer.",
    ),
    "invalid-type": ("{expected_ja}で入力してください。", "Please enter {expected_en}."),
    "invalid-format": (
        "{expected_ja}の形式で入力してください（例: {example}）。",
        "Please enter {expected_en} (e.g. {example}).",
    ),
    "out-of-range": ("数値が大きすぎるか小さすぎます。", "The number is too large or too small."),
    "not-repeating": ("回答は一つだけ選んでください。", "Please give only one answer."),
    "not-an-option": ("選択肢の中から選んでください。", "Please choose one of the options."),
    "below-min": ("{limit} 以上で入力してください。", "Please enter {limit} or more."),
    "above-max": ("{limit} 以下で入力してください。", "Please enter {limit} or less."),
    "too-long": ("{limit} 文字以内で入力してください。", "Please use at most {limit} characters."),
    "wrong-unit": ("単位は {unit} で入力してください。", "Please use the unit {unit}."),
    "invalid-group-instances": (
        "{link_id}: 繰り返しグループの回答は、回答の組のリストで渡してください。",
        "{link_id}: answers to a repeating group must be a list of answer sets.",
    ),
}


# What an answer of each item type looks like, for "invalid-type" / "invalid-format".
EXPECTED: Final[dict[str, tuple[str, str, str]]] = {
    "boolean": ("「はい」か「いいえ」", "yes or no", "はい"),
    "decimal": ("数値", "a number", "36.8"),
    "integer": ("整数", "a whole number", "3"),
    "date": ("日付", "a date", "2026-04-01"),
    "dateTime": ("日時", "a date and time", "2026-04-01T09:30:00+09:00"),
    "time": ("時刻", "a time", "09:30:00"),
    "string": ("文字", "text", "ロキソニン"),
    "text": ("文字", "text", "昨日から咳が出ます"),
    "choice": ("選択肢", "one of the options", "-"),
    "open-choice": ("選択肢か文字", "an option or text", "-"),
    "quantity": ("数値と単位", "an amount with its unit", "65 kg"),
    "attachment": ("ファイル", "a file", "photo.jpg"),
}


def expected(item_type: str) -> dict[str, str]:
    """Parameters of "invalid-type" / "invalid-format" for an item type."""
    ja, en, example = EXPECTED.get(item_type, ("回答", "an answer", "-"))
    return {"expected_ja": ja, "expected_en": en, "example": example}


def message(code: str, **params: object) -> tuple[str, str]:
    """(Japanese, English) text for ``code`` with ``params`` filled in."""
    ja, en = MESSAGES[code]
    return ja.format(**params), en.format(**params)
