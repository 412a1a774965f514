"""Every user-error message follows one pattern: ``where: what (received); fix``.

The CLI prints a user error as one line, ``tfslm: error: <message>``, so the
message alone has to tell the user where the problem is (a config key such as
``data.score_range``, a flag such as ``--batch-size``, or a path), what is wrong
with the value received, and what to do about it with the command at hand.
The check is static: every message written as a string literal, an f-string
or a concatenation of them, in a call of a user-error class anywhere under
tfslm/ (raised or returned to be raised), must hold ``": "`` and a ``"; "``
followed by a fix.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tfslm"

# The user errors the CLI prints (exit code 2); subclasses defined under tfslm/ are found below.
USER_ERRORS = {"UserError", "ConfigError", "DataError", "ModelError", "RunDirError", "HubAuthError", "HubRequestError"}

# Subclasses of a user error whose messages are never shown as an error, each with the reason.
EXEMPT_CLASSES = {
    # Raised while building the in-graph tokenizer; tfslm.serving.saved_model catches it and turns the
    # message into a note of the export ("no raw-text signature because ..."), never an error line.
    "UnsupportedTokenizerError": "caught by export and written as a note",
}

# A message whose literal text is only this is a pass-through wrapper: it prefixes a path to an inner
# user error's message (``f"{path}: {exc}"``), and that inner message follows the pattern itself.
PASS_THROUGH = "{}: {}"


def _trees() -> dict[Path, ast.AST]:
    return {path: ast.parse(path.read_text(encoding="utf-8"), filename=str(path)) for path in sorted(PACKAGE.rglob("*.py"))}


def _user_error_classes(trees: dict[Path, ast.AST]) -> set[str]:
    """The user-error names plus every class under tfslm/ that derives from one of them (by name)."""
    names = set(USER_ERRORS)
    classes = [node for tree in trees.values() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    grew = True
    while grew:
        grew = False
        for node in classes:
            bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", None) for b in node.bases}
            if node.name not in names and bases & names:
                names.add(node.name)
                grew = True
    return names


def _literal_text(node: ast.AST) -> str | None:
    """The message's literal text with every interpolation as ``{}``; None when it is not written out.

    A call wrapped around the message (``redact(f"...", [token])``) is looked through.
    """
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal_text(node.left), _literal_text(node.right)
        if left is None and right is None:
            return None
        return (left if left is not None else "{}") + (right if right is not None else "{}")
    if isinstance(node, ast.Call) and node.args:
        return _literal_text(node.args[0])
    return None


def _messages() -> list[tuple[str, str, str]]:
    """``(file:line, class name, literal text)`` of every user-error message written out under tfslm/."""
    trees = _trees()
    classes = _user_error_classes(trees) - set(EXEMPT_CLASSES)
    found = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in classes and node.args:
                text = _literal_text(node.args[0])
                if text is not None:
                    found.append((f"{path.relative_to(PACKAGE.parent)}:{node.lineno}", node.func.id, text))
    return found


def _breaks_the_pattern(text: str) -> str | None:
    if text == PASS_THROUGH:
        return None
    if "\n" in text:
        return "more than one line"
    if ": " not in text:
        return "no 'where: ' (a config key, flag or path, then ': ')"
    if not text.split(": ", 1)[0].strip():
        return "nothing in front of ': ' (the where)"
    if "; " not in text:
        return "no '; ' followed by a fix"
    if not text.rsplit("; ", 1)[1].strip():
        return "nothing after '; ' (the fix)"
    return None


def test_the_scan_finds_the_user_errors():
    messages = _messages()
    assert len(messages) > 100, len(messages)
    assert {"ConfigError", "DataError", "ModelError", "RunDirError", "HubAuthError", "HubRequestError"} <= {c for _, c, _ in messages}
    assert "UnsupportedTokenizerError" in _user_error_classes(_trees())  # found, then exempted


def test_every_user_error_message_says_where_what_and_how_to_fix_it():
    offenders = [
        f"{where}: {cls}({text[:120]!r}): {why}"
        for where, cls, text in _messages()
        if (why := _breaks_the_pattern(text)) is not None
    ]
    assert not offenders, (
        "user-error messages must read 'where: what (got ...); fix' (see DESIGN.md, Conventions):\n" + "\n".join(offenders)
    )


def test_the_pattern_check_itself():
    assert _breaks_the_pattern("--batch-size: expected a positive integer, got 0; pass e.g. --batch-size 32") is None
    assert _breaks_the_pattern("{}: {}") is None
    assert _breaks_the_pattern("--batch-size: expected a positive integer, got {}") is not None
    assert _breaks_the_pattern("need at least 2 distinct labels; add rows") is not None
    assert _breaks_the_pattern("data.bins: bad; ") is not None
