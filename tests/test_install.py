"""Installing as the README says, into a new virtualenv, from a fresh clone.

The README's install lines are run as written, one after the other, in a
copy of the files a clone has (the tracked ones): a module that was never
added to git, or an extra that installs the wrong package, fails here. Before
each extra's line its backend must be missing, with an error that names it
and the line to run; after it, the backend must build. Then the README's own
example serves requests from that virtualenv, its named session on a real
Redis server. ``make dist`` is run in such a copy too.

pip's cache makes the downloads cheap; nothing is installed with
``--no-deps`` or borrowed from the test environment.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import redis

from tipsessions import __version__

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

#: What each extra's line must make importable, and the backend it brings.
EXTRAS = {
    "redis": ("redis", "redis"),
    "memcache": ("pymemcache", "memcache"),
    "datastore": ("google.cloud.datastore", "datastore"),
    "templates": ("jinja2", None),
    "testing": ("webtest", None),
}

#: Builds the backend named on the command line as an application would,
#: and says what happened.
PROBE = """
import sys
import webapp2
import tipsessions

try:
    tipsessions.SessionStore(
        webapp2.Request.blank("/"),
        config={"secret_key": "install-check-secret-0123456789", "default_backend": sys.argv[1]},
    )
except tipsessions.ConfigError as error:
    print(f"ConfigError: {error}")
else:
    print("built")
"""

#: Serves the README's example: two visits, a POST that flashes and
#: redirects, and the page that shows the flash. Its named session goes to
#: the Redis server given on the command line.
DRIVER = """
import runpy
import sys
from http.cookies import SimpleCookie

import webob

app = runpy.run_path(sys.argv[1])["app"]
app.config["tipsessions"]["redis"] = {"url": sys.argv[2], "prefix": sys.argv[3]}
jar = {}


def request(method):
    sent = webob.Request.blank("/", method=method)
    if jar:
        sent.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
    response = sent.get_response(app)
    for header in response.headers.getall("Set-Cookie"):
        for name, morsel in SimpleCookie(header).items():
            if morsel["max-age"] == "0":
                jar.pop(name, None)
            else:
                jar[name] = morsel.value
    return response


for method in ("GET", "GET", "POST", "GET"):
    response = request(method)
    print(response.status_int, response.text if response.status_int == 200 else "")
"""


def readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def readme_install_lines() -> list[str]:
    """The ``pip install`` lines of the README's Install section, comments dropped."""
    (block,) = re.findall(r"```sh\n(.*?)```", readme_section("Install"), re.S)
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    return [line for line in lines if line.startswith("pip install")]


def readme_example() -> str:
    """The first Python block of the README's Use section."""
    return re.findall(r"```python\n(.*?)```", readme_section("Use"), re.S)[0]


