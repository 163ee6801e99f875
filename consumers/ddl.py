"""Enough of ClickHouse's SQL to rewrite a migration's statements: tokens (strings, quoted names and comments
kept whole), a statement's verb and object, the qualified names it references, its clauses (ENGINE, ORDER BY,
SETTINGS, a view's TO and REFRESH, ALTER's commands) as token ranges, and edits that replace ranges.

It reads, it does not judge: ClickHouse parses what comes out (``formatQuery`` in the tests).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""(?P<space>\s+)
    | (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<string>'(?:[^'\\]|\\.|'')*')
    | (?P<quoted>`(?:[^`\\]|\\.)*`|"(?:[^"\\]|\\.)*")
    | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    | (?P<number>\d[\w.]*)
    | (?P<punct>.)""",
    re.VERBOSE | re.DOTALL,
)
# clauses that may follow a table's columns and engine, in any order ClickHouse accepts
_TABLE_CLAUSES = ("PARTITION", "PRIMARY", "ORDER", "SAMPLE", "TTL", "SETTINGS", "COMMENT", "AS", "EMPTY")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str

    @property
    def word(self) -> str:
        """Upper-case text of a bare word ('' for anything else): keywords compare on it."""
        return self.text.upper() if self.kind == "word" else ""

    @property
    def name(self) -> str:
        """The identifier a word or quoted name spells."""
        return self.text[1:-1] if self.kind == "quoted" else self.text


@dataclass(frozen=True, slots=True)
class Name:
    """A table reference: ``database.table`` (``database`` '' when unqualified), at significant tokens
    ``start`` .. ``end`` (exclusive)."""

    database: str
    table: str
    start: int
    end: int


