"""The embedded PostgreSQL is shared safely by several DocRag processes on one data folder."""
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import sqlalchemy as sa
    from pathlib import Path
    from core.storage.embedded import start_embedded_postgres

    url = start_embedded_postgres(Path(sys.argv[1]))
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    print("ready", flush=True)
    sys.stdin.readline()  # stay up until told to check again
    with engine.connect() as conn:
        print("alive" if conn.execute(sa.text("SELECT 1")).scalar() == 1 else "dead", flush=True)
    """
)


def start(data_dir):
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(data_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def assert_ready(process):
    line = process.stdout.readline().strip()
    if line != "ready":
        process.kill()
        raise AssertionError(f"process did not start: {process.stderr.read()[-2000:]}")


def test_processes_share_one_server_and_it_outlives_the_first_to_exit(tmp_path):
    first, second = start(tmp_path), start(tmp_path)  # started together: they race for the first start
    try:
        assert_ready(first)
        assert_ready(second)

        first.communicate("\n", timeout=60)  # the first process exits...
        out, _ = second.communicate("\n", timeout=60)  # ...and the second still has its database
        assert out.strip() == "alive"
        assert (tmp_path / "pgdata" / "PG_VERSION").exists()
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()


SIZED = textwrap.dedent(
    """
    import sys
    import sqlalchemy as sa
    from pathlib import Path
    from core.storage.embedded import start_embedded_postgres

    url = start_embedded_postgres(Path(sys.argv[1]), shared_buffers_mb=int(sys.argv[2]))
    with sa.create_engine(url).connect() as conn:
        print(conn.execute(sa.text("SHOW shared_buffers")).scalar(), flush=True)
    """
)


def test_the_embedded_server_is_sized_on_first_start_and_still_stops_with_its_last_user(tmp_path):
    first = subprocess.run([sys.executable, "-c", SIZED, str(tmp_path), "256"], capture_output=True, text=True, timeout=120)
    assert first.stdout.strip() == "256MB", first.stderr[-2000:]
    # The restart that applied it must not leave a server behind: pgserver stops the new one.
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()

    again = subprocess.run([sys.executable, "-c", SIZED, str(tmp_path), "384"], capture_output=True, text=True, timeout=120)
    assert again.stdout.strip() == "384MB", again.stderr[-2000:]


def test_settings_left_for_the_next_start_are_applied_by_it(tmp_path):
    """A start that cannot restart the server (another process uses it) must not mark the data
    folder ready: the next start, alone, applies the new size."""
    holder = start(tmp_path)
    try:
        assert_ready(holder)
        deferred = subprocess.run([sys.executable, "-c", SIZED, str(tmp_path), "256"], capture_output=True, text=True,
                                  timeout=120)
        assert deferred.returncode == 0, deferred.stderr[-2000:]
        assert deferred.stdout.strip() != "256MB"  # the holder is connected: no restart under its feet
    finally:
        holder.communicate("\n", timeout=60)

    alone = subprocess.run([sys.executable, "-c", SIZED, str(tmp_path), "256"], capture_output=True, text=True, timeout=120)
    assert alone.stdout.strip() == "256MB", alone.stderr[-2000:]


FOUR_CORES = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import sqlalchemy as sa
    from bots import db_budget, gunicorn_conf
    from core.config import Settings
    from core.storage.embedded import start_embedded_postgres

    gunicorn_conf.workers = 4  # what a four-core machine runs
    settings = Settings(_env_file=None)
    url = start_embedded_postgres(
        Path(sys.argv[1]), shared_buffers_mb=128, max_connections=db_budget.embedded_max_connections(settings)
    )
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        print(conn.execute(sa.text("SHOW max_connections")).scalar(), flush=True)
    print(db_budget.warn_if_over_capacity(engine, settings), flush=True)
    print(db_budget.embedded_max_connections(settings), flush=True)
    """
)


def test_on_a_larger_machine_the_embedded_server_is_sized_for_docrags_own_processes(tmp_path):
    run = subprocess.run([sys.executable, "-c", FOUR_CORES, str(tmp_path)], capture_output=True, text=True, timeout=120)
    lines = run.stdout.splitlines()
    assert len(lines) == 3, run.stderr[-2000:]
    shown, warning, wanted = lines
    assert int(shown) == int(wanted) > 100, run.stderr[-2000:]
    assert warning == "None"  # no start-up warning about a server DocRag itself sized too small


def test_a_fresh_embedded_database_is_upgraded_by_the_first_commands_started_together(tmp_path):
    # On the embedded default nobody else owns the database: `docrag ingest` on a new machine
    # (or after an update) must not stop at "run `docrag db upgrade` first". Two started at once
    # take turns on the upgrade and both ingest.
    import os

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nThe alpha setting turns on alpha mode.\n")
    (docs / "b.md").write_text("# Beta\n\nThe beta setting turns on beta mode.\n")
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["DOCRAG_DATA_DIR"] = str(tmp_path / "data")
    commands = [
        subprocess.Popen([sys.executable, "-m", "bots.cli", "ingest", str(docs / name), "--collection", "fresh"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name in ("a.md", "b.md")
    ]
    outputs = [command.communicate(timeout=180)[0] for command in commands]

    for command, output in zip(commands, outputs):
        assert command.returncode == 0, output[-2000:]
        assert "1 added" in output and "db upgrade" not in output
    listed = subprocess.run([sys.executable, "-m", "bots.cli", "search", "beta mode", "--collection", "fresh", "--json"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "b.md" in listed.stdout
