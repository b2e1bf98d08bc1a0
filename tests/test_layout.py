"""The layout keeps its promises (issue 13): SQL only in store/, no import cycles, small modules and
functions, the contract vocabulary free of mail and SQL, and README's Layout naming every package."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "store", "templates")
MAX_MODULE_LINES = 420          # "about 400"
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for top in PACKAGES:
        for p in (ROOT / top).rglob("*.py"):
            name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = p
    return out


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """The lesbot modules a module imports (at module level or inside functions)."""
    found = set()

    def resolve(name):
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        return name

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {resolve(a.name) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                found.add(resolve(full) if full in MODULES else resolve(node.module))
    return {m for m in found if m}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_sql_runs_only_in_store():
    offenders = [f"{p.relative_to(ROOT)}:{n}" for name, p in MODULES.items() if not name.startswith("store")
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if re.search(r"\.execute(many|script)?\(", line)]
    assert offenders == []


def test_store_depends_on_nothing_above_it():
    wrong = {name: sorted(m for m in _imports(p) if not m.startswith("store"))
             for name, p in MODULES.items() if name.startswith("store")}
    assert {k: v for k, v in wrong.items() if v} == {}


def test_the_contract_vocabulary_holds_no_mail_and_no_sql():
    wrong = {name: sorted(m for m in _imports(p) if m.startswith(("bot", "store")))
             for name, p in MODULES.items() if name.startswith("handlers.contract")}
    assert {k: v for k, v in wrong.items() if v} == {}


def test_bot_holds_no_contract_rules():
    """The mail machinery reaches the services only through the handler registry and the
    handlers' base types; the contract vocabulary it may use (references, periods) is shared."""
    allowed = ("handlers", "handlers.base", "handlers.contract", "handlers.clock")
    wrong = {name: sorted(m for m in _imports(p) if m.startswith("handlers") and not m.startswith(allowed)
                          and not name.startswith("bot.cli"))
             for name, p in MODULES.items() if name.startswith("bot")}
    assert {k: v for k, v in wrong.items() if v} == {}


def test_no_import_cycles():
    graph = {name: _imports(p) for name, p in MODULES.items()}
    assert _cycles(graph) == []


def test_a_cycle_is_seen_when_there_is_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_modules_and_functions_stay_small():
    long_modules = {str(p.relative_to(ROOT)): n for p in MODULES.values()
                    if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    long_functions = []
    for name, p in MODULES.items():
        if name == "store.migrations":
            continue          # one function per schema version, written once
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = node.end_lineno - node.lineno + 1
                if size > MAX_FUNCTION_LINES:
                    long_functions.append(f"{p.relative_to(ROOT)}:{node.name} ({size} lines)")
    assert long_modules == {} and long_functions == []


def _layout_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("\n## Layout", 1)[1].split("\n## ", 1)[0]


def test_readme_layout_names_every_package():
    section = _layout_section()
    packages = sorted({".".join(p.parent.relative_to(ROOT).parts) for p in ROOT.glob("*/**/__init__.py")
                       if p.parent.relative_to(ROOT).parts[0] in PACKAGES})
    missing = [pkg for pkg in packages if f"{pkg.replace('.', '/')}/" not in section]
    assert packages and missing == []
