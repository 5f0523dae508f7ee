#include "runtime/expert_cache.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>

#include "core/error.h"
#include "runtime/io_engine.h"
#include "runtime/model_files.h"

namespace strata {
namespace {
constexpr uint64_t kEmpty = ~uint64_t(0);

uint64_t ns_since(std::chrono::steady_clock::time_point t0) {
  return uint64_t(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
}

// The reads of one wave on their own thread, so the caller can compute the
// experts that have already landed. The destructor waits for every read in
// flight: a completion must never land in a slot after run() returned.
class WaveReader {
 public:
  WaveReader(IoEngine& io, std::vector<ReadRequest> reqs, std::vector<size_t> ends, bool overlap)
      : reqs_(std::move(reqs)), ends_(std::move(ends)) {
    auto work = [this, &io] {
      try {
        io.read_groups(reqs_, ends_, [this](size_t g) {
          std::lock_guard<std::mutex> lk(mu_);
          landed_.push_back(g);
          cv_.notify_all();
        });
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu_);
        error_ = std::current_exception();
      }
      std::lock_guard<std::mutex> lk(mu_);
      finished_ = true;
      cv_.notify_all();
    };
    if (overlap) thread_ = std::thread(work);
    else work();  // the whole wave before any compute, for comparison
  }
  ~WaveReader() {
    if (thread_.joinable()) thread_.join();
  }
  WaveReader(const WaveReader&) = delete;
  WaveReader& operator=(const WaveReader&) = delete;

  // The i-th group to land (i counts from 0); blocks until it has. Throws
  // the read's Error once every read has drained.
  size_t next(size_t i) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return landed_.size() > i || finished_; });
    if (landed_.size() > i && !error_) return landed_[i];
    cv_.wait(lk, [&] { return finished_; });
    lk.unlock();
    if (thread_.joinable()) thread_.join();
    if (error_) std::rethrow_exception(error_);
    throw Error("internal: an expert read finished without landing");
  }

 private:
  std::vector<ReadRequest> reqs_;
  std::vector<size_t> ends_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<size_t> landed_;
  bool finished_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace

const char* expert_policy_name(ExpertPolicy p) { return p == ExpertPolicy::Lfu ? "lfu" : "lru"; }

std::optional<ExpertPolicy> parse_expert_policy(std::string_view s) {
  if (s == "lru") return ExpertPolicy::Lru;
  if (s == "lfu") return ExpertPolicy::Lfu;
  return std::nullopt;
}

ExpertPolicy default_expert_policy() {
  const char* v = std::getenv("STRATA_EXPERT_POLICY");
  if (!v || !*v) return ExpertPolicy::Lru;
  if (auto p = parse_expert_policy(v)) return *p;
  throw Error(std::string("STRATA_EXPERT_POLICY must be lru or lfu, not ") + v);
}

bool expert_overlap_enabled() {
  const char* v = std::getenv("STRATA_EXPERT_OVERLAP");
  return !(v && std::string_view(v) == "0");
}

ExpertCache::ExpertCache(const std::vector<StreamUnit>& units, size_t slots, uint64_t slot_bytes, IoEngine& io,
                         MemoryLedger& ledger, ExpertPolicy policy, bool overlap)
    : units_(units), io_(io), policy_(policy), overlap_(overlap) {
  for (size_t s = 0; s < slots; ++s) slots_.emplace_back(slot_bytes, &ledger, "expert cache");
  slot_key_.assign(slots, kEmpty);
  last_use_.assign(slots, 0);
  size_t total = 0;
  for (const StreamUnit& u : units) {
    first_expert_.push_back(total);
    total += u.experts.size();
  }
  uses_.assign(total, 0);
  // Ages over a few cache turnovers: long enough to tell popular experts
  // apart, short enough to follow a change of topic.
  age_every_ = std::max<uint64_t>(8 * slots, 64);
}

uint32_t ExpertCache::uses(uint64_t k) const {
  if (k == kEmpty) return 0;
  return uses_[first_expert_[size_t(k >> 32)] + size_t(uint32_t(k))];
}

