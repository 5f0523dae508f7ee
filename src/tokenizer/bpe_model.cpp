#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <mutex>
#include <shared_mutex>

#include "tokenizer/json_util.h"
#include "tokenizer/unicode.h"

namespace strata::tok {

namespace {
constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581
constexpr size_t kCacheCapacity = 1 << 16;
constexpr size_t kMaxCachedWord = 256;  // bytes; longer pieces are rare and would bloat the cache
}  // namespace

// (left id, right id) -> (rank, merged id), open addressing. A std::map or
// unordered_map of pairs costs several times more per lookup, and lookups are
// the inner loop of merging.
struct BpeModel::MergeTable {
  struct Slot {
    uint64_t key = kEmpty;
    int32_t rank = 0;
    int32_t new_id = 0;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  std::vector<Slot> slots;
  uint64_t mask = 0;

  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static uint64_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
  }
  explicit MergeTable(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots.resize(cap);
    mask = cap - 1;
  }
  // Later duplicates replace earlier ones, as the reference's HashMap collect does.
  void put(int32_t a, int32_t b, int32_t rank, int32_t new_id) {
    uint64_t k = key(a, b);
    for (uint64_t i = hash(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == kEmpty || slots[i].key == k) {
        slots[i] = {k, rank, new_id};
        return;
      }
    }
  }
  const Slot* get(int32_t a, int32_t b) const {
    uint64_t k = key(a, b);
    for (uint64_t i = hash(k) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == k) return &slots[i];
      if (slots[i].key == kEmpty) return nullptr;
    }
  }
};

struct BpeModel::Cache {
  mutable std::shared_mutex mu;
  std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
};

BpeModel::BpeModel() : cache_(std::make_unique<Cache>()) { std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1); }
BpeModel::~BpeModel() = default;

namespace {

// Reads the tables the tokenizer.json reader did not capture from the DOM.
void tables_from_dom(const nlohmann::json& j, BpeTables& t) {
  if (!t.has_vocab) {
    const auto& vocab = require(j, "vocab", "model");
    if (!vocab.is_object()) throw Error("model: 'vocab' must be an object of token -> id");
    t.vocab.reserve(vocab.size());
    for (const auto& [token, idv] : vocab.items()) {
      if (!idv.is_number_integer()) throw Error(fmt::format("model: vocab entry '{}' has no valid id", token));
      t.vocab.emplace_back(token, idv.get<int64_t>());
    }
  }
  if (!t.has_merges) {
    const auto& merges = require(j, "merges", "model");
    if (!merges.is_array()) throw Error("model: 'merges' must be an array");
    t.merges.reserve(merges.size());
    for (const auto& mj : merges) {
      size_t rank = t.merges.size();
      if (mj.is_string()) {
        const auto& line = mj.get_ref<const std::string&>();
        size_t sp = line.find(' ');
        if (sp == std::string::npos) throw Error(fmt::format("model: merge {} '{}' is not two tokens", rank, line));
        t.merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
      } else if (mj.is_array() && mj.size() == 2 && mj[0].is_string() && mj[1].is_string()) {
        t.merges.emplace_back(mj[0].get<std::string>(), mj[1].get<std::string>());
      } else {
        throw Error(fmt::format("model: merge {} is neither \"a b\" nor [a, b]", rank));
      }
    }
  }
}

}  // namespace

