// The public entry points added for the Python package: convert_model
// (include/strata/convert.h) and encode_prompt (include/strata/prompt.h).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "strata/convert.h"
#include "strata/prompt.h"
#include "strata/strata.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace strata {
namespace {

TEST(PublicConvert, WritesQ8AndReportsProgressAndRejectsUnknownCompression) {
  test::TempDir tmp;
  const auto out = tmp.path() / "m.gguf";
  ConvertOptions o;
  o.compression = "8bit";
  int64_t last = -1, total = 0;
  o.progress = [&](const ConvertProgress& p) {
    EXPECT_GE(p.layers_done, last);
    last = p.layers_done;
    total = p.layers_total;
  };
  ConvertResult r = convert_model(test::stories_dir(), out, o);
  EXPECT_EQ(r.type, "Q8_0");
  EXPECT_EQ(r.bytes, std::filesystem::file_size(out));
  EXPECT_EQ(total, 5);
  EXPECT_EQ(last, 5);
  EXPECT_EQ(Engine::open(out)->info().dtype, "Q8_0");

  o.compression = "2bit";
  EXPECT_THROW(convert_model(test::stories_dir(), tmp.path() / "x.gguf", o), UsageError);
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "x.gguf"));
  // An exception from the progress callback aborts and leaves no file.
  o.compression = "4bit";
  o.progress = [](const ConvertProgress&) { throw Error("stop"); };
  EXPECT_THROW(convert_model(test::stories_dir(), tmp.path() / "y.gguf", o), Error);
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "y.gguf"));
}

TEST(PublicPrompt, AddsBosPerTokenizerConfigOnce) {
  Tokenizer tok = Tokenizer::from_file(test::stories_dir());
  // stories260K: add_bos_token true; the reference ids of "Once upon a time".
  EXPECT_EQ(encode_prompt(tok, "Once upon a time"), (std::vector<int32_t>{1, 403, 407, 261, 378}));
  EXPECT_EQ(encode_prompt(tok, "Once upon a time", /*add_special_tokens=*/false),
            (std::vector<int32_t>{403, 407, 261, 378}));
  std::vector<int32_t> empty = encode_prompt(tok, "");
  EXPECT_TRUE(empty == std::vector<int32_t>{1});
  EXPECT_TRUE(encode_prompt(tok, "", false).empty());
}

}  // namespace
}  // namespace strata
