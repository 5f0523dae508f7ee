#include "runtime/stream_unit.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"

namespace strata {
namespace {

constexpr uint64_t kPage = 4096;
// Gaps smaller than this between tensors are read through rather than split
// into two requests: one large read beats two smaller ones on every disk.
constexpr uint64_t kMaxGap = 64 * 1024;

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// Places pieces in file order and groups them into page-aligned reads, so the
// same layout serves O_DIRECT. A tensor whose offset is not 64-byte aligned
// gets its own exact read, so its data is aligned in memory.
void layout_unit(StreamUnit& u, const ModelLayout& m) {
  std::sort(u.pieces.begin(), u.pieces.end(), [](const UnitPiece& a, const UnitPiece& b) {
    if (a.tensor->file != b.tensor->file) return a.tensor->file < b.tensor->file;
    return a.tensor->offset + a.byte_begin < b.tensor->offset + b.byte_begin;
  });
  uint64_t cursor = 0;
  size_t i = 0;
  while (i < u.pieces.size()) {
    const int file = u.pieces[i].tensor->file;
    uint64_t first = u.pieces[i].tensor->offset + u.pieces[i].byte_begin;
    bool aligned = first % 64 == 0;
    uint64_t run_begin = aligned ? first / kPage * kPage : first;
    uint64_t run_end = u.pieces[i].tensor->offset + u.pieces[i].byte_end;
    size_t j = i + 1;
    while (aligned && j < u.pieces.size() && u.pieces[j].tensor->file == file) {
      uint64_t b = u.pieces[j].tensor->offset + u.pieces[j].byte_begin;
      if (b % 64 != 0 || b < run_end || b - run_end > kMaxGap) break;
      run_end = u.pieces[j].tensor->offset + u.pieces[j].byte_end;
      ++j;
    }
    uint64_t file_size = 0;
    std::error_code ec;
    file_size = std::filesystem::file_size(m.index.files[size_t(file)], ec);
    uint64_t read_end = aligned ? std::min(align_up(run_end, kPage), ec ? run_end : file_size) : run_end;
    if (read_end < run_end) read_end = run_end;
    cursor = align_up(cursor, kPage);
    for (size_t p = i; p < j; ++p)
      u.pieces[p].slot_offset = cursor + (u.pieces[p].tensor->offset + u.pieces[p].byte_begin - run_begin);
    u.reads.push_back({size_t(file), run_begin, read_end - run_begin, reinterpret_cast<void*>(cursor)});
    u.file_bytes += read_end - run_begin;
    cursor += read_end - run_begin;
    i = j;
  }
  u.slot_bytes = align_up(cursor, kPage);
}

UnitPiece whole(const TensorInfo* t) { return {t, 0, t->nbytes, 0}; }

}  // namespace

std::string StreamUnit::name() const {
  if (kind == Kind::Layer) return fmt::format("layer {}", layer);
  if (kind == Kind::Expert) return fmt::format("layer {} expert {}", layer, expert);
  return fmt::format("head rows {}..{}", row_begin, row_end);
}

const uint8_t* StreamUnit::data(const uint8_t* base, const TensorInfo* t) const {
  for (const auto& p : pieces)
    if (p.tensor == t) return base + p.slot_offset;
  throw Error("internal: tensor " + t->name + " is not part of " + name());
}

std::vector<StreamUnit> build_stream_units(const ModelLayout& m) {
  std::vector<StreamUnit> units;
  uint64_t largest = 0;
  for (size_t l = 0; l < m.layers.size(); ++l) {
    StreamUnit u;
    u.kind = StreamUnit::Kind::Layer;
    u.layer = int64_t(l);
    for (const TensorInfo* t : m.layers[l].in_order) u.pieces.push_back(whole(t));
    layout_unit(u, m);
    largest = std::max(largest, u.slot_bytes);
    for (size_t e = 0; e < m.layers[l].experts.size(); ++e) {
      const ExpertLayout& x = m.layers[l].experts[e];
      StreamUnit eu;
      eu.kind = StreamUnit::Kind::Expert;
      eu.layer = int64_t(l);
      eu.expert = int64_t(e);
      for (const TensorInfo* t : {x.gate, x.up, x.down}) eu.pieces.push_back(whole(t));
      layout_unit(eu, m);
      largest = std::max(largest, eu.slot_bytes);
      u.experts.push_back(std::move(eu));
    }
    units.push_back(std::move(u));
  }
  const int64_t vocab = m.config.vocab_size;
  const uint64_t row_bytes = m.lm_head->nbytes / uint64_t(vocab);
  // Leave room for page rounding and the final norm in the first block.
  uint64_t budget = largest > 6 * kPage + m.final_norm->nbytes ? largest - 6 * kPage - m.final_norm->nbytes : 0;
  int64_t rows_per_block = std::max<int64_t>(1, int64_t(budget / std::max<uint64_t>(row_bytes, 1)));
  for (int64_t r = 0; r < vocab; r += rows_per_block) {
    StreamUnit u;
    u.kind = StreamUnit::Kind::Head;
    u.row_begin = r;
    u.row_end = std::min(vocab, r + rows_per_block);
    if (r == 0) u.pieces.push_back(whole(m.final_norm));
    u.pieces.push_back({m.lm_head, uint64_t(u.row_begin) * row_bytes, uint64_t(u.row_end) * row_bytes, 0});
    layout_unit(u, m);
    units.push_back(std::move(u));
  }
  return units;
}

uint64_t largest_expert_bytes(const std::vector<StreamUnit>& units) {
  uint64_t b = 0;
  for (const auto& u : units)
    for (const auto& e : u.experts) b = std::max(b, e.slot_bytes);
  return b;
}

size_t expert_count(const std::vector<StreamUnit>& units) {
  size_t n = 0;
  for (const auto& u : units) n += u.experts.size();
  return n;
}

}  // namespace strata

