"""Ctrl-C (KeyboardInterrupt) cancels a running generation within a pass; the model stays usable."""
import _thread
import os
import signal
import threading
import time

import pytest


@pytest.mark.parametrize("how", ["interrupt_main", "sigint"])
def test_keyboard_interrupt_cancels_generate(model, reference, how):
    # 32 rows of 440 new tokens: 440+ passes, seconds of work, interrupted after 0.2 s.
    prompts = [[1, 403 + i % 8] for i in range(32)]
    fired = []

    def fire():
        fired.append(time.monotonic())
        if how == "interrupt_main":
            _thread.interrupt_main()
        else:
            os.kill(os.getpid(), signal.SIGINT)

    before = model.stats()
    timer = threading.Timer(0.2, fire)
    with pytest.raises(KeyboardInterrupt):
        timer.start()
        model.generate(prompts, max_new_tokens=440)
    raised = time.monotonic()
    timer.join()
    after = model.stats()
    passes = after["passes"] - before["passes"]
    busy = after["compute_s"] + after["io_wait_s"] - before["compute_s"] - before["io_wait_s"]
    per_pass = busy / max(passes, 1)
    assert after["requests_cancelled"] == before["requests_cancelled"] + 32 and 0 < passes < 400, (before, after)
    # Raised within a pass or two of the interrupt (plus the 20 ms signal poll).
    assert raised - fired[0] < 3 * per_pass + 0.1, (raised - fired[0], per_pass)
    # The next call works and gives the reference greedy ids.
    case = reference["greedy"][0]
    out = model.generate([case["prompt_ids"]], max_new_tokens=case["new_tokens"], return_dict_in_generate=True)
    assert out.new_tokens[0] == case["output_ids"]


def test_keyboard_interrupt_cancels_stream(model):
    pieces = []
    timer = threading.Timer(0.3, _thread.interrupt_main)
    with pytest.raises(KeyboardInterrupt):
        timer.start()
        for _ in range(1000):
            for piece in model.stream([1], max_new_tokens=480):
                pieces.append(piece)
    timer.join()
    assert pieces
    assert model.batch(["Once upon a time"], max_new_tokens=4)[0].finish_reason == "length"
