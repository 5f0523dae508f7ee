#include "tools/bench.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <numeric>
#include <span>

#include "arch/model_layout.h"
#include "core/aligned_buffer.h"
#include "core/error.h"
#include "core/memory_ledger.h"
#include "runtime/io_select.h"
#include "runtime/model_files.h"
#include "runtime/stream_unit.h"

namespace strata {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

void say(const BenchOptions& o, const std::string& s) {
  if (o.progress) o.progress(s);
}

// Throughput of one method reading what a decode pass reads: the stream
// units (layers, then the head blocks) in file order, `limit` bytes at most,
// by `readers` concurrent readers each taking the next unit, as the layer
// store's one or two loaders do, with no compute in between. Reading the passes' own byte
// ranges matters on virtual disks: the host caches what was read recently,
// and a probe over other bytes than the passes' would measure another disk.
// `bufs` holds one buffer per reader, allocated once: first-touching fresh
// memory is slow enough on a VM to distort the probe.
double units_throughput(const ModelFiles& files, const std::vector<StreamUnit>& units, IoMethod m,
                        std::span<AlignedBuffer> bufs, uint64_t limit, std::string* note) {
  const int readers = int(bufs.size());
  std::unique_ptr<IoEngine> io;
  try {
    io = make_io_engine(m, files);
  } catch (const std::exception& e) {
    if (note) *note = e.what();
    return 0;
  }
  for (size_t f = 0; f < files.count(); ++f) files.evict_from_page_cache(f);
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> total{0};
  std::vector<std::string> errors(static_cast<size_t>(readers));
  auto reader = [&](int id) {
    try {
      AlignedBuffer& buf = bufs[size_t(id)];
      const uint64_t kBatch = buf.size();
      std::vector<ReadRequest> batch;
      for (size_t u; (u = next++) < units.size() && total.load() < limit;) {
        uint64_t used = 0, bytes = 0;
        auto flush = [&] {
          if (!batch.empty()) io->read(batch);
          total += bytes;
          batch.clear();
          used = bytes = 0;
        };
        for (const ReadRequest& r : units[u].reads)
          for (uint64_t off = 0; off < r.size;) {
            // Buffer and file offset aligned alike, so O_DIRECT takes it all.
            uint64_t pad = (r.offset + off - used) % kDirectAlign;
            if (used + pad + kDirectAlign > kBatch) flush(), pad = (r.offset + off) % kDirectAlign;
            used += pad;
            const uint64_t n = std::min(r.size - off, kBatch - used);
            batch.push_back({r.file, r.offset + off, n, buf.data() + used});
            used += n;
            bytes += n;
            off += n;
            if (used == kBatch) flush();
          }
        flush();
      }
    } catch (const std::exception& e) {
      errors[id] = e.what();
    }
  };
  const auto t0 = Clock::now();
  std::vector<std::thread> others;
  for (int id = 1; id < readers; ++id) others.emplace_back(reader, id);
  reader(0);
  for (auto& t : others) t.join();
  const double secs = since(t0);
  for (size_t f = 0; f < files.count(); ++f) files.evict_from_page_cache(f);
  for (const auto& e : errors)
    if (!e.empty()) {
      if (note) *note = e;
      return 0;
    }
  return secs > 0 ? double(total.load()) / secs : 0;
}

// The plain reference a user would reach for (`dd bs=4M` after evicting the
// files): one thread, 4 MiB buffered reads in file order. The engines above
// are measured through strata's own request patterns; this one is not, so a
// weakness in those patterns cannot inflate the efficiency.
double plain_sequential_throughput(const ModelFiles& files, uint64_t limit) {
  const size_t chunk = size_t(4) << 20;
  AlignedBuffer buf(chunk, nullptr, "disk probe");
  uint64_t total = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t f = 0; f < files.count() && total < limit; ++f) {
    const uint64_t n = std::min(files.size(f), limit - total);
    ::posix_fadvise(files.fd(f), 0, off_t(n), POSIX_FADV_DONTNEED);
    for (uint64_t off = 0; off < n;) {
      ssize_t got = ::pread(files.fd(f), buf.data(), size_t(std::min<uint64_t>(chunk, n - off)), off_t(off));
      if (got <= 0) return 0;
      off += uint64_t(got);
    }
    ::posix_fadvise(files.fd(f), 0, off_t(n), POSIX_FADV_DONTNEED);
    total += n;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return secs > 0 ? double(total) / secs : 0;
}

// Keeps the best measurement of each method and the best over all of them.
void record_disk(BenchReport& rep, const MethodThroughput& t) {
  if (t.bytes_per_s > rep.disk_bytes_per_s) rep.disk_bytes_per_s = t.bytes_per_s, rep.disk_best_method = t.method;
  auto same = std::find_if(rep.disk.begin(), rep.disk.end(), [&](const MethodThroughput& d) { return d.method == t.method; });
  if (same == rep.disk.end()) rep.disk.push_back(t);
  else if (t.bytes_per_s > same->bytes_per_s) *same = t;
}

BenchRun run_engine(const BenchOptions& o, const EngineOptions& eo, BenchReport* rep) {
  auto e = Engine::open(o.model, eo);
  BenchRun r;
  if (o.batch <= 1) {
    GenerateRequest req;
    req.prompt_ids = {1};
    req.max_new_tokens = o.tokens + 1;  // the first token comes from the prompt pass
    req.stop_at_eos = false;
    GenerateResult g = e->generate(req);
    std::vector<double> wall, io, comp;
    uint64_t bytes = 0;
    for (size_t i = 1; i < g.passes.size(); ++i) {
      wall.push_back(g.passes[i].wall_s);
      io.push_back(g.passes[i].io_wait_s);
      comp.push_back(g.passes[i].compute_s);
      bytes += g.passes[i].bytes_read;
      r.experts_routed += g.passes[i].experts_routed;
      r.expert_hits += g.passes[i].expert_hits;
      r.expert_bytes_per_pass += g.passes[i].expert_bytes_read;
    }
    if (g.passes.size() > 1) r.expert_bytes_per_pass /= uint64_t(g.passes.size() - 1);
    r.seconds_per_pass = median(wall);
    r.io_wait_s = median(io);
    r.compute_s = median(comp);
    r.unit_bytes_per_pass = g.plan.streamed_bytes_per_pass;
    // Routed experts vary per pass: their mean joins the planned units.
    r.bytes_per_pass = g.passes.size() > 1 ? bytes / (g.passes.size() - 1) : r.unit_bytes_per_pass;
    r.tokens_per_s = r.seconds_per_pass > 0 ? 1.0 / r.seconds_per_pass : 0;
    if (rep) {
      rep->output_ids = g.output_ids;
      rep->io_method = g.io_method;
      rep->resident_bytes = g.plan.resident_bytes;
      rep->streaming_slots = g.plan.streaming_slots;
      rep->resident_units = g.plan.resident_units;
      rep->units = g.plan.units;
      rep->budget = g.plan.budget;
    }
  } else {
    size_t issued = 0;
    BatchOptions bo;
    bo.max_sequences = o.batch;
    bo.context = o.tokens + 2;
    BatchStats st = e->generate_batch(
        [&]() -> std::optional<SequenceRequest> {
          if (issued == o.batch) return std::nullopt;
          SequenceRequest s;
          s.key = issued++;
          s.prompt_ids = {1};
          s.max_new_tokens = o.tokens + 1;
          s.stop_at_eos = false;
          return s;
        },
        [](SequenceResult&&) {}, bo);
    const EngineStats es = e->stats();
    r.experts_routed = es.experts_routed;
    r.expert_hits = es.expert_hits;
    r.expert_bytes_per_pass = es.expert_bytes_read / uint64_t(std::max<size_t>(st.passes, 1));
    double passes = double(std::max<size_t>(st.passes, 1));
    r.seconds_per_pass = st.wall_s / passes;
    r.io_wait_s = st.io_wait_s / passes;
    r.compute_s = r.seconds_per_pass - r.io_wait_s;
    r.unit_bytes_per_pass = st.plan.streamed_bytes_per_pass;
    r.bytes_per_pass = st.bytes_read / uint64_t(passes);
    r.tokens_per_s = st.wall_s > 0 ? double(st.generated_tokens) / st.wall_s : 0;
    if (rep) {
      rep->io_method = e->io_method();
      rep->resident_bytes = st.plan.resident_bytes;
      rep->streaming_slots = st.plan.streaming_slots;
      rep->resident_units = st.plan.resident_units;
      rep->units = st.plan.units;
      rep->budget = st.plan.budget;
    }
  }
  if (rep) {
    rep->io_method_reason = e->io_method_reason();
    if (r.unit_bytes_per_pass > 0) r.read_only_seconds_per_pass = e->read_only_pass_seconds(4);
  }
  return r;
}

// Maps every file and touches the units streamed per pass in order, one
// byte per page, with MADV_SEQUENTIAL on the maps and MADV_WILLNEED on the
// next unit; the page cache is held to the budget by dropping the oldest
// units (what reclaim under a memory limit does to a cyclic scan: every
// page is gone before it is needed again).
double mmap_touch_seconds(const std::filesystem::path& dir, uint64_t budget) {
  ModelLayout m = open_model_layout(dir);
  std::vector<StreamUnit> units = build_stream_units(m);
  ModelFiles files(m.index.files);
  std::vector<uint8_t*> maps(files.count());
  for (size_t f = 0; f < files.count(); ++f) {
    files.evict_from_page_cache(f);
    void* p = ::mmap(nullptr, files.size(f), PROT_READ, MAP_SHARED, files.fd(f), 0);
    if (p == MAP_FAILED) throw Error(files.path(f) + ": mmap failed");
    ::madvise(p, files.size(f), MADV_SEQUENTIAL);
    maps[f] = static_cast<uint8_t*>(p);
  }
  auto advise = [&](const StreamUnit& u, int how) {
    for (const auto& r : u.reads) {
      uint64_t b = r.offset / 4096 * 4096;
      ::madvise(maps[r.file] + b, r.offset + r.size - b, how);
      if (how == MADV_DONTNEED) ::posix_fadvise(files.fd(r.file), off_t(b), off_t(r.offset + r.size - b), POSIX_FADV_DONTNEED);
    }
  };
  volatile uint64_t sink = 0;
  std::vector<size_t> live;
  uint64_t live_bytes = 0;
  auto t0 = Clock::now();
  for (size_t i = 0; i < units.size(); ++i) {
    if (i + 1 < units.size()) advise(units[i + 1], MADV_WILLNEED);
    uint64_t s = 0;
    for (const auto& r : units[i].reads)
      for (uint64_t off = r.offset; off < r.offset + r.size; off += 4096) s += maps[r.file][off];
    sink = sink + s;
    live.push_back(i);
    live_bytes += units[i].file_bytes;
    while (live_bytes > budget && live.size() > 1) {
      advise(units[live.front()], MADV_DONTNEED);
      live_bytes -= units[live.front()].file_bytes;
      live.erase(live.begin());
    }
  }
  double secs = since(t0);
  for (size_t f = 0; f < files.count(); ++f) {
    ::munmap(maps[f], files.size(f));
    files.evict_from_page_cache(f);
  }
  return secs;
}

}  // namespace