std::unique_ptr<BpeModel> BpeModel::from_json(const nlohmann::json& j, BpeTables tables) {
  const std::string where = "model";
  if (!j.is_object()) throw Error("'model' is not a JSON object");
  auto type_it = j.find("type");
  if (type_it != j.end() && !(type_it->is_string() && type_it->get<std::string>() == "BPE"))
    throw Error(fmt::format("unsupported model type '{}'", type_it->is_string() ? type_it->get<std::string>() : type_it->dump()));
  if (type_it == j.end() && !j.contains("merges")) throw Error("unsupported model: no 'type' and no 'merges'");
  auto dropout = j.find("dropout");
  if (dropout != j.end() && dropout->is_number() && dropout->get<double>() > 0.0)
    throw Error("unsupported BPE option: dropout");
  tables_from_dom(j, tables);

  std::unique_ptr<BpeModel> m(new BpeModel());
  m->vocab_.reserve(tables.vocab.size());
  int32_t max_id = -1;
  for (auto& [token, id64] : tables.vocab) {
    if (id64 < 0 || id64 > INT32_MAX) throw Error(fmt::format("model: vocab entry '{}' has no valid id", token));
    auto id = static_cast<int32_t>(id64);
    m->vocab_.emplace(std::move(token), id);
    max_id = std::max(max_id, id);
  }
  tables.vocab = {};
  m->id_to_token_.resize(static_cast<size_t>(max_id + 1));
  m->id_present_.resize(static_cast<size_t>(max_id + 1));
  m->small_char_ids_.assign(0x800, -1);
  for (const auto& [token, id] : m->vocab_) {
    m->id_to_token_[id] = token;
    m->id_present_[id] = true;
    size_t i = 0;
    if (!token.empty() && unicode::is_valid_utf8(token)) {
      char32_t c = unicode::next_char(token, i);
      if (i == token.size() && c < 0x800) m->small_char_ids_[c] = id;
    }
  }

  m->unk_token_ = optional_value<std::string>(j, "unk_token", where);
  m->fuse_unk_ = optional_field(j, "fuse_unk", false, where);
  m->byte_fallback_ = optional_field(j, "byte_fallback", false, where);
  m->ignore_merges_ = optional_field(j, "ignore_merges", false, where);
  m->prefix_ = optional_field<std::string>(j, "continuing_subword_prefix", "", where);
  m->suffix_ = optional_field<std::string>(j, "end_of_word_suffix", "", where);
  if (!m->prefix_.empty() || !m->suffix_.empty()) m->small_char_ids_.clear();  // lookups need the affixes
  for (int b = 0; b < 256; ++b) {
    if (auto id = m->token_to_id(fmt::format("<0x{:02X}>", b))) m->byte_ids_[b] = *id;
  }

  if (!tables.ranks.empty() && tables.ranks.size() != tables.merges.size())
    throw Error("model: merge ranks do not match the merges");
  m->merges_ = std::make_unique<MergeTable>(tables.merges.size());
  std::string merged;
  int32_t rank = 0;
  for (const auto& [a, b] : tables.merges) {
    auto ia = m->token_to_id(a), ib = m->token_to_id(b);
    if (!ia || !ib) throw Error(fmt::format("model: merge {} uses a token not in the vocabulary", rank));
    merged.assign(a);
    std::string_view tail = b;
    if (!m->prefix_.empty() && tail.starts_with(m->prefix_)) tail.remove_prefix(m->prefix_.size());
    merged.append(tail);
    auto inew = m->token_to_id(merged);
    if (!inew) throw Error(fmt::format("model: merge {} gives '{}', which is not in the vocabulary", rank, merged));
    m->merges_->put(*ia, *ib, tables.ranks.empty() ? rank : tables.ranks[size_t(rank)], *inew);
    ++rank;
  }
  m->check_metaspace_chunking();
  return m;
}

void BpeModel::check_metaspace_chunking() {
  metaspace_chunking_ = false;
  if (!prefix_.empty() || !suffix_.empty() || !vocab_.contains(kMetaspace)) return;
  for (const auto& [token, id] : vocab_) {
    for (size_t pos = token.find(kMetaspace, 1); pos != std::string::npos; pos = token.find(kMetaspace, pos + 1)) {
      if (pos < kMetaspace.size() || token.compare(pos - kMetaspace.size(), kMetaspace.size(), kMetaspace) != 0) return;
    }
  }
  metaspace_chunking_ = true;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id >= id_end() || !id_present_[id]) return nullptr;
  return &id_to_token_[id];
}

int32_t BpeModel::char_id(std::string_view ch) const {
  if (!small_char_ids_.empty()) {
    size_t i = 0;
    char32_t c = unicode::next_char(ch, i);
    if (c < 0x800) return small_char_ids_[c];
  }
  auto it = vocab_.find(ch);
  return it == vocab_.end() ? -1 : it->second;
}

