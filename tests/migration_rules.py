"""A static check of Alembic migrations against the zero-downtime rules in docs/migrations.md.

It reads each migration's source (never imports or runs it): the ``op.*`` calls with their
arguments, and the SQL of every ``op.execute``/``.execute(...)`` whose text can be read (string
literals, f-strings with their holes filled by a placeholder, ``sa.text(...)``). Only the upgrade
side counts: everything in the file except ``downgrade()``, since a helper the upgrade calls is
part of it. Tables the same migration creates are exempt: nobody reads or writes them yet.

A rule it cannot apply (SQL built at run time) is itself a finding, so that a new migration cannot
slip past by building its statement in a variable.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

RULES = {
    "index-not-concurrent":
        "an index on an existing table is built with CREATE INDEX CONCURRENTLY "
        "(op.create_index(..., postgresql_concurrently=True)) inside op.get_context().autocommit_block()",
    "concurrent-in-transaction":
        "CONCURRENTLY cannot run inside the migration's transaction: wrap it in op.get_context().autocommit_block()",
    "volatile-default":
        "a column added with a volatile default (random(), clock_timestamp(), gen_random_uuid(), nextval(), an "
        "identity or stored generated column) rewrites the whole table under an ACCESS EXCLUSIVE lock: add it "
        "without the default (or with a constant one) and backfill in batches",
    "not-null-without-default":
        "a NOT NULL column without a default fails on a table with rows, and the previous release's INSERTs "
        "do not set it: add it nullable (or with a constant default), backfill, then enforce",
    "set-not-null":
        "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock: add CHECK (col IS NOT NULL) NOT VALID, "
        "VALIDATE CONSTRAINT, then SET NOT NULL (PostgreSQL then skips the scan)",
    "type-change":
        "changing a column's type rewrites the table (and the previous release still reads the old type): "
        "add a new column, write both, backfill, switch readers, drop the old one",
    "constraint-validates-under-lock":
        "a FOREIGN KEY or CHECK on an existing table is added NOT VALID, then validated by a separate "
        "VALIDATE CONSTRAINT (which does not block writes)",
    "constraint-builds-index":
        "a PRIMARY KEY or UNIQUE constraint on an existing table builds its index under an ACCESS EXCLUSIVE lock: "
        "build a unique index CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX",
    "table-rewrite":
        "this rewrites the whole table under an ACCESS EXCLUSIVE lock (VACUUM FULL, CLUSTER, SET TABLESPACE, "
        "SET LOGGED/UNLOGGED, SET ACCESS METHOD)",
    "drops-or-renames":
        "dropping or renaming a table or column breaks the previous release, which still runs during the "
        "upgrade: this is a contract step, shipped one release after the code stopped using it",
    "unreadable-sql":
        "SQL built at run time cannot be checked: write the statement literally, or allow-list it with the reason",
}

# Functions whose default makes an added column rewrite the table (PostgreSQL evaluates a
# non-volatile default once, at ALTER time, and stores it in the catalogue: no rewrite).
VOLATILE = re.compile(
    r"\b(RANDOM|CLOCK_TIMESTAMP|TIMEOFDAY|GEN_RANDOM_UUID|UUIDV[47]|UUID_GENERATE_V\w+|NEXTVAL)\s*\(", re.I
)
_PLACEHOLDER = "X"  # what an f-string's {hole} reads as


@dataclass(frozen=True)
class Finding:
    migration: str  # the file's stem, e.g. "0009_postings_covering_index"
    rule: str
    line: int
    detail: str

    def __str__(self) -> str:
        return f"{self.migration}:{self.line}: {self.rule}: {self.detail}\n    rule: {RULES[self.rule]}"


def check_directory(folder: Path) -> list[Finding]:
    return [f for path in sorted(folder.glob("[0-9]*.py")) for f in check_source(path.read_text(), path.stem)]


def check_source(source: str, migration: str) -> list[Finding]:
    tree = ast.parse(source)
    upgrade_side = [node for node in tree.body if not (isinstance(node, ast.FunctionDef) and node.name == "downgrade")]
    checker = _Checker(migration, _created_tables(upgrade_side))
    for node in upgrade_side:
        checker.visit(node)
    return checker.findings


# -- reading the source --------------------------------------------------------------------------
def _op_name(call: ast.Call) -> str | None:
    """"create_index" for ``op.create_index(...)``; None for anything not called on ``op``."""
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "op":
        return func.attr
    return None


def _text(node: ast.AST | None) -> str | None:
    """The string an expression evaluates to, as far as the source says; None when it cannot tell."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else _PLACEHOLDER for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.Call) and _called_name(node) == "text" and node.args:
        return _text(node.args[0])
    return None


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _arg(call: ast.Call, position: int, keyword: str) -> ast.AST | None:
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    return call.args[position] if len(call.args) > position else None


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _is_false(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _created_tables(nodes: list[ast.stmt]) -> set[str]:
    created: set[str] = set()
    for node in (n for top in nodes for n in ast.walk(top)):
        if isinstance(node, ast.Call) and _op_name(node) == "create_table":
            name = _text(_arg(node, 0, "table_name"))
            if name:
                created.add(name.lower())
        elif isinstance(node, ast.Call) and _called_name(node) in ("execute", "exec_driver_sql") and node.args:
            for statement in _statements(_text(node.args[0]) or ""):
                match = re.match(r"CREATE (?:UNLOGGED )?TABLE (?:IF NOT EXISTS )?([\w.\"]+)", statement)
                if match:
                    created.add(_table(match.group(1)))
    return created


def _statements(sql: str) -> list[str]:
    """The SQL's statements, upper-cased, comments dropped, whitespace collapsed."""
    sql = re.sub(r"--[^\n]*", " ", sql)
    return [" ".join(s.split()).upper() for s in sql.split(";") if s.strip()]


def _table(name: str) -> str:
    return name.replace('"', "").split(".")[-1].lower()


def _split_actions(actions: str) -> list[str]:
    """ALTER TABLE's comma-separated actions (commas inside parentheses do not split)."""
    parts, depth, current = [], 0, []
    for ch in actions:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


# -- the rules -----------------------------------------------------------------------------------
class _Checker(ast.NodeVisitor):
    def __init__(self, migration: str, created: set[str]) -> None:
        self.migration = migration
        self.created = created
        self.findings: list[Finding] = []
        self.autocommit = 0  # depth of op.get_context().autocommit_block() around the current node

    def flag(self, node: ast.AST, rule: str, detail: str) -> None:
        self.findings.append(Finding(self.migration, rule, getattr(node, "lineno", 0), detail))

    def existing(self, table: str | None) -> bool:
        return table is not None and table.lower() not in self.created

    def visit_With(self, node: ast.With) -> None:
        autocommit = any(
            isinstance(item.context_expr, ast.Call) and _called_name(item.context_expr) == "autocommit_block"
            for item in node.items
        )
        self.autocommit += autocommit
        self.generic_visit(node)
        self.autocommit -= autocommit

    def visit_Call(self, node: ast.Call) -> None:
        name = _op_name(node)
        if name is not None and hasattr(self, f"_op_{name}"):
            getattr(self, f"_op_{name}")(node)
        elif _called_name(node) in ("execute", "exec_driver_sql") and node.args:
            self._sql(node, node.args[0])
        self.generic_visit(node)

    # op.* calls ------------------------------------------------------------------------------
    def _op_create_index(self, node: ast.Call) -> None:
        table = _text(_arg(node, 1, "table_name"))
        concurrently = _is_true(_arg(node, 99, "postgresql_concurrently"))
        if concurrently:
            self._concurrently(node)
        elif self.existing(table):
            self.flag(node, "index-not-concurrent", f"op.create_index on {table}")

    def _op_drop_index(self, node: ast.Call) -> None:
        if _is_true(_arg(node, 99, "postgresql_concurrently")):
            self._concurrently(node)

    def _op_add_column(self, node: ast.Call) -> None:
        table, column = _text(_arg(node, 0, "table_name")), _arg(node, 1, "column")
        if not self.existing(table) or not isinstance(column, ast.Call):
            return
        column_name = _text(column.args[0]) if column.args else "?"
        where = f"{table}.{column_name}"
        default = _arg(column, 99, "server_default")
        generated = [a for a in column.args if isinstance(a, ast.Call) and _called_name(a) in ("Computed", "Identity")]
        if generated:
            self.flag(node, "volatile-default", f"{where} is a {_called_name(generated[0])} column")
        elif default is not None and self._volatile(default):
            self.flag(node, "volatile-default", f"{where} server_default={ast.unparse(default)}")
        if _is_false(_arg(column, 99, "nullable")) and default is None and not generated:
            self.flag(node, "not-null-without-default", where)

    def _volatile(self, default: ast.AST) -> bool:
        """Whether a server_default can make the column's value differ per row (unknown counts as yes)."""
        literal = _text(default)
        if literal is not None:
            return bool(VOLATILE.search(literal)) if isinstance(default, ast.Call) else False
        if isinstance(default, ast.Call) and isinstance(default.func, ast.Attribute):
            return bool(VOLATILE.search(f"{default.func.attr}("))  # sa.func.gen_random_uuid()
        return True

    def _op_alter_column(self, node: ast.Call) -> None:
        table, column = _text(_arg(node, 0, "table_name")), _text(_arg(node, 1, "column_name"))
        if not self.existing(table):
            return
        where = f"{table}.{column}"
        if _arg(node, 99, "type_") is not None:
            self.flag(node, "type-change", where)
        if _is_false(_arg(node, 99, "nullable")):
            self.flag(node, "set-not-null", where)
        if _arg(node, 99, "new_column_name") is not None:
            self.flag(node, "drops-or-renames", f"renames {where}")

    def _op_drop_column(self, node: ast.Call) -> None:
        table = _text(_arg(node, 0, "table_name"))
        if self.existing(table):
            self.flag(node, "drops-or-renames", f"drops {table}.{_text(_arg(node, 1, 'column_name'))}")

    def _op_drop_table(self, node: ast.Call) -> None:
        self.flag(node, "drops-or-renames", f"drops table {_text(_arg(node, 0, 'table_name'))}")

    def _op_rename_table(self, node: ast.Call) -> None:
        self.flag(node, "drops-or-renames", f"renames table {_text(_arg(node, 0, 'old_table_name'))}")

    def _op_create_foreign_key(self, node: ast.Call) -> None:
        table = _text(_arg(node, 1, "source_table"))
        if self.existing(table):
            self.flag(node, "constraint-validates-under-lock", f"foreign key on {table}")

    def _op_create_check_constraint(self, node: ast.Call) -> None:
        table = _text(_arg(node, 1, "table_name"))
        if self.existing(table):
            self.flag(node, "constraint-validates-under-lock", f"check constraint on {table}")

    def _op_create_primary_key(self, node: ast.Call) -> None:
        table = _text(_arg(node, 1, "table_name"))
        if self.existing(table):
            self.flag(node, "constraint-builds-index", f"primary key on {table}")

    def _op_create_unique_constraint(self, node: ast.Call) -> None:
        table = _text(_arg(node, 1, "table_name"))
        if self.existing(table):
            self.flag(node, "constraint-builds-index", f"unique constraint on {table}")

    def _concurrently(self, node: ast.Call) -> None:
        if not self.autocommit:
            self.flag(node, "concurrent-in-transaction", ast.unparse(node)[:80])

    # SQL -------------------------------------------------------------------------------------
    def _sql(self, node: ast.Call, argument: ast.AST) -> None:
        sql = _text(argument)
        if sql is None:
            self.flag(node, "unreadable-sql", ast.unparse(node)[:80])
            return
        for statement in _statements(sql):
            self._statement(node, statement)

    def _statement(self, node: ast.Call, statement: str) -> None:
        index = re.match(r"CREATE (?:UNIQUE )?INDEX (CONCURRENTLY )?.*? ON (?:ONLY )?([\w.\"]+)", statement)
        if index:
            if index.group(1):
                self._concurrently(node)
            elif self.existing(_table(index.group(2))):
                self.flag(node, "index-not-concurrent", statement[:100])
            return
        if re.match(r"DROP INDEX CONCURRENTLY", statement):
            self._concurrently(node)
        elif re.match(r"(VACUUM FULL|CLUSTER)\b", statement):
            self.flag(node, "table-rewrite", statement[:100])
        elif match := re.match(r"DROP TABLE (?:IF EXISTS )?([\w.\", ]+)", statement):
            self.flag(node, "drops-or-renames", statement[:100])
        elif match := re.match(r"ALTER TABLE (?:IF EXISTS )?(?:ONLY )?([\w.\"]+) (.*)", statement):
            if self.existing(_table(match.group(1))):
                for action in _split_actions(match.group(2)):
                    self._alter_action(node, _table(match.group(1)), action)

    def _alter_action(self, node: ast.Call, table: str, action: str) -> None:
        where = f"{table}: {action[:90]}"
        if re.match(r"ADD (COLUMN )?(IF NOT EXISTS )?(?!CONSTRAINT|PRIMARY|UNIQUE|FOREIGN|CHECK|EXCLUDE)", action):
            if VOLATILE.search(action) or re.search(r"\b(BIG|SMALL)?SERIAL\b|\bGENERATED\b", action):
                self.flag(node, "volatile-default", where)
            elif re.search(r"\bNOT NULL\b", action) and not re.search(r"\bDEFAULT\b", action):
                self.flag(node, "not-null-without-default", where)
        elif re.match(r"ADD (CONSTRAINT \S+ )?(FOREIGN KEY|CHECK)\b", action) and "NOT VALID" not in action:
            self.flag(node, "constraint-validates-under-lock", where)
        elif re.match(r"ADD (CONSTRAINT \S+ )?(PRIMARY KEY|UNIQUE|EXCLUDE)\b", action) and "USING INDEX" not in action:
            self.flag(node, "constraint-builds-index", where)
        elif re.match(r"ALTER (COLUMN )?\S+ (SET DATA )?TYPE\b", action):
            self.flag(node, "type-change", where)
        elif re.match(r"ALTER (COLUMN )?\S+ SET NOT NULL\b", action):
            self.flag(node, "set-not-null", where)
        elif re.match(r"(DROP (COLUMN )?(?!CONSTRAINT|DEFAULT|NOT NULL)|RENAME\b)", action):
            self.flag(node, "drops-or-renames", where)
        elif re.match(r"SET (LOGGED|UNLOGGED|TABLESPACE|ACCESS METHOD)\b", action):
            self.flag(node, "table-rewrite", where)
