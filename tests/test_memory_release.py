"""A serving process returns large freed blocks to the system (QA_MMAP_THRESHOLD), so its memory levels off.

glibc raises its mmap threshold each time a large block is freed; from then on blocks of that size come from the
heap, and after concurrent requests and writes have interleaved them with long-lived objects, freeing them gives
nothing back (#10's soak grew a server by about 5 MB a minute). Each case runs in a fresh interpreter, so that
this test process's own allocator state plays no part.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from qa import QA, Settings
from qa.server.app import create_app

PROBE = """
import ctypes, sys
from qa.server.serving import return_large_blocks

def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) * 1024

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "fixed":
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


def released(mode: str) -> int:
    run = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60, check=True)
    return int(run.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the setting is glibc's; this probe reads /proc")
def test_a_freed_large_block_goes_back_to_the_system() -> None:
    assert released("adaptive") < 2 << 20  # glibc's default: the 20 MB stay in the process
    assert released("fixed") >= 19 << 20  # with qa's setting: they are returned


def test_the_setting_is_validated_and_zero_leaves_malloc_alone() -> None:
    from qa.server.serving import return_large_blocks

    assert return_large_blocks(0) is False
    assert Settings().mmap_threshold == 1 << 20
    with pytest.raises(ValueError):
        Settings(mmap_threshold=64 << 20)  # glibc takes at most 32 MB


def test_the_app_sets_it_in_its_process(monkeypatch: pytest.MonkeyPatch, sample_qa: QA) -> None:
    seen: list[int] = []
    monkeypatch.setattr("qa.server.app.return_large_blocks", seen.append)
    create_app(sample_qa)
    assert seen == [1 << 20]
