"""``extra_requirements.txt`` covers what the recipe imports (static test).

Every absolute import of the recipe scripts and of the ``speechbrain_ssps``
package they run must be the standard library, this project's own code,
SpeechBrain or one of its requirements (torch, numpy, scipy, soundfile,
hyperpyyaml, ...), or a package of the recipe's ``extra_requirements.txt``
(or one of its requirements); and every package listed there must be
imported somewhere and installed by the root ``setup.py``.
"""

import ast
import importlib.metadata as metadata
import os
import re
import sys

import pytest
from recipe_helpers import RECIPE

ROOT = os.path.abspath(os.path.join(RECIPE, "..", "..", ".."))
PACKAGE = os.path.join(ROOT, "speechbrain_ssps")
EXTRA = os.path.join(RECIPE, "extra_requirements.txt")
# Import names whose distribution has another name, when not installed.
ALIASES = {"sklearn": "scikit-learn", "faiss": "faiss-cpu"}


def _norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(spec):
    return _norm(re.match(r"\s*([A-Za-z0-9._-]+)", spec).group(1))


def python_files():
    """The recipe scripts and every module of the package."""
    files = [
        os.path.join(RECIPE, f) for f in os.listdir(RECIPE) if f.endswith(".py")
    ]
    for folder, _, names in os.walk(PACKAGE):
        files += [os.path.join(folder, f) for f in names if f.endswith(".py")]
    return sorted(files)


def imported_modules(path):
    """Top-level names of the absolute imports of one file (any depth)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def extra_requirements():
    """Normalised distribution names of ``extra_requirements.txt``."""
    with open(EXTRA, encoding="utf-8") as f:
        lines = [ln.split("#")[0].strip() for ln in f]
    return {_requirement_name(ln) for ln in lines if ln}


def closure(names):
    """``names`` and everything they require (installed metadata)."""
    seen, stack = set(), [_norm(n) for n in names]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        stack += [_requirement_name(r) for r in requires if "extra ==" not in r]
    return seen


def setup_requirements():
    """``install_requires`` of the root ``setup.py`` (normalised names)."""
    with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            return {_requirement_name(s) for s in ast.literal_eval(node.value)}
    raise AssertionError("setup.py has no install_requires")


def test_every_import_is_covered():
    if not hasattr(metadata, "packages_distributions"):
        pytest.skip("needs Python >= 3.10")
    distributions = metadata.packages_distributions()
    local = {"speechbrain_ssps"} | {
        f[:-3] for f in os.listdir(RECIPE) if f.endswith(".py")
    }
    covered = closure(["speechbrain"]) | closure(extra_requirements())
    missing = {}
    for path in python_files():
        for name in imported_modules(path):
            if name in sys.stdlib_module_names or name in local:
                continue
            dists = distributions.get(name) or [ALIASES.get(name, name)]
            if not {_norm(d) for d in dists} & covered:
                missing.setdefault(name, []).append(os.path.relpath(path, ROOT))
    assert not missing, f"imports not in {EXTRA} nor SpeechBrain's: {missing}"


def test_extra_requirements_are_used_and_installed():
    if not hasattr(metadata, "packages_distributions"):
        pytest.skip("needs Python >= 3.10")
    imported = set()
    for path in python_files():
        imported |= imported_modules(path)
    distributions = metadata.packages_distributions()
    used = {ALIASES.get(n, n) for n in imported}
    used |= {d for n in imported for d in distributions.get(n, [])}
    extra = extra_requirements()
    assert extra, EXTRA
    assert extra <= {_norm(u) for u in used}, "a listed package is not used"
    assert extra <= setup_requirements(), "setup.py must install them too"
