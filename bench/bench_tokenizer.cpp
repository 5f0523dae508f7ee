// Tokenizer throughput: encode MB/s on English-like prose and on C++ source
// (single thread), decode MB/s, and the time to load each tokenizer.json.
//
//   build/bench_tokenizer [--benchmark_filter=Encode]
//
// There is no prose corpus on disk, so the prose is generated
// deterministically from an embedded word list (about 3 MB); the source code
// is strata's own src/ tree. Test data is found beside the checkout
// (../shared/testdata) or in $STRATA_TESTDATA.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include "tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;

fs::path repo_root() { return fs::path(__FILE__).parent_path().parent_path(); }

fs::path tokenizer_dir(const std::string& name) {
  const char* env = std::getenv("STRATA_TESTDATA");
  fs::path base = env ? fs::path(env) : repo_root().parent_path() / "shared" / "testdata";
  return base / "tokenizers" / name;
}

const strata::Tokenizer& tokenizer(const std::string& name) {
  static std::map<std::string, strata::Tokenizer> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, strata::Tokenizer::from_file(tokenizer_dir(name))).first;
  return it->second;
}

// Sentences of common English words with capitals, commas, numbers, quotes
// and paragraph breaks, from a fixed seed.
const std::string& prose() {
  static const std::string text = [] {
    static const char* words[] = {
        "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not",
        "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you", "were",
        "their", "one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when", "will", "would",
        "who", "so", "no", "she", "other", "its", "may", "these", "about", "than", "into", "them", "only", "could",
        "time", "new", "some", "people", "two", "first", "after", "water", "world", "because", "through", "river",
        "mountain", "village", "library", "morning", "evening", "history", "science", "government", "language",
        "children", "question", "important", "different", "following", "between", "development", "understand",
        "however", "although", "together", "without", "against", "company", "country", "problem", "system",
        "program", "number", "example", "general", "information", "particular", "experience", "especially",
        "beautiful", "quickly", "carefully", "remembered", "walked", "discovered", "explained", "believed",
        "weather", "garden", "window", "journey", "stories", "teacher", "student", "kitchen", "market", "summer",
        "winter", "ancient", "modern", "electric", "quietly", "suddenly", "everything", "nothing", "somewhere",
        "doesn't", "I'm", "they're", "we've", "she'll", "it's", "couldn't", "Mr.", "Dr.", "U.S.", "e.g.",
    };
    constexpr size_t kWords = sizeof(words) / sizeof(words[0]);
    std::mt19937 rng(12345);
    std::string out;
    out.reserve(3'200'000);
    bool start = true;
    while (out.size() < 3'000'000) {
      std::string w = words[rng() % kWords];
      if (rng() % 40 == 0) w = std::to_string(rng() % 100000);
      if (start) w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
      out += w;
      start = false;
      unsigned r = rng() % 100;
      if (r < 7) {
        out += ". ";
        start = true;
        if (rng() % 8 == 0) out += "\n\n";
      } else if (r < 12) {
        out += ", ";
      } else if (r < 13) {
        out += "? ";
        start = true;
      } else if (r < 14) {
        out += "; ";
      } else {
        out += ' ';
      }
    }
    return out;
  }();
  return text;
}

// strata's own sources, repeated up to at least 1 MB if the tree is small.
const std::string& source_code() {
  static const std::string text = [] {
    std::string all;
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(repo_root() / "src")) {
      auto ext = e.path().extension();
      if (e.is_regular_file() && (ext == ".cpp" || ext == ".h")) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::ostringstream ss;
      ss << in.rdbuf();
      all += ss.str();
    }
    if (all.empty()) all = "int main() { return 0; }\n";
    std::string out = all;
    while (out.size() < (1u << 20)) out += all;
    return out;
  }();
  return text;
}

void BM_Encode(benchmark::State& state, const std::string& name, const std::string& (*text)()) {
  const auto& tok = tokenizer(name);
  const std::string& t = text();
  size_t n_ids = 0;
  for (auto _ : state) {
    auto ids = tok.encode(t, false);
    n_ids = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * t.size()));
  state.counters["input_MB"] = static_cast<double>(t.size()) / 1e6;
  state.counters["bytes_per_token"] = static_cast<double>(t.size()) / static_cast<double>(n_ids ? n_ids : 1);
}

// The same with an empty piece cache: a fresh tokenizer for every iteration
// (loading is not timed), so every distinct piece is merged once.
void BM_EncodeColdCache(benchmark::State& state, const std::string& name, const std::string& (*text)()) {
  const std::string& t = text();
  for (auto _ : state) {
    state.PauseTiming();
    auto tok = strata::Tokenizer::from_file(tokenizer_dir(name));
    state.ResumeTiming();
    auto ids = tok.encode(t, false);
    benchmark::DoNotOptimize(ids.data());
    state.PauseTiming();
    tok = strata::Tokenizer::from_file(tokenizer_dir(name));  // destroy the warm one untimed
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * t.size()));
}

void BM_Decode(benchmark::State& state, const std::string& name) {
  const auto& tok = tokenizer(name);
  auto ids = tok.encode(prose(), false);
  for (auto _ : state) {
    auto s = tok.decode(ids);
    benchmark::DoNotOptimize(s.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * prose().size()));
}

void BM_Load(benchmark::State& state, const std::string& name) {
  auto file = tokenizer_dir(name) / "tokenizer.json";
  for (auto _ : state) {
    auto tok = strata::Tokenizer::from_file(file);
    benchmark::DoNotOptimize(&tok);
  }
  state.counters["file_MB"] = static_cast<double>(fs::file_size(file)) / 1e6;
}

const std::string& (*const kProse)() = &prose;
const std::string& (*const kCode)() = &source_code;

BENCHMARK_CAPTURE(BM_Encode, llama3_prose, std::string("llama3"), kProse)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, llama3_code, std::string("llama3"), kCode)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, llama2_prose, std::string("llama2"), kProse)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, llama2_code, std::string("llama2"), kCode)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, qwen3_prose, std::string("qwen3"), kProse)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_EncodeColdCache, llama3_prose, std::string("llama3"), kProse)
    ->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK_CAPTURE(BM_EncodeColdCache, llama3_code, std::string("llama3"), kCode)
    ->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK_CAPTURE(BM_Decode, llama3_prose, std::string("llama3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, llama2_prose, std::string("llama2"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Load, llama3, std::string("llama3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Load, qwen3, std::string("qwen3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Load, deepseek_v3, std::string("deepseek_v3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Load, mistral, std::string("mistral"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Load, llama2, std::string("llama2"))->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
