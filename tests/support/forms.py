"""A small questionnaire for tests of the patient's form: two sections, a condition, a repeating
group, a photo and an emergency outcome."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from interview_forms.models import QuestionnaireVersion, VersionStatus

OUTCOME = "https://tsunagu.dev/fhir/StructureDefinition/outcome"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"

DEFINITION: dict[str, Any] = {
    "resourceType": "Questionnaire",
    "url": "https://tsunagu.dev/fhir/Questionnaire/test/fever",
    "version": "1",
    "name": "fever",
    "title": "発熱の問診",
    "status": "active",
    "extension": [
        {
            "url": OUTCOME,
            "extension": [
                {"url": "id", "valueId": "breathless"},
                {"url": "action", "valueCode": "call-ambulance"},
                {
                    "url": "condition",
                    "extension": [
                        {"url": "question", "valueString": "breathing"},
                        {"url": "operator", "valueCode": "="},
                        {"url": "answer", "valueBoolean": True},
                    ],
                },
                {"url": "behavior", "valueCode": "any"},
                {
                    "url": "message-ja",
                    "valueString": "息苦しさが強い場合は救急車を呼んでください。",
                },
                {"url": "message-en", "valueString": "If you are badly short of breath, call 119."},
            ],
        }
    ],
    "item": [
        {
            "linkId": "now",
            "type": "group",
            "text": "いまの症状",
            "item": [
                {"linkId": "fever", "type": "boolean", "text": "熱がありますか", "required": True},
                {
                    "linkId": "temp",
                    "type": "decimal",
                    "text": "体温",
                    "required": True,
                    "enableWhen": [{"question": "fever", "operator": "=", "answerBoolean": True}],
                    "extension": [
                        {"url": MIN_VALUE, "valueDecimal": 34.0},
                        {"url": MAX_VALUE, "valueDecimal": 43.0},
                    ],
                },
                {"linkId": "breathing", "type": "boolean", "text": "息苦しいですか"},
            ],
        },
        {
            "linkId": "history",
            "type": "group",
            "text": "お薬と写真",
            "item": [
                {
                    "linkId": "meds",
                    "type": "group",
                    "text": "飲んでいるお薬",
                    "repeats": True,
                    "item": [
                        {"linkId": "med_name", "type": "string", "text": "薬の名前"},
                        {"linkId": "dose", "type": "integer", "text": "1日の回数"},
                    ],
                },
                {"linkId": "notebook", "type": "attachment", "text": "お薬手帳の写真"},
            ],
        },
    ],
}


async def publish(clinic_id: str, key: str = "fever", body: dict[str, Any] | None = None) -> str:
    now = datetime.now(UTC)
    version = await QuestionnaireVersion.create(
        clinic_id=clinic_id,
        key=key,
        version=1,
        status=VersionStatus.PUBLISHED,
        title="発熱の問診",
        body=body or DEFINITION,
        created_at=now,
        updated_at=now,
        published_at=now,
    )
    return str(version.id)