double measure_memory_bandwidth(uint64_t bytes) {
  AlignedBuffer buf(bytes, nullptr, "memory bandwidth probe");
  std::fill(buf.as<uint64_t>(), buf.as<uint64_t>() + bytes / 8, 1);
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = Clock::now();
    const uint64_t* p = buf.as<uint64_t>();
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i + 4 <= bytes / 8; i += 4) a += p[i], b += p[i + 1], c += p[i + 2], d += p[i + 3];
    volatile uint64_t sink = a + b + c + d;
    (void)sink;
    best = std::max(best, double(bytes) / since(t0));
  }
  return best;
}

BenchReport run_bench(const BenchOptions& o) {
  BenchReport rep;
  rep.batch = o.batch;
  ModelLayout m = open_model_layout(o.model);
  rep.model_bytes = m.total_bytes();
  // The disk is probed before and after the passes and the best kept: on a
  // shared virtual disk a single probe can land in a slow moment and make
  // the efficiency look better than it is.
  const std::vector<StreamUnit> units = build_stream_units(m);
  uint64_t largest_unit = 0;
  for (const auto& u : units) largest_unit = std::max(largest_unit, u.file_bytes);
  // The probes' buffers hold --max-memory too: charged to a ledger of the
  // budget, sized to a quarter of it each at most, and freed before the
  // engine runs (they once stayed allocated beside it: OOM-killed in a
  // memory cgroup at 95% of its limit).
  const uint64_t budget = o.engine.max_memory;
  MemoryLedger probe_ledger(budget ? budget : UINT64_MAX);
  uint64_t probe_bytes = std::min(uint64_t(256) << 20, (largest_unit + 2 * kDirectAlign) / kDirectAlign * kDirectAlign);
  if (budget) probe_bytes = std::max<uint64_t>(2 * kDirectAlign, std::min(probe_bytes, budget / 4 / kDirectAlign * kDirectAlign));
  auto probe = [&](const char* when) {
    std::vector<AlignedBuffer> probe_bufs;
    for (int i = 0; i < 2; ++i) probe_bufs.emplace_back(probe_bytes, &probe_ledger, "disk probe");
    ModelFiles files(m.index.files);
    std::vector<std::string> notes;
    std::vector<IoMethod> avail = available_io_methods(files, &notes);
    for (IoMethod mth : kAllIoMethods) {
      MethodThroughput t{io_method_name(mth), 0, ""};
      if (std::find(avail.begin(), avail.end(), mth) != avail.end()) {
        say(o, fmt::format("measuring disk read throughput with {} ({})", t.method, when));
        // One reader and two: a virtual disk may serve one sequential
        // stream faster than two interleaved ones, or the reverse.
        for (int readers : {1, 2}) {
          std::string note;
          double bps = units_throughput(files, units, mth, std::span(probe_bufs).first(size_t(readers)),
                                        o.disk_probe_bytes, &note);
          if (bps > t.bytes_per_s) t.bytes_per_s = bps, t.note = fmt::format("{} reader{}", readers, readers > 1 ? "s" : "");
          else if (bps <= 0 && t.bytes_per_s <= 0) t.note = note;
        }
      } else {
        for (const auto& n : notes)
          if (n.rfind(t.method + ":", 0) == 0) t.note = n;
      }
      record_disk(rep, t);
    }
    say(o, fmt::format("measuring plain 4 MiB sequential reads ({})", when));
    record_disk(rep, {"sequential", plain_sequential_throughput(files, o.disk_probe_bytes), "1 thread, 4 MiB buffered reads"});
  };
  probe("before the passes");
  say(o, "measuring memory bandwidth");
  rep.memory_bytes_per_s = budget ? measure_memory_bandwidth(std::min<uint64_t>(uint64_t(256) << 20, budget / 2 / 64 * 64))
                                  : measure_memory_bandwidth();
  say(o, fmt::format("decode passes ({} tokens, batch {})", o.tokens, o.batch));
  rep.strata = run_engine(o, o.engine, &rep);
  probe("after the passes");
  // The same passes without compute, in the same process and plan: the rate
  // at which the runtime's loaders can read this disk (on these VMs the
  // plain probes above can read slower than the loaders, which is why both
  // are measured and the best is the limit).
  if (rep.strata.read_only_seconds_per_pass > 0) {
    record_disk(rep, {"loaders", double(rep.strata.unit_bytes_per_pass) / rep.strata.read_only_seconds_per_pass,
                      fmt::format("the layer store's loaders ({}), passes with no compute", rep.io_method)});
  }
  if (rep.strata.seconds_per_pass > 0 && rep.disk_bytes_per_s > 0)
    rep.efficiency = (double(rep.strata.bytes_per_pass) / rep.disk_bytes_per_s) / rep.strata.seconds_per_pass;
  if (o.baselines && rep.strata.bytes_per_pass > 0) {
    say(o, "naive baseline (one slot: read, then compute)");
    EngineOptions naive = o.engine;
    naive.streaming_slots = 1;
    BenchOptions short_run = o;
    short_run.tokens = std::min(o.tokens, 4);
    rep.naive = run_engine(short_run, naive, nullptr);
    say(o, "mmap baseline");
    rep.mmap_touch_s = mmap_touch_seconds(o.model, rep.budget);
    rep.mmap_seconds_per_pass = rep.mmap_touch_s + rep.strata.compute_s;
  }
  return rep;
}

}  // namespace strata
