"""Intra-op threads: one per op on machines with at most 2 CPUs, set before TensorFlow starts."""

import pytest

from gated_bert.training import threads


@pytest.mark.parametrize(("cpus", "expected"), [(1, 1), (2, 1), (3, None), (16, None)])
def test_one_thread_per_op_only_where_measured(cpus, expected):
    assert threads.default_intra_op_threads(cpus) == expected


@pytest.mark.parametrize(("cpus", "given", "expected"), [(2, None, "1"), (8, None, "default"), (2, "2", "2")])
def test_configure_sets_the_variable_unless_the_user_did(monkeypatch, cpus, given, expected):
    monkeypatch.setattr(threads, "available_cpus", lambda: cpus)
    environ = {} if given is None else {threads.ENV: given}
    assert threads.configure_intra_op_threads(environ) == expected
    assert threads.intra_op_threads_in_effect(environ) == expected
    assert environ.get(threads.ENV, "default") == expected


def test_available_cpus_is_this_process_share():
    assert 1 <= threads.available_cpus()
