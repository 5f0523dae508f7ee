// What one forward pass computes: rows of tokens from any number of
// sequences, each at its own position in its own KV cache. Prompt chunks
// and single decode steps mix freely; each row may ask for logits.
#pragma once

#include <cstdint>
#include <vector>

namespace strata {

class KvSequence;

struct BatchRow {
  int32_t token = 0;
  int64_t pos = 0;           // position of this token in its sequence
  KvSequence* cache = nullptr;  // the sequence's KV pages (room for `pos` reserved)
  bool logits = false;       // compute logits for this row
};

using Batch = std::vector<BatchRow>;

}  // namespace strata
