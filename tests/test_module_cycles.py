"""tests/check-module-cycles.py: it passes on an acyclic crate and fails naming the loop it found."""
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "check-module-cycles.py"


def crate(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "src"


def check(src: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(src)], capture_output=True, text=True)


def test_a_pipeline_without_loops_passes(tmp_path):
    src = crate(tmp_path, {
        "lib.rs": "pub mod job;\npub mod launch;\n",
        "job/mod.rs": "pub mod record;\n",
        "job/record.rs": "pub struct Job;\n",
        "launch/mod.rs": "pub mod plan;\n",
        # a doc link, a comment and a unit test's `use super::*` are not dependencies
        "launch/plan.rs": "//! See [`crate::launch`].\nuse crate::{job::record::Job, text};\n// crate::launch::plan\n"
                          "#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
        "text.rs": "pub fn f() {}\n",
    })
    result = check(src)
    assert result.returncode == 0, result.stderr
    assert "none" in result.stdout


def test_two_modules_importing_each_other_fail_with_the_loop(tmp_path):
    src = crate(tmp_path, {
        "lib.rs": "pub mod config;\npub mod cost;\n",
        "config.rs": "pub struct Prices(crate::cost::PriceTable);\n",
        "cost.rs": "use crate::config::is_region;\npub struct PriceTable;\n",
    })
    result = check(src)
    assert result.returncode == 1
    assert "config -> cost -> config" in result.stderr


def test_a_longer_loop_through_braces_and_super_fails(tmp_path):
    src = crate(tmp_path, {
        "lib.rs": "pub mod outcome;\n",
        "outcome/mod.rs": "pub mod a;\npub mod b;\npub mod c;\n",
        "outcome/a.rs": "use crate::outcome::{b::{B, D}};\npub struct A;\n",
        "outcome/b.rs": "use super::c::C;\npub struct B;\npub struct D;\n",
        "outcome/c.rs": "pub struct C(crate::outcome::a::A);\n",
    })
    result = check(src)
    assert result.returncode == 1
    assert "outcome::a -> outcome::b -> outcome::c -> outcome::a" in result.stderr
