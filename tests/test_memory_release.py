"""A serving process gives freed memory back to the system, so its resident memory levels off (#10's soak grew a
server by about 5 MB a minute, all of it free memory that malloc kept).

Two settings: large blocks come from their own mappings, returned when freed (QA_MMAP_THRESHOLD; glibc would
raise its threshold each time a large block is freed and put the next ones in the heap), and the free pages
inside the heaps go back every QA_MEMORY_RELEASE_INTERVAL seconds. Each probe runs in a fresh interpreter, so
that this test process's own allocator state plays no part.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from qa import QA, Settings
from qa.server.app import create_app

# What both probes start with: resident memory, and C's malloc and free.
PREAMBLE = """
import ctypes, sys
from qa.server.serving import release_free_memory, return_large_blocks

def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) * 1024

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
"""

PROBE = (
    PREAMBLE
    + """if sys.argv[1] == "fixed":
    assert return_large_blocks(1 << 20)

def touched(size):
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    return block

libc.free(touched(30 << 20))  # a large block freed: glibc's adaptive threshold rises to its size
block = touched(20 << 20)     # a model's temporary buffer
pin = touched(4096)           # something long-lived allocated after it
before = rss()
libc.free(block)
print(before - rss())
"""
)


# Many small blocks freed below one that stays: the heap's top is in use, so free() alone returns nothing.
SCATTERED = (
    PREAMBLE
    + """blocks = []
for _ in range(100_000):  # 100 MB of 1 KB blocks, each touched
    block = libc.malloc(1024)
    ctypes.memset(block, 1, 1024)
    blocks.append(block)
pin = libc.malloc(1024)
for block in blocks:
    libc.free(block)
before = rss()
if sys.argv[1] == "release":
    assert release_free_memory()
print(before - rss())
"""
)


def released(mode: str, probe: str = PROBE) -> int:
    run = subprocess.run([sys.executable, "-c", probe, mode], capture_output=True, text=True, timeout=60, check=True)
    return int(run.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the setting is glibc's; this probe reads /proc")
def test_a_freed_large_block_goes_back_to_the_system() -> None:
    assert released("adaptive") < 2 << 20  # glibc's default: the 20 MB stay in the process
    assert released("fixed") >= 19 << 20  # with qa's setting: they are returned


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's; this probe reads /proc")
def test_free_memory_inside_the_heap_goes_back_when_released() -> None:
    assert released("keep", SCATTERED) < 10 << 20  # free() alone: the memory stays the process's
    assert released("release", SCATTERED) >= 80 << 20


def test_one_release_thread_per_process() -> None:
    from qa.server import serving

    serving.release_free_memory_every(3600)  # may find one running already, started by an app of another test
    assert serving.release_free_memory_every(3600) is None  # running: a second app starts nothing
    running = [t for t in threading.enumerate() if t.name == "qa-release-memory"]
    assert len(running) == 1 and running[0].daemon
    assert serving.release_free_memory_every(0) is None


def test_the_setting_is_validated_and_zero_leaves_malloc_alone() -> None:
    from qa.server.serving import return_large_blocks

    assert return_large_blocks(0) is False
    assert Settings().mmap_threshold == 1 << 20
    with pytest.raises(ValueError):
        Settings(mmap_threshold=64 << 20)  # glibc takes at most 32 MB


def test_the_app_sets_both_in_its_process(monkeypatch: pytest.MonkeyPatch, sample_qa: QA) -> None:
    seen: list[tuple[str, float]] = []
    monkeypatch.setattr("qa.server.app.return_large_blocks", lambda n: seen.append(("threshold", n)))
    monkeypatch.setattr("qa.server.app.release_free_memory_every", lambda s: seen.append(("interval", s)))
    create_app(sample_qa)
    assert seen == [("threshold", 1 << 20), ("interval", 30.0)]
