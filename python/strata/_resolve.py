"""Where a model is: local paths, repo ids, and the compressed-copy cache."""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from typing import Optional, Tuple

from . import _strata

def resolve_model(name: str, hf_token: Optional[str]) -> str:
    """A local model directory or .gguf file for `name`: a path, or ORG/NAME[@REV]
    on the Hugging Face hub (downloaded into the hub's cache, reused afterwards)."""
    if os.path.exists(name):
        return os.path.abspath(name)
    if _strata.is_hub_model_name(name):
        try:
            return _strata.hub_download(name, hf_token)
        except _strata.ModelNotFoundError:
            raise
        except _strata.Error as e:
            msg = str(e)
            if "not found" in msg or "not in the hub cache" in msg:
                raise _strata.ModelNotFoundError(msg) from None
            raise
    raise _strata.ModelNotFoundError(f"{name}: no such file or directory (and not an ORG/NAME hub model name)")


def cache_root() -> str:
    """$STRATA_CACHE_DIR, else $XDG_CACHE_HOME/strata, else ~/.cache/strata."""
    base = os.environ.get("STRATA_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "strata")
    return base


def compressed_path(model_dir: str, compression: str, directory: Optional[str]) -> str:
    """The cache file of `model_dir` compressed as `compression`: named after
    the model, keyed by its absolute path and its files' sizes and times, so
    a changed model gets a new file."""
    h = hashlib.sha256(os.path.realpath(model_dir).encode())
    for name in sorted(os.listdir(model_dir)):
        if name.endswith((".safetensors", ".json")):
            st = os.stat(os.path.join(model_dir, name))
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns};".encode())
    base = os.path.basename(os.path.normpath(model_dir)) or "model"
    d = directory or os.path.join(cache_root(), "converted")
    return os.path.join(d, f"{base}-{h.hexdigest()[:16]}-{compression}", f"model-{compression}.gguf")


# Copied beside the compressed GGUF so that the engine finds the tokenizer,
# stop strings and chat template there as in the original directory.
_SIDE_FILES = ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json",
               "chat_template.jinja", "chat_template.json", "config.json")


class _ProgressBar:
    def __init__(self, label: str):
        self.label = label
        self.t0 = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.last = -1.0

    def __call__(self, layers_done: int, layers_total: int, written: int, total: int) -> None:
        now = time.monotonic()
        if not self.tty and now - self.last < 5 and layers_done < layers_total:
            return  # a log gets a line every few seconds, a terminal a live bar
        self.last = now
        s = now - self.t0
        rate = written / s if s > 0 else 0.0
        eta = (total - min(total, written)) / rate if rate > 0 else 0.0
        width = 30
        fill = int(width * layers_done / layers_total) if layers_total else width
        line = (f"{self.label} [{'#' * fill:<{width}}] layer {layers_done}/{layers_total} "
                f"{rate / 1e6:.1f} MB/s ETA {eta:.0f} s")
        sys.stderr.write(("\r" + line + "   ") if self.tty else (line + "\n"))
        sys.stderr.flush()

    def end(self) -> None:
        if self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


def ensure_compressed(model_dir: str, compression: str, directory: Optional[str]) -> Tuple[str, bool]:
    """(path of the compressed GGUF, True when it was written now)."""
    if not os.path.isdir(model_dir):
        raise _strata.UsageError(f"{model_dir}: compression={compression!r} converts a Hugging Face model "
                                 f"directory (safetensors); this is not a directory")
    out = compressed_path(model_dir, compression, directory)
    if os.path.isfile(out):
        return out, False
    os.makedirs(os.path.dirname(out), exist_ok=True)
    for name in _SIDE_FILES:  # first: a complete GGUF implies its side files are there
        src = os.path.join(model_dir, name)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(os.path.dirname(out), name))
    sys.stderr.write(f"strata: compressing {model_dir} to {compression} (once) -> {out}\n")
    bar = _ProgressBar("converting")
    try:
        r = _strata.convert(model_dir, out, compression, bar)
    finally:
        bar.end()
    sys.stderr.write(f"strata: wrote {out} ({_strata.format_bytes(r['bytes'])}, {r['type']})\n")
    return out, True
