"""FHIRPath for SDC ``calculatedExpression``, through the ``fhirpathpy`` library (adapter).

``fhirpathpy`` recovers silently from syntax errors, so :func:`syntax_error` parses with the same
ANTLR grammar it ships, through the ``entireExpression`` rule (which must reach the end of the text)
and an error listener that records the first error. Unknown functions only show when evaluated:
:func:`check` also evaluates the expression once against an empty response.

Expressions see ``%resource`` (the QuestionnaireResponse being filled in) and ``%context`` (the
same, since calculated items outside repeating groups have the response as their context).
Decimals come back from fhirpathpy as :class:`decimal.Decimal`; :func:`evaluate` returns floats.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any, cast

import fhirpathpy
from antlr4 import CommonTokenStream, InputStream
from antlr4.error.ErrorListener import ErrorListener
from fhirpathpy.models import models
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

from .values import JSON

_R4: dict[str, Any] = models["r4"]
_EMPTY_RESPONSE: dict[str, JSON] = {
    "resourceType": "QuestionnaireResponse",
    "status": "in-progress",
}


class _FirstError(ErrorListener):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.error: str | None = None

    def syntaxError(
        self, recognizer: Any, offendingSymbol: Any, line: int, column: int, msg: str, e: Any
    ) -> None:
        if self.error is None:
            self.error = f"{column + 1}: {msg.split(' expecting ')[0]}"


def syntax_error(expression: str) -> str | None:
    """``None`` when ``expression`` is well-formed FHIRPath, else where and what is wrong."""
    listener = _FirstError()
    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(listener)
    parser = FHIRPathParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    try:
        parser.entireExpression()  # type: ignore[no-untyped-call]
    except Exception as error:  # ANTLR raises for some lexer errors
        return listener.error or str(error) or type(error).__name__
    return listener.error


def check(expression: str) -> str | None:
    """Like :func:`syntax_error`, and also rejects functions fhirpathpy does not implement."""
    error = syntax_error(expression)
    if error is not None:
        return error
    try:
        evaluate(expression, _EMPTY_RESPONSE)
    except Exception as error:  # fhirpathpy raises bare Exception
        return str(error) or type(error).__name__
    return None


@lru_cache(maxsize=512)
def _compiled(expression: str) -> Callable[..., list[Any]]:
    return cast(Callable[..., list[Any]], fhirpathpy.compile(expression, _R4))


def evaluate(expression: str, response: dict[str, JSON]) -> list[JSON]:
    """The result collection of ``expression`` over ``response``; may raise on a runtime error."""
    result = _compiled(expression)(response, {"resource": response, "context": response})
    return [_plain(v) for v in result]


def _plain(value: Any) -> JSON:
    return float(value) if isinstance(value, Decimal) else value
