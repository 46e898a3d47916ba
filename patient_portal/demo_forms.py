"""The demo clinic's questionnaires: the built-in templates published, with test cases, and
linked to the demo menus.

Menus and questionnaires (by key):

* 内科 初診(対面) → ``naika-shoshin`` (internal medicine, first visit)
* 内科 再診(オンライン) → ``revisit-check``
* 花粉症 オンライン初診 → ``kafunsho-online``
* オンライン診療前相談 → ``fever-online``: the pre-consultation (診療前相談) is where a clinic
  decides whether a patient it has never seen can be treated online at all, which is exactly
  what this questionnaire's red flags decide (call 119, come in person, no online first visit).
* ``pediatric`` (asked of a parent) is published but no demo menu uses it; a clinic links it to
  its paediatric menu.

Each questionnaire carries a few test cases, so the demo shows the test harness at work.
Running :func:`seed_demo_questionnaires` again changes nothing: a key that already has versions
is left as the clinic left it, and a menu that already names a questionnaire keeps it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from booking.models import Menu
from interview_forms import versions

# key → (built-in template, test cases)
DEMO_QUESTIONNAIRES: Final[dict[str, tuple[str, list[dict[str, Any]]]]] = {
    "naika-shoshin": (
        "internal-medicine-first-visit",
        [
            {
                "name": "アレルギーなし → 種類は聞かない",
                "answers": {"has_allergy": False},
                "expect": {"disabled": ["allergy_kind", "allergy_drug"]},
            },
            {
                "name": "薬のアレルギー → 薬の名前を聞く",
                "answers": {"has_allergy": True, "allergy_kind": "drug"},
                "expect": {"enabled": ["allergy_drug"], "disabled": ["allergy_detail"]},
            },
            {
                "name": "胸痛 → 受付に知らせる",
                "answers": {"symptoms": ["chest_pain"]},
                "expect": {"outcomes": ["chest-pain-reception"]},
            },
        ],
    ),
    "fever-online": (
        "cold-fever-online",
        [
            {
                "name": "意識がもうろう → 救急車",
                "answers": {"rf_consciousness": True},
                "expect": {"outcomes": ["emergency"]},
            },
            {
                "name": "SpO2 92% → 対面受診",
                "answers": {"spo2": 92},
                "expect": {"outcomes": ["in-person"]},
            },
            {
                "name": "熱なし → 体温と日数は聞かない",
                "answers": {"fever_now": False},
                "expect": {"disabled": ["temperature", "fever_days"], "outcomes": []},
            },
            {
                "name": "熱が4日目 → オンライン初診不可",
                "answers": {"fever_now": True, "temperature": 38.2, "fever_days": 4},
                "expect": {"enabled": ["temperature"], "outcomes": ["long-fever"]},
            },
        ],
    ),
    "kafunsho-online": (
        "hay-fever-online-first-visit",
        [
            {
                "name": "ゼーゼーする → 対面受診",
                "answers": {"wheeze": True},
                "expect": {"outcomes": ["wheeze"]},
            },
            {
                "name": "市販薬なし → 薬の名前は聞かない",
                "answers": {"otc": False},
                "expect": {"disabled": ["otc_name"]},
            },
        ],
    ),
    "revisit-check": (
        "revisit-check",
        [
            {
                "name": "家庭血圧 182 → 対面受診",
                "answers": {"home_sbp": 182},
                "expect": {"outcomes": ["very-high-bp"]},
            },
            {
                "name": "悪くなった → 詳しく聞く",
                "answers": {"condition_change": "worse"},
                "expect": {"enabled": ["worse_detail"], "outcomes": ["worse"]},
            },
        ],
    ),
    "pediatric": (
        "paediatric-parent",
        [
            {
                "name": "生後2か月の発熱 → 対面受診",
                "answers": {"age_years": 0, "age_months": 2, "fever": True},
                "expect": {"outcomes": ["young-infant-fever"]},
            },
            {
                "name": "3歳 → 月齢は聞かない",
                "answers": {"age_years": 3},
                "expect": {"disabled": ["age_months"], "outcomes": []},
            },
        ],
    ),
}
MENU_QUESTIONNAIRES: Final = {
    "内科 初診(対面)": "naika-shoshin",
    "内科 再診(オンライン)": "revisit-check",
    "花粉症 オンライン初診": "kafunsho-online",
    "オンライン診療前相談": "fever-online",
}


async def seed_demo_questionnaires(clinic_id: str, *, now: datetime | None = None) -> list[str]:
    """Publish the demo questionnaires at ``clinic_id`` and link its menus; the keys published.

    A template that is missing or whose test cases fail is skipped (the others still go in).
    """
    now = now or datetime.now(UTC)
    published = []
    for key, (template_name, cases) in DEMO_QUESTIONNAIRES.items():
        template = versions.template(template_name)
        if template is None or await versions.key_versions(clinic_id, key) is not None:
            continue
        try:
            version, _ = await versions.create_draft(
                clinic_id, key, template.text, created_by=None, now=now
            )
            await versions.update_draft(version, tests=cases, now=now)
            await versions.publish(version, now=now)
        except versions.VersionRefused:
            continue
        published.append(key)
    for title, key in MENU_QUESTIONNAIRES.items():
        found = await versions.key_versions(clinic_id, key)
        if found is None or found.published is None:
            continue
        await Menu.filter(clinic_id=clinic_id, title_ja=title, questionnaire_id=None).update(
            questionnaire_id=key
        )
    return published
