// libFuzzer target for the safetensors header parser: the input is a whole
// file. Every input must either parse into a header whose tensors all lie
// inside the file, sized as dtype and shape say, without overlap, or throw
// strata::Error naming the file. Anything else (a crash, a sanitizer report,
// another exception type, a broken invariant) is a finding.
//
//   scripts/fuzz.sh 180     # build with clang and run for 180 seconds
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/error.h"
#include "formats/safetensors.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    strata::SafetensorsHeader h = strata::parse_safetensors_header(data, size, size, "fuzz.safetensors");
    check(h.data_start >= 8 && h.data_start <= size);
    uint64_t prev_end = h.data_start;
    uint64_t prev_offset = h.data_start;
    for (const strata::TensorInfo& t : h.tensors) {
      check(t.file == 0);
      check(t.offset >= h.data_start && t.offset <= size);
      check(t.nbytes <= size - t.offset);
      check(t.nbytes == t.numel() * strata::dtype_size(t.dtype));
      for (int64_t d : t.shape) check(d >= 0);
      check(t.offset >= prev_offset);  // sorted by offset
      prev_offset = t.offset;
      if (t.nbytes > 0) {
        check(t.offset >= prev_end);  // no overlap
        prev_end = t.offset + t.nbytes;
      }
    }
  } catch (const strata::Error& e) {
    check(std::string_view(e.what()).substr(0, 18) == "fuzz.safetensors: ");
  }
  return 0;
}
