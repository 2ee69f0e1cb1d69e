"""Sequence numbers compare in 32-bit sequence space, as the kernel's before()/after() do."""

import numpy as np

from timewait.model.seq import seq_diff, seq_gt, seq_lt


def test_comparison_wraps_like_the_kernels():
    assert seq_gt(5, 2**32 - 5) and not seq_gt(2**32 - 5, 5)
    assert seq_lt(2**32 - 5, 5) and not seq_lt(5, 2**32 - 5)
    assert not seq_lt(7, 7) and not seq_gt(7, 7)


def test_half_the_space_away_is_neither_before_nor_after():
    assert not seq_lt(0, 2**31) and not seq_gt(0, 2**31)
    assert seq_lt(0, 2**31 - 1)


def test_arrays_compare_element_by_element():
    a = np.array([5, 2**32 - 5, 7], dtype=np.int64)
    b = np.array([2**32 - 5, 5, 7], dtype=np.int64)
    assert seq_gt(a, b).tolist() == [True, False, False]
    assert seq_lt(a, b).tolist() == [False, True, False]


def test_difference_is_signed():
    assert seq_diff(5, 2**32 - 5) == 10
    assert seq_diff(2**32 - 5, 5) == -10
    assert seq_diff(7, 7) == 0
