"""What goes to feedback, screened: the source's hidden-test and solution text (``Secrets``), messages
clipped, reduced to words for hidden tests, and withheld when they quote that text.

Moved out of ``autograder/trusted.py`` (one module per job); ``trusted`` re-exports every name."""

from __future__ import annotations

import ast
import re

from .cells import _blocks, _norm, _unparsed, cell_source

MESSAGE_CHARS = 500
STATUS_CHARS = 200
# An exception's type name comes from the learner's process (``type("<any text>", (Exception,), {})``):
# only names that look like a (dotted) identifier are shown, and only after the redaction screen.
TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,60}")
TYPE_WITHHELD = "[exception name withheld]"


class Secrets:
    """Hidden-test and solution text, as 20-character shingles that never occur in the released text.

    ``found_in(text)`` is true when ``text`` quotes any 20 consecutive characters (whitespace
    collapsed) of hidden tests or solutions, in their source form or as ``ast.unparse`` writes them
    (the form in which test functions are shipped to the learner's process).
    """

    K = 20

    def __init__(self, source_nb=None):
        self.grams = set()
        secret, public = [], []
        for cell in (source_nb or {}).get("cells", []):
            src = cell_source(cell)
            hidden, visible = _blocks(src, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
            solution, outside = _blocks(visible, "### BEGIN SOLUTION", "### END SOLUTION")
            secret += [hidden, solution]
            public += [outside, _unparsed(outside)]
            if hidden:
                secret.append(_unparsed(src.replace("### BEGIN HIDDEN TESTS", "").replace("### END HIDDEN TESTS", "")))
        for text in secret:
            self.grams |= self._shingles(text)
        for text in public:
            flat = _norm(text)
            for i in range(len(flat) - self.K + 1):
                self.grams.discard(flat[i:i + self.K])

    def _shingles(self, text):
        flat = _norm(text)
        return {flat[i:i + self.K] for i in range(len(flat) - self.K + 1)}

    def found_in(self, text):
        flat = _norm(text or "")
        return any(flat[i:i + self.K] in self.grams for i in range(len(flat) - self.K + 1))


def redact(text, secrets):
    """``text``, unless it quotes hidden-test or solution source."""
    if text and secrets.found_in(text):
        return "[message withheld: it quotes grader test or solution code]"
    return text


WITHHELD = "[message withheld: it quotes grader test or solution code]"
HIDDEN_MARK = "### BEGIN HIDDEN TESTS"
_NUM = r"(?<![\w.])[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)(?![\w.])"
NUMBER_RUN = re.compile(rf"{_NUM}(?:[\s,;:\[\]()]+{_NUM}){{3,}}")  # four numbers or more in a row
ARRAY_REPR = re.compile(r"\b(?:array|tensor|Tensor|tf\.Tensor)\((?:[^()]|\([^()]*\))*\)?")
VALUES_WITHHELD = "[values withheld]"
INTEGER = re.compile(r"[-+]?\d+")
MAX_INTEGER_RUN = 6  # a shape or a few indices, e.g. "N, T, D, H = (2, 5, 3, 4)", may stay


def _run(match):
    numbers = re.findall(_NUM, match.group(0))
    if len(numbers) <= MAX_INTEGER_RUN and all(INTEGER.fullmatch(n) for n in numbers):
        return match.group(0)
    return VALUES_WITHHELD


def words_only(text):
    """``text`` with array reprs and runs of four or more numbers (but short runs of integers, such as
    a shape) replaced by a placeholder."""
    text = ARRAY_REPR.sub(VALUES_WITHHELD, text)
    return NUMBER_RUN.sub(_run, text)


def own_words(source, message):
    """The words of the ``assert ..., msg`` of ``source`` that raised ``message``, or None.

    A plain string message is returned as written; an f-string's formatted values become "...",
    so that what is left is what the test's author wrote for the learner, and no value.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert) or node.msg is None:
            continue
        msg = node.msg
        if isinstance(msg, ast.Constant) and type(msg.value) is str and msg.value == message:
            return msg.value
        if isinstance(msg, ast.JoinedStr):
            parts = [(re.escape(v.value), v.value) if isinstance(v, ast.Constant) else (".*?", "...")
                     for v in msg.values]
            if re.fullmatch("".join(p for p, _ in parts), message, re.S):
                return "".join(w for _, w in parts)
    return None


def test_message(test, message, secrets, hidden=None):
    """A test's failure message fit for feedback.

    Clipped, then, for a test cell with hidden tests (or ``hidden``: any test after a hidden part ran in the
    learner's process), reduced to its words (``words_only``: no array
    and no run of numbers, whatever the test's own message says); then screened (``redact``). A
    message withheld by the screen still gives a hint: the failing assertion's own words where it
    has some (``own_words``, values left out), else the test's docstring line.
    """
    if message is None:
        return None
    hidden = HIDDEN_MARK in test.source or bool(hidden)  # ``hidden``: a hidden part ran in the process before
    clipped = _clip(message)
    text = words_only(clipped) if hidden else clipped
    if not secrets.found_in(clipped) and not secrets.found_in(text):
        return text
    long_or_odd = type(message) is not str or len(message) > 20_000  # a lazy regex over megabytes: skip
    words = None if long_or_odd else own_words(test.source, message)
    if words is not None:
        words = _clip(words_only(words) if hidden else words)
        if not _quotes_code(words, secrets):
            return f"{words} [the rest of this message is withheld]" if words != text else words
    return f"{WITHHELD}. The check that failed: {_clip(test.summary, 200)}"


def _quotes_code(words, secrets):
    """Whether ``words`` (from an assertion's message) hold code: an assertion message is text, so
    anything with brackets, operators or a call in it is treated as code."""
    return bool(re.search(r"[(){}\[\]=<>]|\bdef\b|\blambda\b", words)) and secrets.found_in(words)


def safe_type_name(name, secrets):
    """An exception type name fit for feedback: an identifier that quotes no secret, else a placeholder."""
    if name is None:
        return None
    if type(name) is not str or not TYPE_NAME.fullmatch(name) or secrets.found_in(name):
        return TYPE_WITHHELD
    return name


def _clip(text, n=MESSAGE_CHARS):
    """``text`` (anything: it may come from the learner's process) as a string of at most ``n`` characters
    and a marker; clipped before it is screened, so screening costs no more than the clipped text."""
    if type(text) is not str:
        text = "" if text is None else f"[{type(text).__name__}]"
    return text if len(text) <= n else text[:n] + " [...]"
