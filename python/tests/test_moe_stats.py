"""MoE expert-cache counters in the stats the package returns: routed experts, hits, hit rate, expert bytes."""
import subprocess

import pytest

from conftest import STRATA_BIN


@pytest.fixture(scope="module")
def tiny_moe(tmp_path_factory):
    d = tmp_path_factory.mktemp("moe") / "tiny-qwen3moe"
    p = subprocess.run([STRATA_BIN, "synth", "--preset", "tiny-qwen3moe", "-o", str(d)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return str(d)


def test_expert_stats_at_the_minimum_budget(tiny_moe):
    from strata import Engine
    probe = Engine(tiny_moe, max_seq_len=16, kv_type="f32")
    budget = probe.plan(16)["min_memory_bytes"]
    probe.shutdown()
    eng = Engine(tiny_moe, max_memory=budget, max_seq_len=16, kv_type="f32")
    before = eng.stats()
    assert before["experts_routed"] == 0 and before["expert_bytes_read"] == 0 and before["expert_hit_rate"] == 0.0
    res = eng.submit([1, 2, 3, 4], max_new_tokens=4, stop_at_eos=False).wait()
    s = eng.stats()
    # Top-k slots only: each layer's experts evict the previous layer's, yet
    # repeated routings between passes may still hit.
    assert s["experts_routed"] > 0
    assert 0 <= s["expert_hits"] <= s["experts_routed"]
    assert s["expert_hit_rate"] == pytest.approx(s["expert_hits"] / s["experts_routed"])
    assert 0 < s["expert_bytes_read"] <= s["bytes_read"]
    # The request's own stats carry the same counters (engine totals over its passes).
    js = res.stats
    assert js["experts_routed"] == s["experts_routed"] and js["expert_bytes_read"] == s["expert_bytes_read"]
    assert js["expert_hit_rate"] == pytest.approx(s["expert_hit_rate"])
    eng.shutdown()


def test_dense_model_has_no_expert_traffic(model):
    s = model.stats()
    assert s["experts_routed"] == 0 and s["expert_hits"] == 0 and s["expert_bytes_read"] == 0
    assert s["expert_hit_rate"] == 0.0
