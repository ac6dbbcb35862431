"""The import graph of the app, read from the code's own imports: no cycle, no arrow pointing up,
and the pages (chat/web) and the endpoints for programs (chat/api) never reaching into each other."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("project", "chat", "bots")

# Layers, top first: a module may import its own layer's modules and any layer below, never above.
LAYERS = [
    ("project",),
    ("chat.apps", "chat.checks", "chat.lifecycle", "chat.management", "chat.history", "chat.api", "chat.web",
     "chat.templatetags", "chat.server"),
    ("chat.delivery", "chat.replies", "chat.wording"),
    ("chat.access", "chat.cache", "chat.models", "chat.limits", "chat.steering", "chat.markdown", "chat.text", "chat.identity", "chat.names", "chat.dom",
     "chat.services", "chat.search", "chat.unread"),
    ("bots",),
]


def modules():
    """Every module of the app (migrations aside), by dotted name: its file."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(path, known):
    """The app's modules that the module at path imports, wherever in it the import stands."""
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: from the package the module is in
                base = ".".join(path.relative_to(ROOT).with_suffix("").parts[: -node.level])
                module = f"{base}.{module}" if module else base
            # `from package import module` imports the module; `from module import name`, the module.
            names = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                targets.add(name)
    return targets


def graph():
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def layer(name):
    for index, prefixes in enumerate(LAYERS):
        if any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes):
            return index
    raise AssertionError(f"{name} belongs to no layer: add it to LAYERS in {__name__}")


def test_every_module_has_a_layer_and_no_import_points_up():
    upward = [(name, target) for name, targets in graph().items() for target in targets if layer(target) < layer(name)]
    assert upward == []


def test_the_import_graph_has_no_cycle():
    edges, cycles = graph(), []
    state = {}  # name -> "open" while on the path, "done" once explored

    def visit(name, path):
        state[name] = "open"
        for target in sorted(edges[name]):
            if state.get(target) == "open":
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[name] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_pages_and_the_endpoints_for_programs_do_not_import_each_other():
    crossing = [
        (name, target) for name, targets in graph().items() for target in targets
        for mine, theirs in (("chat.web", "chat.api"), ("chat.api", "chat.web"))
        if name.startswith(mine) and target.startswith(theirs)
    ]
    assert crossing == []


# Module-level names allowed to hold something mutable: the services registry, the one home of
# per-process state (chat/services.py). UPPER_CASE names are constants, never changed.
STATE_HOME = {("chat.services", "_registry"), ("chat.services", "_registry_lock")}
# Names Django and Python read as declarations (admin options, a model's Meta, URL patterns), not state.
DECLARATIONS = {"__all__", "urlpatterns", "websocket_urlpatterns", "actions", "fields", "list_display", "list_filter",
                "ordering", "readonly_fields", "search_fields", "constraints", "indexes"}
MUTABLE_CALLS = {"dict", "list", "set", "defaultdict", "Counter", "WeakSet", "WeakKeyDictionary", "WeakValueDictionary",
                 "Lock", "RLock", "Event", "Queue", "Semaphore", "ThreadPoolExecutor", "per_loop"}


def _mutable(value):
    if isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)):
        return True
    if isinstance(value, ast.Call):
        function = value.func
        return (function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")) in MUTABLE_CALLS
    return False


def shared_state():
    """(module, name) of every module-level or class-level name bound to something mutable, and every `global`."""
    found = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        scopes = [tree.body] + [node.body for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
        for body in scopes:
            for node in body:
                if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None and _mutable(node.value):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    found += [(name, target.id) for target in targets if isinstance(target, ast.Name) and not target.id.isupper() and target.id not in DECLARATIONS]
        found += [(name, f"global {', '.join(node.names)}") for node in ast.walk(tree) if isinstance(node, ast.Global)]
    return sorted(set(found) - STATE_HOME)


def test_per_process_state_lives_in_the_services_object_only():
    assert shared_state() == []


# The reply path: its synchronous work leaves the loop only by chat.services.run, on a lane of its
# own; a hop by any other road (sync_to_async's default thread is the one every view shares) would
# put a reply's words behind page loads and posts again.
REPLY_PATH = ("chat.replies",)
OTHER_HOPS = {"sync_to_async", "database_sync_to_async", "to_thread", "run_in_executor", "ThreadPoolExecutor"}


def hops(path):
    """The names of the ways to a thread that the module at path uses, other than services.run."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
        if isinstance(node, ast.alias):
            name = node.name.rpartition(".")[2]
        if name in OTHER_HOPS:
            found.add(name)
    return found


def test_the_reply_path_hops_to_a_thread_only_by_its_lanes():
    found = {name: hops(path) for name, path in modules().items() if name.startswith(REPLY_PATH)}
    assert {name: names for name, names in found.items() if names} == {}


def test_threads_of_the_app_are_made_in_one_place():
    makers = sorted(name for name, path in modules().items() if name.startswith("chat") and "ThreadPoolExecutor" in hops(path))
    assert makers == ["chat.services"]
