"""The ```python blocks of the README and of the pages in docs/ run, so they stay true.

Each block runs on its own (``exec`` in a fresh namespace, in a temporary working directory)
on the test session's Ray; ``ray.init()`` and ``init_local_ray()`` in a block join that
session (and ``shutdown_local_ray()`` leaves it running). Conventions:

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

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The pages whose blocks run: the README, then docs/ in name order.
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
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
    # Moving's episodes last up to 201 steps: 225 per env (of 8) completes one on each, so
    # the block's episode_return_mean exists.
    ("num_epochs=10, minibatch_size=320,\n              train_batch_size_per_learner=3200)",
     "num_epochs=1, minibatch_size=600,\n              train_batch_size_per_learner=1800)"),
]


@dataclass
class Block:
    page: str  # relative to the repository root
    line: int  # of the opening fence
    code: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def skip_reason(self) -> str | None:
        first = self.code.lstrip().splitlines()[0] if self.code.strip() else ""
        match = NOT_RUN.fullmatch(first.strip())
        return match["reason"].strip() if match else None


def python_blocks(text: str, page: str = "README.md") -> list[Block]:
    """The ```python blocks of one page, in order."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(text.splitlines(), start=1):
        if current is None and line.strip() == "```python":
            current, start = [], number
        elif current is not None and line.strip() == "```":
            blocks.append(Block(page, start, "\n".join(current) + "\n"))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


BLOCKS = [block for page in PAGES
          for block in python_blocks(page.read_text(), str(page.relative_to(ROOT)))]


def test_the_pages_have_python_blocks_and_they_compile():
    assert sum(block.page == "README.md" for block in BLOCKS) >= 1
    assert len({block.page for block in BLOCKS}) >= 8 and len(BLOCKS) >= 10
    for block in BLOCKS:
        compile(block.code, block.where, "exec")


def test_every_budget_patch_still_applies():
    code = "".join(block.code for block in BLOCKS)
    missing = [old for old, _ in BUDGETS if old not in code]
    assert not missing, f"a page changed; update BUDGETS in {__file__}: {missing}"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_readme_python_block_runs(block, ray_session, tmp_path, monkeypatch):
    if block.skip_reason:
        pytest.skip(f"{block.where}: {block.skip_reason}")
    import ray

    from rllib_ext.core import ray_session as sessions

    monkeypatch.chdir(tmp_path)
    # The session's Ray is running: a block's ray.init() / init_local_ray() joins it.
    monkeypatch.setattr(ray, "init", lambda *args, **kwargs: None)
    monkeypatch.setattr(sessions, "init_local_ray",
                        lambda **kwargs: ray.get_runtime_context().gcs_address)
    monkeypatch.setattr(sessions, "shutdown_local_ray", lambda: None)
    code = block.code
    for old, new in BUDGETS:
        code = code.replace(old, new.replace("{tmp}", str(tmp_path)))
    namespace = {"__name__": f"README_{block.line}"}
    try:
        exec(compile(code, block.where, "exec"), namespace)
    finally:
        algo = namespace.get("algo")
        if algo is not None and hasattr(algo, "stop"):
            algo.stop()


def test_the_cli_pages_config_file_example_is_a_valid_experiment(tmp_path):
    """The annotated ```yaml experiment file (every top-level key) passes `rllib-ext check
    --dry-run`: loading, the algorithm config's validate() and every point of its sweep."""
    from rllib_ext.cli.main import main

    text = (ROOT / "docs" / "cli.md").read_text()
    start = text.index("```yaml\nalgorithm:") + len("```yaml\n")
    example = text[start:text.index("```", start)]
    assert "final_evaluation:" in example and "tune:" in example and "pass:" in example
    path = tmp_path / "example.yaml"
    path.write_text(example)
    assert main(["check", "--dry-run", str(path)]) == 0