void ExpertCache::count_use(size_t unit, int expert) {
  ++uses_[first_expert_[unit] + size_t(expert)];
  if (++since_aging_ >= age_every_) {
    since_aging_ = 0;
    for (uint32_t& n : uses_) n >>= 1;
  }
}

void ExpertCache::touch(size_t slot) { last_use_[slot] = ++clock_; }

std::vector<size_t> ExpertCache::victims(size_t count, const std::vector<char>& pinned) const {
  std::vector<size_t> order;
  for (size_t s = 0; s < slots_.size(); ++s)
    if (!pinned[s]) order.push_back(s);
  auto worse = [&](size_t a, size_t b) {
    if (policy_ == ExpertPolicy::Lfu) {
      const uint32_t ua = uses(slot_key_[a]), ub = uses(slot_key_[b]);
      if (ua != ub) return ua < ub;
    }
    return last_use_[a] < last_use_[b];
  };
  count = std::min(count, order.size());
  std::partial_sort(order.begin(), order.begin() + long(count), order.end(), worse);
  order.resize(count);
  return order;
}

void ExpertCache::run(size_t unit, const std::vector<int>& needed,
                      const std::function<void(int, const uint8_t*)>& fn) {
  const std::vector<StreamUnit>& experts = units_.at(unit).experts;
  std::vector<int> missing;
  std::vector<std::pair<int, size_t>> hits;  // expert, slot
  std::vector<char> pinned(slots_.size(), 0);
  for (int e : needed) {
    if (e < 0 || size_t(e) >= experts.size()) throw Error("internal: expert index out of range");
    ++stats_.routed;
    count_use(unit, e);
    auto it = where_.find(key(unit, e));
    if (it == where_.end()) {
      missing.push_back(e);
      continue;
    }
    ++stats_.hits;
    touch(it->second);
    pinned[it->second] = 1;  // used while the first wave reads
    hits.emplace_back(e, it->second);
  }
  if (!missing.empty() && slots_.empty()) throw Error("internal: an MoE layer but no expert slot in the plan");

  bool hits_done = false;
  size_t done = 0;
  do {
    // The first wave fills only slots the hits do not hold; once the hits
    // are used, every slot is fair game.
    const std::vector<size_t> wave_slots = victims(missing.size() - done, pinned);
    const size_t wave = wave_slots.size();
    std::vector<ReadRequest> reqs;
    std::vector<size_t> ends;
    for (size_t w = 0; w < wave; ++w) {
      const size_t s = wave_slots[w];
      if (slot_key_[s] != kEmpty) where_.erase(slot_key_[s]);
      slot_key_[s] = kEmpty;
      for (ReadRequest r : experts[size_t(missing[done + w])].reads) {
        r.dest = slots_[s].data() + reinterpret_cast<uintptr_t>(r.dest);
        reqs.push_back(r);
      }
      ends.push_back(reqs.size());
    }
    auto t0 = std::chrono::steady_clock::now();
    std::optional<WaveReader> reader;
    if (wave) reader.emplace(io_, std::move(reqs), std::move(ends), overlap_);
    if (!overlap_) stats_.read_ns += ns_since(t0);
    if (!hits_done) {
      for (const auto& [e, s] : hits) fn(e, slots_[s].data());
      std::fill(pinned.begin(), pinned.end(), 0);
      hits_done = true;
    }
    for (size_t i = 0; i < wave; ++i) {
      t0 = std::chrono::steady_clock::now();
      const size_t w = reader->next(i);
      stats_.read_ns += ns_since(t0);
      const size_t s = wave_slots[w];
      const int e = missing[done + w];
      const StreamUnit& u = experts[size_t(e)];
      // A file rewritten in place while being read would give garbage weights.
      for (size_t f = 0; f < u.reads.size(); ++f)
        if (f == 0 || u.reads[f].file != u.reads[f - 1].file) io_.files().check_unchanged(u.reads[f].file);
      stats_.bytes_read += u.file_bytes;
      slot_key_[s] = key(unit, e);
      where_[slot_key_[s]] = s;
      touch(s);
      fn(e, slots_[s].data());
    }
    done += wave;
  } while (done < missing.size());
}

}  // namespace strata
