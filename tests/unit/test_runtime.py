from __future__ import annotations

import subprocess
import sys

import pytest

# Allocates and frees large temporaries, as a stage server does per request,
# and prints the page faults it took.
CHURN = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from swapline.runtime.server import keep_freed_memory
    assert keep_freed_memory()
def request(size):
    a = np.ones((size, 1000), np.float32)
    b = a * 2
    return float(b[0, 0])
request(700)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(50):
    request(300 + 100 * (i % 5))
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", CHURN, mode], capture_output=True, text=True, check=True
    )
    return int(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_servers_keep_freed_memory_instead_of_faulting_in_fresh_pages() -> None:
    assert page_faults("keep") * 10 < page_faults("default")