def fresh_clone(destination: Path) -> Path:
    """The files a clone of this checkout has, as they are in the working tree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    for name in filter(None, listed.split(b"\0")):
        source = ROOT / os.fsdecode(name)
        if source.is_file():  # a file deleted but not yet committed is skipped
            target = destination / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


class Virtualenv:
    """A new virtualenv, with nothing from the environment running the tests."""

    def __init__(self, path: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
        self.python = path / "bin" / "python"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
        }
        self.env.update(
            PATH=f"{path / 'bin'}{os.pathsep}{os.environ['PATH']}",
            VIRTUAL_ENV=str(path),
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            PIP_NO_INPUT="1",
            # The datastore client is built without contacting anything.
            DATASTORE_EMULATOR_HOST="127.0.0.1:9",
            DATASTORE_PROJECT_ID="install-check",
        )

    def shell(self, line: str, cwd: Path) -> None:
        """Run a README line as a user types it in the activated virtualenv."""
        done = subprocess.run(
            ["bash", "-c", line], cwd=cwd, env=self.env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"{line!r} failed:\n{done.stdout}\n{done.stderr}"

    def run(self, *args: str, cwd: Path) -> str:
        done = subprocess.run(
            [str(self.python), *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def imports(self, module: str, cwd: Path) -> bool:
        done = subprocess.run(
            [str(self.python), "-c", f"import {module}"],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            timeout=120,
        )
        return done.returncode == 0


def test_the_readme_installs_the_package_and_every_extra() -> None:
    lines = readme_install_lines()
    assert lines[0] == "pip install ."
    assert lines[1:] == [f"pip install '.[{extra}]'" for extra in EXTRAS]


def test_no_page_installs_tipsessions_by_name_from_an_index() -> None:
    pages = [README, *sorted((ROOT / "docs").rglob("*.rst"))]
    by_name = re.compile(r"pip install ['\"]?tipsessions\b")
    assert [str(page) for page in pages if by_name.search(page.read_text(encoding="utf-8"))] == []


def test_a_fresh_clone_installs_by_the_readme_and_runs_its_example(
    tmp_path: Path, redis_url: str, unique_prefix: str
) -> None:
    clone = fresh_clone(tmp_path / "tipsessions")
    elsewhere = tmp_path / "app"  # not the clone: imports must find the installed copy
    elsewhere.mkdir()
    (elsewhere / "probe.py").write_text(PROBE)
    venv = Virtualenv(tmp_path / "venv")

    base, *extra_lines = readme_install_lines()
    venv.shell(base, cwd=clone)
    assert venv.run("-c", "import tipsessions; print(tipsessions.__version__)", cwd=elsewhere) == (
        __version__
    )
    assert venv.run("-m", "tipsessions", "--version", cwd=elsewhere) == f"tipsessions {__version__}"
    assert venv.run("probe.py", "securecookie", cwd=elsewhere) == "built"

    for line, (module, backend) in zip(extra_lines, EXTRAS.values(), strict=True):
        assert not venv.imports(module, cwd=elsewhere), f"{module} came before {line!r}"
        if backend is not None:
            missing = venv.run("probe.py", backend, cwd=elsewhere)
            assert missing.startswith(f"ConfigError: {backend}: the {backend} backend needs ")
            assert line.removeprefix("pip install ") in missing, missing
        venv.shell(line, cwd=clone)
        assert venv.imports(module, cwd=elsewhere), f"{line!r} did not install {module}"
        if backend is not None:
            assert venv.run("probe.py", backend, cwd=elsewhere) == "built"

    (elsewhere / "example.py").write_text(readme_example())
    (elsewhere / "driver.py").write_text(DRIVER)
    served = venv.run("driver.py", "example.py", redis_url, unique_prefix, cwd=elsewhere)
    assert served.splitlines() == [
        "200 visits: 1",
        "200 visits: 2",
        "302 ",
        "200 <p class=success>Added to cart</p>visits: 3",
    ]
    # The named session went to Redis, under the configured prefix.
    assert redis.Redis.from_url(redis_url).keys(f"{unique_prefix}*")


def test_make_dist_builds_a_checked_sdist_and_wheel(tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path / "tipsessions")
    venv = Path(sys.prefix)
    # This environment's build and twine; -o keeps make from reinstalling it.
    done = subprocess.run(
        ["make", "dist", f"VENV={venv}", "-o", f"{venv}/.installed"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED" in done.stdout  # twine check, once per file

    built = sorted(path.name for path in (clone / "dist").iterdir())
    assert built == [
        f"tipsessions-{__version__}-py3-none-any.whl",
        f"tipsessions-{__version__}.tar.gz",
    ]
    with zipfile.ZipFile(clone / "dist" / built[0]) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"tipsessions-{__version__}.dist-info/METADATA").decode()
    assert {
        "tipsessions/py.typed",
        "tipsessions/_version.py",
        "tipsessions/backends/redis.py",
    } <= names
    assert not any(name.startswith(("tests/", "sample_app/", "config/")) for name in names)
    assert f"Version: {__version__}" in metadata
    for extra in EXTRAS:
        assert f"Provides-Extra: {extra}" in metadata
    with tarfile.open(clone / "dist" / built[1]) as sdist:
        members = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"README.md", "setup.py", "tipsessions/_version.py", "tests/test_install.py"} <= members
