// strata's GGUF files read by llama.cpp itself. Runs when
// STRATA_LLAMA_CPP_BIN names a directory with llama.cpp's llama-simple and
// llama-gguf (checked with the build of February 2025), and skips saying
// so otherwise. For every `strata convert --type` recipe:
//   - llama-gguf reads the whole file, tensor data included (the data
//     section ends padded to general.alignment);
//   - llama-simple loads it without the warnings strata's files once gave
//     and generates 16 tokens greedily from "Once upon a time";
//   - that text is strata's own greedy text on the same file.
// Two sources: stories260K (trained; rows of 64 and 172, so the K-quant
// recipes fall back per tensor as llama.cpp's do) and a random-weight model
// of stories260K's vocabulary with hidden size 256 and ffn 768, where every
// matrix is really in the recipe's K-quant / IQ4 types.
//
// Greedy text is compared whole. Both engines quantize activations to the
// same 8-bit blocks and use the same weight blocks, so their logits differ
// by ~0.05 (f16 KV cache, accumulation order; gguf_llamacpp_test); the
// random model's weights are scaled (std 0.15) so that its logits spread
// like a trained model's and 16 greedy steps have clear margins.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "convert/quant_recipe.h"
#include "convert/synthetic_model.h"
#include "formats/model_config.h"
#include "test_util.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

fs::path llama_dir() {
  const char* d = std::getenv("STRATA_LLAMA_CPP_BIN");
  return d && *d ? fs::path(d) : fs::path();
}

std::vector<std::string> recipes() {
  std::vector<std::string> out;
  const std::string names = quant_recipe_names();
  size_t at = 0;
  while (at < names.size()) {
    size_t end = names.find(", ", at);
    if (end == std::string::npos) end = names.size();
    out.push_back(names.substr(at, end - at));
    at = end + 2;
  }
  return out;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  size_t b = 0;
  while (b < s.size() && s[b] == ' ') ++b;
  return s.substr(b);
}

constexpr const char* kPrompt = "Once upon a time";

// Converts `model` with every recipe and checks llama.cpp on each file.
void check_every_recipe(const fs::path& model, const std::string& label) {
  const fs::path bin = llama_dir();
  test::TempDir tmp;
  size_t same = 0, total = 0;
  for (const std::string& r : recipes()) {
    SCOPED_TRACE(label + " " + r);
    const fs::path file = tmp / (r + ".gguf");
    const test::CommandResult conv = test::run_strata({"convert", model.string(), "-o", file.string(), "--type", r});
    ASSERT_EQ(conv.status, 0) << conv.err;

    const test::CommandResult rd = test::run_program((bin / "llama-gguf").string(), {file.string(), "r", "n"});
    EXPECT_EQ(rd.status, 0) << "llama-gguf could not read " << r << ":\n" << rd.err << rd.out.substr(0, 2000);

    const test::CommandResult lc =
        test::run_program((bin / "llama-simple").string(), {"-m", file.string(), "-n", "16", kPrompt});
    ASSERT_EQ(lc.status, 0) << "llama-simple failed on " << r << ":\n" << lc.err;
    for (const char* warning : {"special_eos_id is not in special_eog_ids", "key not found"})
      EXPECT_EQ(lc.err.find(warning), std::string::npos) << warning;
    // llama-simple prints the prompt's pieces ("<s> Once upon a time") then the continuation.
    const size_t p = lc.out.find(kPrompt);
    ASSERT_NE(p, std::string::npos) << lc.out;
    const std::string theirs = trim(lc.out.substr(p + std::string(kPrompt).size()));

    const test::CommandResult st = test::run_strata({"run", file.string(), kPrompt, "-n", "16"});
    ASSERT_EQ(st.status, 0) << st.err;
    const std::string ours = trim(st.out);
    std::printf("[ %-16s %-6s ] llama.cpp: %s\n", label.c_str(), r.c_str(), theirs.c_str());
    if (ours != theirs) std::printf("[ %-16s %-6s ] strata:    %s\n", label.c_str(), r.c_str(), ours.c_str());
    EXPECT_EQ(ours, theirs);
    ++total;
    same += ours == theirs;
  }
  std::printf("[ %s ] %zu/%zu recipes: llama.cpp's greedy text is strata's\n", label.c_str(), same, total);
}

class LlamaCppPeer : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path d = llama_dir();
    if (d.empty()) GTEST_SKIP() << "STRATA_LLAMA_CPP_BIN is not set (a llama.cpp build/bin directory)";
    for (const char* tool : {"llama-simple", "llama-gguf"})
      if (!fs::exists(d / tool)) GTEST_SKIP() << "no " << tool << " in STRATA_LLAMA_CPP_BIN=" << d.string();
  }
};

TEST_F(LlamaCppPeer, Stories260KEveryRecipe) { check_every_recipe(test::stories_dir(), "stories260K"); }

TEST_F(LlamaCppPeer, Hidden256EveryRecipe) {
  test::TempDir tmp;
  const fs::path dir = tmp / "d256";
  ModelConfig c = load_model_config(test::stories_dir());
  c.hidden_size = 256;
  c.intermediate_size = 768;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 64;
  c.tie_word_embeddings = false;
  SynthOptions o;
  o.dtype = DType::F32;
  o.seed = 11;
  o.weight_std = 0.15f;
  fs::create_directories(dir);
  write_synthetic_model(dir, c, o);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) fs::copy_file(test::stories_dir() / f, dir / f);
  check_every_recipe(dir, "random-d256");
}

}  // namespace
}  // namespace strata
