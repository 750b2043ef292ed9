"""``--completion bash|zsh|fish``: scripts that the shells load, and that
complete the options, their choices and their paths."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from downloader.cli import build_parser
from test_cli import REPO_ROOT, assert_usage_error

LONG_OPTIONS = sorted({name for action in build_parser()._actions
                       for name in action.option_strings if name.startswith("--")})


@pytest.fixture
def needs_shtab() -> None:
    pytest.importorskip("shtab", reason="the [completion] extra is not installed")


def shell(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def script(cli, tmp_path: Path, name: str) -> Path:
    proc = cli("--completion", name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    path = tmp_path / f"completion.{name}"
    path.write_text(proc.stdout)
    return path


def run(args: list[str], cwd: Path) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=30,
                          env={**os.environ, "HOME": str(cwd)})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("name", ["bash", "zsh", "fish"])
def test_every_long_option_is_in_every_script(cli, tmp_path, needs_shtab, name):
    text = script(cli, tmp_path, name).read_text()
    missing = [option for option in LONG_OPTIONS if option not in text
               and option.lstrip("-") not in text]  # fish writes `-l dry-run`
    assert missing == []


def test_bash_loads_the_script_and_completes_options_choices_and_paths(cli, tmp_path,
                                                                      needs_shtab):
    path = script(cli, tmp_path, "bash")
    (tmp_path / "urls.txt").write_text("")
    (tmp_path / "unrelated").mkdir()
    bash = shell("bash")

    assert "downloader" in run([bash, "-c", f"source {path} && complete -p downloader"],
                               tmp_path)

    # What Tab offers after each command line, as bash would ask the function.
    probe = f"""source {path}
function_name=$(complete -p downloader | sed -E 's/.*-F ([^ ]+).*/\\1/')
offer() {{
    COMP_WORDS=("$@"); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
    COMP_LINE="$*"; COMP_POINT=${{#COMP_LINE}}; COMPREPLY=()
    "$function_name" downloader "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
    echo "${{COMPREPLY[*]}}"
}}
offer downloader --if
offer downloader --if-exists ''
offer downloader --dry
offer downloader --completion ''
offer downloader -i u
offer downloader -d u
"""
    assert run([bash, "-c", probe], tmp_path).splitlines() == [
        "--if-exists",
        "skip overwrite update",
        "--dry-run",
        "bash zsh fish",
        "unrelated urls.txt",  # a folder may lead to the file
        "unrelated",  # -d takes a folder: no file is offered
    ]


def test_zsh_registers_the_completion_from_eval_and_from_fpath(cli, tmp_path, needs_shtab):
    path = script(cli, tmp_path, "zsh")
    zsh = shell("zsh")
    functions = tmp_path / "functions"
    functions.mkdir()
    shutil.copy(path, functions / "_downloader")
    # One shell (compinit is the slow part): found on $fpath, then eval'd.
    shown = run([zsh, "-fc", f"fpath=({functions} $fpath); autoload -U compinit; "
                             f"compinit -u -d {tmp_path}/zcompdump; "
                             "print -r -- $_comps[downloader]; unset '_comps[downloader]'; "
                             f'eval "$(<{path})"; print -r -- $_comps[downloader]'], tmp_path)

    from_fpath, from_eval = shown.splitlines()
    assert from_fpath == "_downloader" and from_eval.startswith("_")


def test_fish_completes_options_choices_and_folders(cli, tmp_path, needs_shtab):
    path = script(cli, tmp_path, "fish")
    (tmp_path / "urls.txt").write_text("")
    (tmp_path / "unrelated").mkdir()
    fish = shell("fish")

    def offers(line: str) -> list[str]:
        out = run([fish, "--no-config", "-c", f"source {path}; complete -C'{line}'"], tmp_path)
        return [entry.split("\t")[0] for entry in out.splitlines()]

    assert offers("downloader --if") == ["--if-exists"]
    assert offers("downloader --if-exists ") == ["skip", "overwrite", "update"]
    assert offers("downloader --progress ") == ["auto", "bar", "log", "none"]
    assert offers("downloader -d u") == ["unrelated/"]


def test_the_script_needs_no_url_and_a_bad_shell_is_a_usage_error(cli, needs_shtab):
    assert cli("--completion", "bash").returncode == 0
    line = assert_usage_error(cli("--completion", "tcsh"))
    assert "--completion" in line and "tcsh" in line


def test_without_shtab_the_error_says_what_to_install(cli, tmp_path):
    # A shtab that cannot be imported stands for one that is not installed.
    fake = tmp_path / "no-shtab"
    fake.mkdir()
    (fake / "shtab.py").write_text("raise ImportError('not installed')\n")

    proc = cli("--completion", "bash",
               env={"PYTHONPATH": os.pathsep.join([str(fake), str(REPO_ROOT)])})

    line = assert_usage_error(proc)
    assert line == ("downloader: error: --completion needs the shtab package: "
                    "pip install 'bulk-downloader[completion]'")
