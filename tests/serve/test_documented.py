"""docs/service.md says what the service does: the endpoint table names every field of an
answer, and the error table puts the reasons cap under the status the service returns."""

from pathlib import Path

from polarity.serve.schemas import AnalyzeResponse

DOC = (Path(__file__).parents[2] / "docs" / "service.md").read_text()


def _row(start: str) -> str:
    return next(line for line in DOC.splitlines() if line.startswith(start))


def test_the_endpoint_table_names_every_answer_field():
    row = _row("| `POST /api/v1/analyze` |")
    missing = [f for f in AnalyzeResponse.model_fields if f'"{f}"' not in row]
    assert not missing, f"docs/service.md endpoint table lacks {missing}"


def test_the_reasons_cap_is_documented_as_the_400_it_is():
    # tests/serve/test_abuse.py::test_reasons_are_capped_per_request asserts the 400 itself
    assert "MAX_REASONING_TEXTS" in _row("| 400 |")
    assert "MAX_REASONING_TEXTS" not in _row("| 413 |")
