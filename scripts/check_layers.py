#!/usr/bin/env python3
"""Fails when a source file includes across a forbidden line (docs/architecture.md, "Layers").

The rules:
  - module_api includes only module_api (never kernel/ or modules/);
  - a module (modules/<name>/, examples/<name>/) includes module_api and its own folder only;
  - kernel/ never includes a concrete module (modules/);
  - kernel/<a> includes kernel/<b> only if <b> is <a> itself or sits on a lower layer (LAYERS);
  - kernel/<a> includes kernel/<b> only if kernel/CMakeLists.txt declares that dependency, and
    every kernel dependency it declares is used by an include;
  - production code never includes tests/, bench/ or fuzz/.
tests/, bench/ and fuzz/ are exempt. Standard library only: runs on a fresh Debian 12 in well under 1s.

Usage: scripts/check_layers.py [ROOT]   (exit 0: clean; 1: violations, one per line)
"""
import os
import re
import sys

# The kernel's layers, lowest first (kernel/CMakeLists.txt: dependencies point down this list).
# A directory may include the ones on lower layers, never its peers on the same layer.
LAYERS = [
    ["runtime"],
    ["net", "zookeeper"],
    ["state", "election"],
    ["modules", "http"],
    ["protocol"],
    ["master", "agent", "scheduler"],
    ["cli"],
]
LAYER_OF = {d: i for i, names in enumerate(LAYERS) for d in names}

SOURCE_SUFFIXES = (".h", ".hpp", ".cc", ".cpp", ".proto")
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')
IMPORT = re.compile(r'^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"')


def sources(root, top):
    """Every source file under root/top, as a path relative to root (build trees skipped)."""
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(("build", ".")))
        for name in sorted(filenames):
            if name.endswith(SOURCE_SUFFIXES):
                yield os.path.relpath(os.path.join(dirpath, name), root)


def includes(root, path):
    """(line number, line, included path) for each #include / proto import of a file."""
    pattern = IMPORT if path.endswith(".proto") else INCLUDE
    with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            match = pattern.match(line)
            if match:
                yield number, line.strip(), match.group(1)


def component(path):
    """('kernel', 'net') for 'kernel/net/x.h'; ('modules', 'a') for 'modules/a/...'; etc."""
    parts = path.split("/")
    if parts[0] in ("kernel", "modules", "examples") and len(parts) > 2:
        return parts[0], parts[1]
    return parts[0], None


def declared_kernel_deps(root):
    """{kernel dir: set of kernel dirs} as kernel/CMakeLists.txt links them."""
    with open(os.path.join(root, "kernel", "CMakeLists.txt"), encoding="utf-8") as f:
        text = re.sub(r"#[^\n]*", "", f.read())
    target_dir = {}
    links = {}
    for name, directory, args in re.findall(
        r"tessera_kernel_library\(\s*(\w+)\s+(\w+)([^)]*)\)", text
    ):
        target_dir[name] = directory
        links[name] = args.split()
    for name, args in re.findall(r"target_link_libraries\(\s*(\w+)\s+PUBLIC([^)]*)\)", text):
        if name not in target_dir and name.startswith("tessera_"):
            target_dir[name] = name[len("tessera_"):]
            links.setdefault(name, []).extend(args.split())
    return {
        target_dir[name]: {target_dir[dep] for dep in deps if dep in target_dir}
        for name, deps in links.items()
    }


def check(root):
    errors = []
    used = {}  # kernel dir -> kernel dirs its files include

    def bad(path, number, line, why):
        errors.append(f"{path}:{number}: {line}: {why}")

    files = [p for top in ("kernel", "modules", "module_api", "examples") for p in sources(root, top)]
    for path in files:
        top, name = component(path)
        for number, line, target in includes(root, path):
            target_top, target_name = component(target)
            if target_top in ("tests", "bench", "fuzz"):
                bad(path, number, line, f"production code may not include {target_top}/")
            elif top == "module_api":
                if target_top in ("kernel", "modules"):
                    bad(path, number, line, f"module_api may not include {target_top}/")
            elif top in ("modules", "examples"):
                if target_top == "kernel":
                    bad(path, number, line, "a module may not include kernel/ (only module_api)")
                elif target_top == "modules" and target_name != name:
                    bad(path, number, line,
                        f"module '{name}' may not include another module ('{target_name}')")
            elif top == "kernel":
                if target_top == "modules":
                    bad(path, number, line,
                        "kernel/ may not include a concrete module (load it through module_api)")
                elif target_top == "kernel" and target_name != name:
                    used.setdefault(name, set()).add(target_name)
                    mine, theirs = LAYER_OF.get(name), LAYER_OF.get(target_name)
                    if mine is None or theirs is None:
                        unknown = name if mine is None else target_name
                        bad(path, number, line,
                            f"kernel/{unknown} is on no layer (add it to LAYERS in {SELF})")
                    elif theirs >= mine:
                        bad(path, number, line,
                            f"kernel/{name} (layer {mine}) may not include kernel/{target_name} "
                            f"(layer {theirs}): includes point to lower layers only")

    declared = declared_kernel_deps(root)
    for directory in sorted(set(declared) | set(used)):
        want, have = used.get(directory, set()), declared.get(directory, set())
        for dep in sorted(want - have):
            errors.append(f"kernel/CMakeLists.txt: kernel/{directory} includes "
                          f"kernel/{dep} but does not link its library")
        for dep in sorted(have - want):
            errors.append(f"kernel/CMakeLists.txt: kernel/{directory} links kernel/{dep}'s "
                          f"library but includes nothing from kernel/{dep}/")
    return errors


SELF = "scripts/check_layers.py"

if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))
    problems = check(root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"layers: {len(problems)} violation(s); the rules are in docs/architecture.md",
              file=sys.stderr)
        sys.exit(1)
    print("layers: ok", file=sys.stderr)
