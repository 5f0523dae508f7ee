"""No memory growth across many generate calls on one model."""
import gc
import os


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_no_leak_across_200_generate_calls(model):
    ids = [[1, 403, 407]]
    for _ in range(30):  # warm up: sessions, allocator pools, caches
        model.generate(ids, max_new_tokens=4, return_dict_in_generate=True)
    gc.collect()
    before = rss_bytes()
    for _ in range(200):
        out = model.generate(ids, max_new_tokens=4, return_dict_in_generate=True)
        assert len(out.new_tokens[0]) == 4
    gc.collect()
    grown = rss_bytes() - before
    assert grown < 1 << 20, f"RSS grew by {grown} bytes over 200 calls"
