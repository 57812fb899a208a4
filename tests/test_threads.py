"""Thread caps: small SWIM fits run on one thread, large ones keep theirs (dualmap._threads)."""

import pytest
import torch
from threadpoolctl import threadpool_info

from dualmap._threads import SMALL_FIT_FLOPS, single_thread_below, swim_fit_flops


def test_swim_fit_flops_counts_features_gram_and_eigendecomposition():
    # 100 points, 5 features, one layer of 20: features 100·5·20, Gram (primal: n > w) 100·20·20, eigh 20³
    assert swim_fit_flops(100, 5, (20,)) == 100 * 5 * 20 + 100 * 20 * 20 + 20**3
    # dual form when n < width: the n × n kernel and its eigendecomposition
    assert swim_fit_flops(10, 3, (4, 50)) == 10 * 3 * 4 + 10 * 4 * 50 + 10 * 50 * 10 + 10**3


def _pool_threads(user_api=None):
    return {info["num_threads"] for info in threadpool_info() if user_api in (None, info["user_api"])}


@pytest.mark.skipif(torch.get_num_threads() < 2, reason="needs a torch thread pool of 2 or more")
def test_small_problems_run_on_one_thread_and_threads_come_back():
    before, pools_before = torch.get_num_threads(), _pool_threads()
    with single_thread_below(1e6):
        assert torch.get_num_threads() == 1
        assert _pool_threads() == {1}
    assert torch.get_num_threads() == before and _pool_threads() == pools_before
    with single_thread_below(10 * SMALL_FIT_FLOPS):       # large: untouched
        assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="inside"):     # restored on errors too
        with single_thread_below(1.0):
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before


_FRESH_PROCESS = """
import numpy as np, torch
import dualmap as dm
from dualmap._threads import limit_threads, single_thread_below
before = torch.get_num_threads()
X, y = np.random.default_rng(0).normal(size=(60, 3)), np.arange(60) % 2
dm.SWIMClassifier(layer_widths=(16,), random_state=0).fit(X, y)
after_fit = torch.get_num_threads()
with single_thread_below(1.0):
    inside = torch.get_num_threads()
after_block = torch.get_num_threads()
with limit_threads(1):
    pass
print(before, after_fit, inside, after_block, torch.get_num_threads())
"""


@pytest.mark.skipif(torch.get_num_threads() < 2, reason="needs a torch thread pool of 2 or more")
def test_a_fit_leaves_the_callers_threads_as_they_were_in_a_fresh_process():
    # in a fresh interpreter torch has never been told its thread count, so capping the OpenMP pool changes
    # what torch.get_num_threads() reports: a cap that read torch's count after capping restored it to 1
    import os
    import subprocess
    import sys

    # no thread count inherited (earlier tests may have set OMP/MKL/OPENBLAS_NUM_THREADS in this process)
    environment = {k: v for k, v in os.environ.items()
                   if not k.endswith("_NUM_THREADS") and not k.startswith("DUALMAP_THREADS")}
    result = subprocess.run([sys.executable, "-c", _FRESH_PROCESS], capture_output=True, text=True, check=True,
                            env=environment)
    before, after_fit, inside, after_block, after_limit = map(int, result.stdout.split())
    assert before >= 2 and inside == 1
    assert after_fit == after_block == after_limit == before


@pytest.mark.skipif(torch.get_num_threads() < 2, reason="needs a torch thread pool of 2 or more")
def test_nested_blocks_restore_once_and_other_threads_leave_the_threads_alone():
    import threading

    before, pools_before = torch.get_num_threads(), _pool_threads()
    with single_thread_below(1.0):
        with single_thread_below(1.0):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1 and _pool_threads("blas") == {1}      # the inner block restored nothing
    assert torch.get_num_threads() == before and _pool_threads() == pools_before
    seen = {}

    def worker():       # process-wide thread counts are not the business of a worker thread
        with single_thread_below(1.0):
            seen["inside"] = (torch.get_num_threads(), _pool_threads("blas"))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(10)
    assert seen["inside"] == (before, _pool_threads("blas")) and torch.get_num_threads() == before