class Statement:
    """One statement as significant tokens (``self[i]``), with the spaces and comments between them kept for
    rendering. Positions are indexes of significant tokens."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.tokens = [Token(m.lastgroup or "punct", m.group()) for m in _TOKEN.finditer(sql)]
        self._sig = [i for i, t in enumerate(self.tokens) if t.kind not in ("space", "comment")]

    def __len__(self) -> int:
        return len(self._sig)

    def __getitem__(self, i: int) -> Token:
        return self.tokens[self._sig[i]] if 0 <= i < len(self._sig) else Token("end", "")

    def words(self, start: int, *expected: str) -> bool:
        """Whether the significant tokens from ``start`` are the keywords ``expected``."""
        return all(self[start + k].word == w for k, w in enumerate(expected))

    def find(self, word: str, start: int = 0, end: int | None = None) -> int:
        """Position of the keyword ``word`` at nesting depth 0 from ``start``; -1 if absent."""
        depth = 0
        for i in range(start, len(self) if end is None else end):
            text = self[i].text
            if text == "(":
                depth += 1
            elif text == ")":
                depth -= 1
            elif depth == 0 and self[i].word == word:
                return i
        return -1

    def closing(self, i: int) -> int:
        """Position of the parenthesis closing the one at ``i``."""
        depth = 0
        for j in range(i, len(self)):
            depth += {"(": 1, ")": -1}.get(self[j].text, 0)
            if depth == 0:
                return j
        raise ValueError(f"unbalanced parentheses in: {self.sql[:80]}")

    def name_at(self, i: int) -> Name:
        """The (possibly qualified) name at ``i``."""
        if self[i + 1].text == "." and self[i + 2].kind in ("word", "quoted"):
            return Name(self[i].name, self[i + 2].name, i, i + 3)
        return Name("", self[i].name, i, i + 1)

    def text(self, start: int, end: int | None = None) -> str:
        """The source text of significant tokens ``start`` .. ``end`` (exclusive; default: to the end)."""
        last = len(self) if end is None else end
        if start >= last:
            return ""
        first_token = self._sig[start]
        last_token = self._sig[last - 1]
        return "".join(t.text for t in self.tokens[first_token : last_token + 1])

    def references(self, database: str, start: int = 0) -> Iterator[Name]:
        """Every ``database.table`` from ``start`` on (migrations qualify each table with the database)."""
        for i in range(start, len(self)):
            if self[i].kind in ("word", "quoted") and self[i].name == database and self[i + 1].text == ".":
                yield self.name_at(i)

    def top_level_split(self, start: int, end: int | None = None) -> list[tuple[int, int]]:
        """Ranges of the comma-separated items from ``start`` (ALTER's commands, a SETTINGS list)."""
        stop = len(self) if end is None else end
        items, depth, first = [], 0, start
        for i in range(start, stop):
            text = self[i].text
            depth += {"(": 1, ")": -1}.get(text, 0)
            if depth == 0 and text == ",":
                items.append((first, i))
                first = i + 1
        items.append((first, stop))
        return items

    def render(self, edits: list[tuple[int, int, str]], start: int = 0) -> str:
        """The statement from significant position ``start`` on, with each range ``(first, end, text)`` of
        significant tokens replaced by ``text`` (``first == end``: inserted before ``first``). The spaces
        around a replaced range stay. Ranges must not overlap."""
        out: list[str] = []
        raw = self._sig[start] if start < len(self) else len(self.tokens)
        for first, end, replacement in sorted(edits, key=lambda e: (e[0], e[1])):
            at = self._sig[first] if first < len(self) else len(self.tokens)
            out.extend(t.text for t in self.tokens[raw:at])
            out.append(replacement)
            raw = self._sig[end - 1] + 1 if end > first else at
        out.extend(t.text for t in self.tokens[raw:])
        return "".join(out)


@dataclass(frozen=True, slots=True)
class Head:
    """What a statement is: its verb (CREATE, ALTER, DROP, TRUNCATE, RENAME, INSERT, ...), its object (TABLE,
    VIEW, MATERIALIZED VIEW, DATABASE, '' where the verb implies it) and the object's name."""

    verb: str
    object: str
    name: Name


def head(stmt: Statement) -> Head:
    verb = stmt[0].word
    i = 1
    if verb == "CREATE" and stmt.words(1, "OR", "REPLACE"):
        i = 3
    obj = ""
    if verb in ("CREATE", "DROP", "ALTER", "RENAME", "TRUNCATE", "EXCHANGE"):
        if stmt.words(i, "MATERIALIZED", "VIEW"):
            obj, i = "MATERIALIZED VIEW", i + 2
        elif stmt[i].word in ("TABLE", "VIEW", "DATABASE", "DICTIONARY", "TEMPORARY", "FUNCTION", "TABLES"):
            obj, i = stmt[i].word, i + 1
    elif verb == "INSERT" and stmt[i].word == "INTO":
        i += 2 if stmt[i + 1].word == "TABLE" else 1
    if stmt.words(i, "IF", "NOT", "EXISTS"):
        i += 3
    elif stmt.words(i, "IF", "EXISTS"):
        i += 2
    if verb == "TRUNCATE" and not obj:
        obj = "TABLE"
    return Head(verb, obj, stmt.name_at(i))


@dataclass(frozen=True, slots=True)
class TableParts:
    """The clauses of CREATE TABLE that cluster mode rewrites, as significant-token ranges; (-1, -1) when
    absent."""

    engine: tuple[int, int]  # ENGINE = Name(args)
    engine_name: str
    engine_args: str  # the text inside the parentheses, '' without
    order_first: str  # the first expression of ORDER BY, as written
    settings: tuple[int, int]  # the items after SETTINGS
    as_table: str  # CREATE TABLE t AS other: other's name


def table_parts(stmt: Statement, after_name: int) -> TableParts:
    engine, engine_name, engine_args = (-1, -1), "", ""
    at = stmt.find("ENGINE", after_name)
    if at >= 0:
        name_at = at + 2 if stmt[at + 1].text == "=" else at + 1
        engine_name = stmt[name_at].text
        end = name_at + 1
        if stmt[end].text == "(":
            close = stmt.closing(end)
            engine_args, end = stmt.text(end + 1, close), close + 1
        engine = (at, end)
    order_first = ""
    order = stmt.find("ORDER", after_name)
    if order >= 0 and stmt[order + 1].word == "BY":
        first = order + 2
        if stmt[first].text == "(":
            items = stmt.top_level_split(first + 1, stmt.closing(first))
            order_first = stmt.text(*items[0])
        else:
            order_first = stmt.text(first, _clause_end(stmt, first))
    settings = (-1, -1)
    at = stmt.find("SETTINGS", after_name)
    if at >= 0:
        settings = (at + 1, _clause_end(stmt, at + 1))
    as_table = ""
    if stmt[after_name].word == "AS" and stmt[after_name + 1].word != "SELECT":
        as_table = stmt.name_at(after_name + 1).table
    return TableParts(engine, engine_name, engine_args, order_first, settings, as_table)


def _clause_end(stmt: Statement, start: int) -> int:
    """Where the clause that starts at ``start`` ends: at the next table clause keyword at depth 0."""
    ends = [j for w in _TABLE_CLAUSES if (j := stmt.find(w, start + 1)) >= 0]
    return min(ends, default=len(stmt))


@dataclass(frozen=True, slots=True)
class ViewParts:
    """A materialized view's clauses: REFRESH (its text, '' for a view fed by inserts), TO (the target's
    name), and where its SELECT starts."""

    refresh: str
    target: Name | None
    select: int


def view_parts(stmt: Statement, after_name: int) -> ViewParts:
    select = stmt.find("AS", after_name)
    while select >= 0 and stmt[select + 1].word not in ("SELECT", "WITH", "("):
        select = stmt.find("AS", select + 1)
    if select < 0:
        raise ValueError(f"no AS SELECT in: {stmt.sql[:80]}")
    refresh = ""
    at = stmt.find("REFRESH", after_name, select)
    to = stmt.find("TO", after_name, select)
    if at >= 0:
        refresh = stmt.text(at, to if to >= 0 else select)
    target = stmt.name_at(to + 1) if to >= 0 else None
    return ViewParts(refresh, target, select + 1)


def source_table(stmt: Statement, start: int) -> Name | None:
    """The table a SELECT from ``start`` reads first: the first FROM's table, or the first table of its
    subquery (a materialized view is fed by inserts into it)."""
    at = stmt.find("FROM", start)
    while at >= 0 and stmt[at + 1].text == "(":
        at = stmt.find("FROM", at + 2)
    if at < 0:
        # FROM inside a subquery: search at any depth
        at = next((i for i in range(start, len(stmt)) if stmt[i].word == "FROM" and stmt[i + 1].text != "("), -1)
    return stmt.name_at(at + 1) if at >= 0 else None
