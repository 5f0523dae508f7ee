// libFuzzer target for the GGUF header parser, the model config and tensor
// names mapped from its metadata, and the tokenizer its tokenizer.ggml.*
// keys describe: the input is a whole file. Every input must either
// parse into tensors that lie inside the file, sized as type and shape say,
// aligned, without overlap, or throw strata::Error naming the file.
//
//   STRATA_FUZZ_TARGET=gguf scripts/fuzz.sh 180
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "arch/gguf_model.h"
#include "core/error.h"
#include "formats/gguf.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    strata::GgufHeader h = strata::parse_gguf_header(data, size, size, "fuzz.gguf");
    uint64_t prev_end = h.data_start;
    for (const strata::TensorInfo& t : h.infos) {
      check(t.offset >= h.data_start && t.offset <= size);
      check(t.nbytes <= size - t.offset);
      check(t.nbytes == strata::dtype_bytes(t.dtype, t.numel()));
      check((t.offset - h.data_start) % h.alignment == 0);
      check(t.offset >= prev_end);
      prev_end = t.offset + t.nbytes;
    }
    try {
      strata::ModelConfig c = strata::gguf_model_config(h, "fuzz.gguf");
      check(c.num_layers > 0 && c.hidden_size > 0 && c.num_heads > 0 && c.vocab_size > 0);
      strata::TensorIndex idx = strata::gguf_hf_index(h, strata::find_arch(c.architecture, "fuzz.gguf"), "fuzz.gguf");
      check(idx.tensors.size() == h.infos.size());
    } catch (const strata::Error& e) {
      check(std::string_view(e.what()).substr(0, 11) == "fuzz.gguf: ");
    }
    // The tokenizer the metadata describes: built, used, or refused by name.
    if (strata::tok::gguf_has_vocab(h)) {
      try {
        strata::Tokenizer tok = strata::Tokenizer::from_gguf(h, "fuzz.gguf");
        std::vector<int32_t> ids = tok.encode("Hello world 123 \xE2\x96\x81x", true);
        ids.push_back(int32_t(size) % 1000);
        std::string text = tok.decode(ids);
        (void)text;
      } catch (const strata::Error& e) {
        check(std::string_view(e.what()).substr(0, 11) == "fuzz.gguf: ");
      }
    }
  } catch (const strata::Error& e) {
    check(std::string_view(e.what()).substr(0, 11) == "fuzz.gguf: ");
  }
  return 0;
}
