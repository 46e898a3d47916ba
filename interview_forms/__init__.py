"""Interview forms (問診): FHIR R4 Questionnaire definitions, the branching engine and responses."""

__all__: list[str] = []
