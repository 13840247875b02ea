"""numpy's BLAS held to one thread for a block of work.

OpenBLAS threads its products and solves above a size. On a shared 2-core machine the second
thread spins or waits for a core: the online learner's ~160 x 160 solve waited ~0.1 s for it
(docs/results_closed_loop.md), and the IK scaling sweep's J J^T of a 66 x 160 Jacobian measured
65x its one-thread CPU time (docs/ik.md) - a cost of the machine's load, not of the method.
threadpoolctl (installed with scikit-learn, a dependency of gpytorch) sets the limit; without it
BLAS is left as it is.
"""

from __future__ import annotations


class one_blas_thread:  # noqa: N801 - used as a lower-case context, like torch.no_grad
    """Context: numpy's BLAS on one thread inside, the previous limits restored after."""

    def __enter__(self) -> one_blas_thread:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            self._ctx = None
        else:
            self._ctx = threadpool_limits(1, user_api="blas")
        return self

    def __exit__(self, *exc) -> None:
        if self._ctx is not None:
            self._ctx.restore_original_limits()
