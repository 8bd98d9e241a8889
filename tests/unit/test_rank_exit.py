"""A finished torchrun rank ends without interpreter shutdown, after what shutdown would have done first."""

import subprocess
import sys
import textwrap


def test_leave_rank_joins_threads_runs_atexit_and_flushes_before_it_ends(tmp_path):
    thread_file, atexit_file = tmp_path / "thread.txt", tmp_path / "atexit.txt"
    script = textwrap.dedent(
        f"""
        import atexit, sys, threading, time
        from pathlib import Path
        from tuneforge.utils.rank_exit import leave_rank

        def late():
            time.sleep(0.3)
            Path({str(thread_file)!r}).write_text("joined")

        threading.Thread(target=late).start()
        atexit.register(lambda: Path({str(atexit_file)!r}).write_text("ran"))
        sys.stdout.write("block-buffered into a pipe, no newline")
        leave_rank(3)
        print("not reached")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "block-buffered into a pipe, no newline"
    assert thread_file.read_text() == "joined"
    assert atexit_file.read_text() == "ran"
