// llama.cpp's logits for comma-separated token ids evaluated as one batch (1 thread),
// written as little-endian f32 [n, vocab] (reproduces testdata/gguf/*.llamacpp-logits.f32 to 2e-6).
//   llama-logits MODEL.gguf 1,2,3 OUT.f32
// Build against a llama.cpp checkout LLAMA (its build/bin holding libllama.so):
//   g++ -O1 -std=c++17 logits.cpp -I$LLAMA/include -I$LLAMA/ggml/include -L$LLAMA/build/bin \
//       -lllama -lggml -lggml-base -Wl,-rpath,$LLAMA/build/bin -o llama-logits
// Used for docs/PERFORMANCE.md's "strata's GGUF files in llama.cpp"; not part of strata's build.
#include "llama.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
int main(int argc, char** argv) {
  if (argc < 4) { fprintf(stderr, "usage: ll model ids out\n"); return 2; }
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  llama_model* m = llama_model_load_from_file(argv[1], mp);
  if (!m) return 1;
  std::vector<llama_token> ids;
  for (char* t = strtok(argv[2], ","); t; t = strtok(nullptr, ",")) ids.push_back(atoi(t));
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 128; cp.n_batch = 128; cp.n_threads = 1; cp.n_threads_batch = 1;
  llama_context* c = llama_init_from_model(m, cp);
  llama_batch b = llama_batch_init(ids.size(), 0, 1);
  for (size_t i = 0; i < ids.size(); ++i) {
    b.token[i] = ids[i]; b.pos[i] = i; b.n_seq_id[i] = 1; b.seq_id[i][0] = 0; b.logits[i] = 1;
  }
  b.n_tokens = ids.size();
  if (llama_decode(c, b)) return 1;
  const int nv = llama_vocab_n_tokens(llama_model_get_vocab(m));
  FILE* f = fopen(argv[3], "wb");
  for (size_t i = 0; i < ids.size(); ++i) fwrite(llama_get_logits_ith(c, i), 4, nv, f);
  fclose(f);
  return 0;
}
