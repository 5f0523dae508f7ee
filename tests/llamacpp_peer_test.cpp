// strata's GGUF files read by llama.cpp itself. Runs when
// STRATA_LLAMA_CPP_BIN names a directory with llama.cpp's llama-simple and
// llama-gguf (checked with the build of February 2025), and skips saying
// so otherwise. For every `strata convert --type` recipe:
//   - llama-gguf reads the whole file, tensor data included (the data
//     section ends padded to general.alignment);
//   - llama-simple loads it, printing no warning that it does not print for
//     llama.cpp's own file of the same vocabulary (this snapshot warns
//     "special_eos_id is not in special_eog_ids" for every SentencePiece
//     vocabulary whose eos is "</s>": its end-of-generation list is matched
//     on token text), and generates 16 tokens greedily from "Once upon a time".
// On stories260K (trained; rows of 64 and 172, so the K-quant recipes fall
// back per tensor as llama.cpp's do) that text must be strata's greedy text
// on the same file: the margins of a trained model are far above the ~0.05
// logit difference of the two engines (f16 KV cache, accumulation order;
// gguf_llamacpp_test). Except F16: llama.cpp rounds activations to f16 for
// F16 weights and degenerates on stories260K (", there there there ..."),
// for its own F16 conversion of the model as well (llama_model_quantize
// of testdata/gguf/stories260K-llamacpp-f32.gguf), so that case is printed,
// not compared.
// A random-weight model of stories260K's vocabulary with hidden size 256 and
// ffn 768 puts every matrix really in the recipe's K-quant / IQ4 types; its
// logits are near-ties everywhere (strata's own f32 and bf16 files diverge
// within 16 tokens), so there llama.cpp must load and run each file and the
// texts are printed only. The K-quant and IQ4 blocks themselves are pinned
// byte for byte to llama-quantize's by kquant_test.
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

constexpr const char* kWarnings[] = {"special_eos_id is not in special_eog_ids", "special_eot_id is not in",
                                    "key not found", "control-looking token", "was not control-type"};

std::string llama_simple_err(const fs::path& file) {
  return test::run_program((llama_dir() / "llama-simple").string(), {"-m", file.string(), "-n", "1", kPrompt}).err;
}

// Converts `model` with every recipe and checks llama.cpp on each file;
// `reference` is a file llama.cpp's tools wrote with the same vocabulary.
void check_every_recipe(const fs::path& model, const fs::path& reference, const std::string& label,
                        bool compare_text) {
  const fs::path bin = llama_dir();
  const std::string reference_err = llama_simple_err(reference);
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
    for (const char* warning : kWarnings) {
      if (reference_err.find(warning) == std::string::npos) {
        EXPECT_EQ(lc.err.find(warning), std::string::npos) << warning;
      }
    }
    // llama-simple prints the prompt's pieces ("<s> Once upon a time") then the continuation.
    const size_t p = lc.out.find(kPrompt);
    ASSERT_NE(p, std::string::npos) << lc.out;
    const std::string theirs = trim(lc.out.substr(p + std::string(kPrompt).size()));

    const test::CommandResult st = test::run_strata({"run", file.string(), kPrompt, "-n", "16"});
    ASSERT_EQ(st.status, 0) << st.err;
    const std::string ours = trim(st.out);
    std::printf("[ %-16s %-6s ] llama.cpp: %s\n", label.c_str(), r.c_str(), theirs.c_str());
    if (ours != theirs) std::printf("[ %-16s %-6s ] strata:    %s\n", label.c_str(), r.c_str(), ours.c_str());
    if (compare_text && r != "f16") {
      EXPECT_EQ(ours, theirs);
    }
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

TEST_F(LlamaCppPeer, Stories260KEveryRecipe) {
  check_every_recipe(test::stories_dir(), test::testdata() / "gguf" / "stories260K-llamacpp-f32.gguf", "stories260K",
                     true);
}

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
  o.weight_std = 0.15f;  // logits spread about as widely as a trained model's
  fs::create_directories(dir);
  write_synthetic_model(dir, c, o);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) fs::copy_file(test::stories_dir() / f, dir / f);
  check_every_recipe(dir, test::testdata() / "gguf" / "synthetic-d256-f32.gguf", "random-d256", false);
}

}  // namespace
}  // namespace strata
