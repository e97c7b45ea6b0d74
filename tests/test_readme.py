"""The README's ```python blocks run, so they stay true.

Each block runs on its own (``exec`` in a fresh namespace, in a temporary working directory)
on the test session's Ray; ``ray.init()`` in a block joins that session. Conventions:

* a block whose first line is ``# not run in tests: <reason>`` is skipped with that reason
  (e.g. it needs a Ray cluster); the skip and the reason show in pytest's report (``-rs``);
* long trainings run with smaller budgets: :data:`BUDGETS` replaces text in every block, and
  :func:`test_every_budget_patch_still_applies` fails when the README no longer has the text,
  so a patch cannot silently stop applying;
* an ``algo`` a block builds is stopped after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
#: First line of a block that the test skips: the rest of the line is the reason.
NOT_RUN = re.compile(r"#\s*not run in tests:\s*(?P<reason>.+)")
#: (text in the README, what runs instead): the budgets of long trainings; ``{tmp}`` is the
#: test's temporary directory.
BUDGETS = [
    ("for _ in range(50):                  # ~100k env steps",
     "for _ in range(1):                   # ~100k env steps"),
    ('algo.save_to_path("/tmp/pg_cartpole")', 'algo.save_to_path("{tmp}/pg_cartpole")'),
    ('stop={"num_env_steps_sampled_lifetime": 100_000}',
     'stop={"num_env_steps_sampled_lifetime": 100}, storage_path="{tmp}/tune"'),
    ('lr=tune.grid_search([1e-3, 5e-3]))', 'lr=tune.grid_search([1e-3, 5e-3]),\n'
     '    train_batch_size_per_learner=100)'),
]


@dataclass
class Block:
    line: int  # of the opening fence in README.md
    code: str

    @property
    def skip_reason(self) -> str | None:
        first = self.code.lstrip().splitlines()[0] if self.code.strip() else ""
        match = NOT_RUN.fullmatch(first.strip())
        return match["reason"].strip() if match else None


def python_blocks(text: str) -> list[Block]:
    """The README's ```python blocks, in order."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(text.splitlines(), start=1):
        if current is None and line.strip() == "```python":
            current, start = [], number
        elif current is not None and line.strip() == "```":
            blocks.append(Block(start, "\n".join(current) + "\n"))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


BLOCKS = python_blocks(README.read_text())


def test_the_readme_has_python_blocks_and_they_compile():
    assert len(BLOCKS) >= 8
    for block in BLOCKS:
        compile(block.code, f"README.md:{block.line}", "exec")


def test_every_budget_patch_still_applies():
    code = "".join(block.code for block in BLOCKS)
    missing = [old for old, _ in BUDGETS if old not in code]
    assert not missing, f"README.md changed; update BUDGETS in {__file__}: {missing}"


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{b.line}" for b in BLOCKS])
def test_readme_python_block_runs(block, ray_session, tmp_path, monkeypatch):
    if block.skip_reason:
        pytest.skip(f"README.md:{block.line}: {block.skip_reason}")
    import ray

    monkeypatch.chdir(tmp_path)
    # The session's Ray is running: a block's ray.init() joins it.
    monkeypatch.setattr(ray, "init", lambda *args, **kwargs: None)
    code = block.code
    for old, new in BUDGETS:
        code = code.replace(old, new.replace("{tmp}", str(tmp_path)))
    namespace = {"__name__": f"README_{block.line}"}
    try:
        exec(compile(code, f"README.md:{block.line}", "exec"), namespace)
    finally:
        algo = namespace.get("algo")
        if algo is not None and hasattr(algo, "stop"):
            algo.stop()