void BpeModel::tokenize(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (!metaspace_chunking_ || piece.size() <= kMaxCachedWord) {
    tokenize_cached(piece, true, out);
    return;
  }
  if (ignore_merges_) {
    if (auto it = vocab_.find(piece); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  // Cut before every "▁" that follows another character: no merge crosses
  // such a point (see metaspace_chunking_), so the result is unchanged.
  size_t start = 0, i = 0;
  bool prev_meta = false;
  while (i < piece.size()) {
    bool meta = piece.compare(i, kMetaspace.size(), kMetaspace) == 0;
    if (meta && !prev_meta && i > start) {
      tokenize_cached(piece.substr(start, i - start), false, out);
      start = i;
    }
    prev_meta = meta;
    i += meta ? kMetaspace.size() : unicode::char_len(static_cast<unsigned char>(piece[i]));
  }
  tokenize_cached(piece.substr(start), false, out);
}

void BpeModel::tokenize_cached(std::string_view word, bool whole_word, std::vector<int32_t>& out) const {
  bool cacheable = word.size() <= kMaxCachedWord;
  // A whole word and a chunk of the same text give the same ids except
  // under ignore_merges, so only whole words share the cache then.
  cacheable = cacheable && (whole_word || !ignore_merges_);
  if (cacheable) {
    std::shared_lock lock(cache_->mu);
    if (auto it = cache_->map.find(word); it != cache_->map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  size_t first = out.size();
  auto vocab_hit = ignore_merges_ && whole_word ? vocab_.find(word) : vocab_.end();
  if (vocab_hit != vocab_.end()) {
    out.push_back(vocab_hit->second);
  } else {
    merge_word(word, out);
  }
  if (cacheable) {
    std::unique_lock lock(cache_->mu);
    // Clearing when full keeps memory bounded and lets the cache follow the
    // vocabulary of recent text.
    if (cache_->map.size() >= kCacheCapacity) cache_->map.clear();
    cache_->map.emplace(std::string(word), std::vector<int32_t>(out.begin() + static_cast<ptrdiff_t>(first), out.end()));
  }
}

namespace {

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  int32_t len;  // bytes of the piece it covers; 0 once merged into its left neighbour
};

struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
  // std heap functions build a max-heap; this orders it so the top is the
  // lowest rank, then the leftmost position, as the reference's BinaryHeap.
  bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

void BpeModel::merge_word(std::string_view w, std::vector<int32_t>& out) const {
  std::vector<Symbol> syms;
  syms.reserve(w.size());
  auto add = [&](int32_t id, size_t len) {
    auto n = static_cast<int32_t>(syms.size());
    syms.push_back({id, n - 1, n + 1, static_cast<int32_t>(len)});
  };
  // A pending run of unknown characters (unk_len == 0: none).
  int32_t unk_pending = -1;
  size_t unk_len = 0;
  auto unk_id = [&]() {
    auto id = token_to_id(*unk_token_);
    if (!id) throw Error(fmt::format("BPE unk_token '{}' is not in the vocabulary", *unk_token_));
    return *id;
  };
  std::string affixed;
  size_t i = 0;
  while (i < w.size()) {
    size_t start = i;
    i += unicode::char_len(static_cast<unsigned char>(w[i]));
    std::string_view ch = w.substr(start, i - start);
    std::string_view s = ch;
    if ((!prefix_.empty() && start != 0) || (!suffix_.empty() && i == w.size())) {
      affixed.clear();
      if (!prefix_.empty() && start != 0) affixed += prefix_;
      affixed += ch;
      if (!suffix_.empty() && i == w.size()) affixed += suffix_;
      s = affixed;
    }
    int32_t id = -1;
    if (s.size() == ch.size()) {
      id = char_id(s);
    } else if (auto it = vocab_.find(s); it != vocab_.end()) {
      id = it->second;
    }
    if (id >= 0) {
      if (unk_len) {
        add(unk_pending, unk_len);
        unk_len = 0;
      }
      add(id, ch.size());
      continue;
    }
    if (byte_fallback_) {
      bool all = std::all_of(s.begin(), s.end(), [&](char c) { return byte_ids_[static_cast<unsigned char>(c)] >= 0; });
      if (all) {
        // As in the reference, a pending unk is not flushed here.
        for (char c : s) add(byte_ids_[static_cast<unsigned char>(c)], 1);
        continue;
      }
    }
    if (unk_token_) {
      if (unk_len && fuse_unk_) {
        unk_len += ch.size();
      } else {
        if (unk_len) add(unk_pending, unk_len);
        unk_pending = unk_id();
        unk_len = ch.size();
      }
    }
    // Without unk_token an unknown character is dropped, as in the reference.
  }
  if (unk_len) add(unk_pending, unk_len);
  if (syms.empty()) return;
  syms.back().next = -1;

  std::vector<Candidate> heap;
  heap.reserve(syms.size());
  for (size_t k = 0; k + 1 < syms.size(); ++k) {
    if (const auto* m = merges_->get(syms[k].id, syms[k + 1].id))
      heap.push_back({m->rank, static_cast<int32_t>(k), m->new_id});
  }
  std::make_heap(heap.begin(), heap.end());
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    Candidate top = heap.back();
    heap.pop_back();
    Symbol& cur = syms[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    int32_t next_pos = cur.next;
    Symbol right = syms[next_pos];
    // Skip entries made stale by an earlier merge.
    const auto* m = merges_->get(cur.id, right.id);
    if (!m || m->new_id != top.new_id) continue;
    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    syms[next_pos].len = 0;
    if (right.next >= 0) syms[right.next].prev = top.pos;
    if (cur.prev >= 0) {
      if (const auto* pm = merges_->get(syms[cur.prev].id, cur.id)) {
        heap.push_back({pm->rank, cur.prev, pm->new_id});
        std::push_heap(heap.begin(), heap.end());
      }
    }
    if (cur.next >= 0) {
      if (const auto* nm = merges_->get(cur.id, syms[cur.next].id)) {
        heap.push_back({nm->rank, top.pos, nm->new_id});
        std::push_heap(heap.begin(), heap.end());
      }
    }
  }
  for (const auto& s : syms)
    if (s.len != 0) out.push_back(s.id);
}

}  // namespace strata::tok
