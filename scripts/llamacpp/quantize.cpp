// llama_model_quantize as llama-quantize calls it without an importance matrix:
//   llama-quantize-ref IN.gguf OUT.gguf FTYPE [pure]   (FTYPE: llama.h LLAMA_FTYPE_*, e.g. 25 IQ4_NL, 30 IQ4_XS)
// Build against a llama.cpp checkout LLAMA (its build/bin holding libllama.so):
//   g++ -O1 -std=c++17 quantize.cpp -I$LLAMA/include -I$LLAMA/ggml/include -L$LLAMA/build/bin \
//       -lllama -lggml -lggml-base -Wl,-rpath,$LLAMA/build/bin -o llama-quantize-ref
// Used for docs/PERFORMANCE.md's "strata's GGUF files in llama.cpp"; not part of strata's build.
#include "llama.h"
#include <cstdio>
#include <cstdlib>
int main(int argc, char** argv) {
  if (argc < 4) { fprintf(stderr, "usage: lq in out ftype [pure]\n"); return 2; }
  llama_backend_init();
  llama_model_quantize_params p = llama_model_quantize_default_params();
  p.ftype = (llama_ftype)atoi(argv[3]);
  p.pure = argc > 4;
  p.nthread = 1;
  int rc = llama_model_quantize(argv[1], argv[2], &p);
  llama_backend_free();
  return rc;
}
