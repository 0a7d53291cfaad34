"""Print the shape of the swarm package: modules per package, the largest files, and its import cycles.

    .venv/bin/python scripts/layout_report.py

The import graph is grimp's (installed with import-linter), which sees every import statement, those
inside functions and under TYPE_CHECKING included: a cycle a lazy import hides is still a cycle for a
reader. A cycle is a strongly connected component of more than one module; tests/test_layout.py keeps
their number at zero through `import_cycles`.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "swarm"
LARGEST = 10


def import_graph(package: str = PACKAGE) -> dict[str, set[str]]:
    """module -> the modules of `package` it imports (grimp's graph, external packages left out)."""
    import grimp

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(package, include_external_packages=False, cache_dir=None)
    return {module: set(graph.find_modules_directly_imported_by(module)) for module in graph.modules}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit on a deep import chain)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def import_cycles(package: str = PACKAGE) -> list[list[str]]:
    """Groups of modules of `package` that import each other, directly or through others (size > 1)."""
    return sorted(c for c in strongly_connected(import_graph(package)) if len(c) > 1)


def modules_per_package(root: Path = ROOT / PACKAGE) -> Counter[str]:
    """Python modules directly inside each package of `root` (its __init__.py included)."""
    counts: Counter[str] = Counter()
    for source in root.rglob("*.py"):
        if "__pycache__" not in source.parts:
            counts[".".join(source.parent.relative_to(root.parent).parts)] += 1
    return counts


def largest_files(root: Path = ROOT / PACKAGE, n: int = LARGEST) -> list[tuple[int, str]]:
    """The n longest modules of `root`, as (lines, path relative to the repository)."""
    sizes = [
        (len(source.read_text().splitlines()), source.relative_to(ROOT).as_posix())
        for source in root.rglob("*.py")
        if "__pycache__" not in source.parts
    ]
    return sorted(sizes, reverse=True)[:n]


def main() -> int:
    counts = modules_per_package()
    print(f"modules per package ({sum(counts.values())} modules in {len(counts)} packages):")
    for package, count in sorted(counts.items()):
        print(f"  {package:<28} {count:>3}")
    print("largest files (lines):")
    for lines, path in largest_files():
        print(f"  {lines:>5}  {path}")
    cycles = import_cycles()
    print(f"import cycles (imports inside functions included): {len(cycles)}")
    for cycle in cycles:
        print("  " + " <-> ".join(cycle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
