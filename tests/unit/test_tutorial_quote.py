"""docs/connectors.md's first step quotes tests/data/tutorial_package/tutorial_connector.py whole, and that file
stays what the step promises: a minimal relay connector, its context never ``None``, no asserts.
(tests/integration/test_tutorial_connector.py runs it through the conformance kit.) Section 9 quotes
the package's kit test whole, the file a connector author writes."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "connectors.md"
PACKAGE = ROOT / "tests" / "data" / "tutorial_package"
TUTORIAL = PACKAGE / "tutorial_connector.py"
KIT_TEST = PACKAGE / "test_tutorial_kit.py"
KIT_MARKER = "<!-- quoted whole from tests/data/tutorial_package/test_tutorial_kit.py -->\n```python\n"
MARKER = "<!-- quoted whole from tests/data/tutorial_package/tutorial_connector.py -->\n```python\n"


def quoted_block(text: str, marker: str) -> str:
    start = text.index(marker) + len(marker)
    return text[start:text.index("```", start)]


def test_the_first_step_quotes_the_tested_file_exactly() -> None:
    assert quoted_block(DOC.read_text(), MARKER) == TUTORIAL.read_text()


def test_the_testing_section_quotes_the_packages_kit_test_exactly() -> None:
    assert quoted_block(DOC.read_text(), KIT_MARKER) == KIT_TEST.read_text()


def test_the_first_step_is_a_minimal_connector_without_a_maybe_missing_context() -> None:
    source = TUTORIAL.read_text()
    assert len(source.splitlines()) <= 60
    assert "| None" not in source
    assert "assert" not in source


def test_memonets_construction_in_the_doc_is_memonets_code() -> None:
    block = quoted_block(DOC.read_text(), "Construction, and the required methods (`NetworkConnector`):\n\n```python\n")
    assert block in (ROOT / "bridgekit" / "testing" / "memonet.py").read_text()
