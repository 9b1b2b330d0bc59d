"""extract_code over the shapes answers come in."""

from __future__ import annotations

import ast

import pytest

from rewardgen.llm.extract import extract_code
from rewardgen.sandbox.validate import check_source

FN = "def compute_reward(state, action, prev_state):\n    r = float(state.x_velocity)\n    return r, {'r': r}\n"


@pytest.mark.parametrize("lang", ["python", "py", "Python3", ""])
def test_single_fenced_block_any_language_tag(lang: str) -> None:
    text = f"Here you go.\n\n```{lang}\n{FN}```\n\nThis rewards speed."
    assert extract_code(text) == FN


def test_tilde_fence_and_indented_fence() -> None:
    assert extract_code(f"~~~python\n{FN}~~~") == FN
    assert extract_code(f"Answer:\n  ```python\n{FN}  ```\n") == FN


def test_picks_the_block_that_defines_the_entry_and_merges_what_it_uses() -> None:
    text = (
        "First the imports:\n```python\nimport numpy as np\nimport math\n```\n"
        "A helper:\n```python\ndef speed(state):\n    return float(np.clip(state.x_velocity, -LIMIT, LIMIT))\n\n"
        "LIMIT = 3.0\n\ndef unused():\n    return 1\n```\n"
        "Usage example:\n```bash\npython train.py\n```\n"
        "The reward:\n```python\ndef compute_reward(state, action, prev_state):\n"
        "    s = speed(state)\n    return s, {'speed': s}\n```\n"
    )
    code = extract_code(text)
    assert code is not None
    check_source(code)
    tree = ast.parse(code)
    top = [getattr(n, "name", None) for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert top == ["speed", "compute_reward"]
    assert "LIMIT = 3.0" in code and "import numpy as np" in code
    assert "unused" not in code and "import math" not in code and "train.py" not in code


def test_last_definition_wins_over_a_draft() -> None:
    draft = FN.replace("x_velocity", "draft_velocity")
    text = f"Draft:\n```python\n{draft}```\nImproved:\n```python\n{FN}```\n"
    assert extract_code(text) == FN


def test_missing_numpy_import_is_added() -> None:
    fn = "def compute_reward(state, action, prev_state):\n    c = -float(np.sum(action ** 2))\n    return c, {'c': c}\n"
    code = extract_code(f"```python\n{fn}```")
    assert code is not None
    assert code.startswith("import numpy as np\n")
    check_source(code)


def test_helpers_in_the_same_block_are_kept() -> None:
    block = "import math\n\ndef bonus(h):\n    return math.exp(-h)\n\n" + FN.replace(
        "r = float(", "r = bonus(0.0) + float("
    )
    code = extract_code(f"```python\n{block}```")
    assert code == block


def test_no_fences_prose_around_code() -> None:
    text = (
        "Sure, here is my proposal.\n"
        "import numpy as np\n\n"
        "def helper(v):\n    return np.tanh(v)\n\n"
        "def compute_reward(state, action, prev_state):\n"
        "    r = helper(state.x_velocity)\n\n"
        "    return r, {'r': r}\n"
        "This reward uses tanh to bound the speed term.\n"
        "Hope this helps!\n"
    )
    code = extract_code(text)
    assert code is not None
    check_source(code)
    assert "Sure" not in code and "Hope" not in code and "tanh to bound" not in code
    assert code.startswith("import numpy as np") and code.rstrip().endswith("return r, {'r': r}")


def test_unclosed_fence_of_a_truncated_answer_returns_the_partial_code() -> None:
    code = extract_code(
        "```python\ndef compute_reward(state, action, prev_state):\n    r = (state."
    )
    assert code is not None and code.startswith("def compute_reward")


def test_broken_code_is_returned_for_the_validator_to_report() -> None:
    code = extract_code(
        "```python\ndef compute_reward(state, action, prev_state)\n    return 0\n```"
    )
    assert code is not None
    with pytest.raises(Exception, match="syntax error"):
        check_source(code)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "I would reward forward velocity.",
        "```python\ndef reward(state):\n    return 1\n```",
        "```json\n{}\n```",
    ],
)
def test_none_without_the_entry_function(text: str) -> None:
    assert extract_code(text) is None


def test_other_entry_name() -> None:
    prog = "def progress(state):\n    return min(1.0, state.x_position / 5.0)\n"
    text = f"```python\n{FN}```\n```python\n{prog}```"
    assert extract_code(text, entry="progress") == prog
    assert extract_code(text) == FN
