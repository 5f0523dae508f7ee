#include "convert/gguf_convert.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

#include "arch/arch.h"
#include "arch/model_layout.h"
#include "convert/gguf_tokenizer.h"
#include "convert/quant_recipe.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"

namespace strata {
namespace {

// One tensor of the output: where it comes from and how it is stored.
struct Plan {
  const TensorInfo* src;
  std::string gguf_name;
  DType type;
  int64_t permute_heads = 0;  // > 0: q/k rows to the interleaved layout
  bool layer_end = false;     // last tensor of a layer (for progress)
  // A stacked expert tensor (ffn_*_exps, llama.cpp's layout [experts, rows,
  // columns]): these experts' matrices one after the other; src is the first.
  std::vector<const TensorInfo*> stack = {};
  std::vector<uint64_t> ne = {};  // when set, the GGUF shape instead of src's
};

// llama.cpp's LLAMA_FTYPE of a file whose matrices are mostly of type t.
uint32_t file_type_of(DType t) {
  std::string name(dtype_name(t));
  const QuantRecipe* r = find_quant_recipe(name);
  return r ? r->file_type : 0;
}

class SourceFiles {
 public:
  explicit SourceFiles(const TensorIndex& idx) : idx_(idx) {}
  ~SourceFiles() {
    for (auto& [i, fd] : fds_) ::close(fd);
  }
  void read(const TensorInfo& t, uint64_t off, size_t n, void* dst) {
    int fd = fd_of(t.file);
    size_t done = 0;
    auto* d = static_cast<uint8_t*>(dst);
    while (done < n) {
      ssize_t r = ::pread(fd, d + done, n - done, off_t(t.offset + off + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0)
        throw Error(fmt::format("{}: read of tensor '{}' failed: {}", idx_.files[size_t(t.file)].string(), t.name,
                                r < 0 ? std::strerror(errno) : "unexpected end of file"));
      done += size_t(r);
    }
  }

 private:
  int fd_of(int file) {
    auto it = fds_.find(file);
    if (it != fds_.end()) return it->second;
    const auto& p = idx_.files[size_t(file)];
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(fmt::format("{}: cannot open: {}", p.string(), std::strerror(errno)));
    fds_[file] = fd;
    return fd;
  }
  const TensorIndex& idx_;
  std::map<int, int> fds_;
};

// f32 rows -> bytes of type t (count a multiple of the block size), with
// ggml's reference quantizers (dtype_traits().from_float).
void encode(const float* src, size_t count, DType t, uint8_t* dst) { dtype_traits(t).from_float(src, dst, count); }

std::vector<uint64_t> gguf_ne(const TensorInfo& t) {
  std::vector<uint64_t> ne;
  for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) ne.push_back(uint64_t(*it));
  return ne;
}

void write_config_metadata(GgufWriter& w, const ModelConfig& c, const std::string& arch, const std::string& name,
                           uint32_t file_type, bool quantized) {
  w.add_string("general.architecture", arch);
  w.add_string("general.name", name);
  w.add_u32("general.file_type", file_type);
  if (quantized) w.add_u32("general.quantization_version", 2);
  const std::string a = arch + ".";
  w.add_u32(a + "block_count", uint32_t(c.num_layers));
  w.add_u32(a + "context_length", uint32_t(c.max_position_embeddings));
  w.add_u32(a + "embedding_length", uint32_t(c.hidden_size));
  w.add_u32(a + "feed_forward_length", uint32_t(c.intermediate_size));
  w.add_u32(a + "attention.head_count", uint32_t(c.num_heads));
  w.add_u32(a + "attention.head_count_kv", uint32_t(c.num_kv_heads));
  w.add_u32(a + "attention.key_length", uint32_t(c.head_dim));
  w.add_u32(a + "attention.value_length", uint32_t(c.head_dim));
  w.add_u32(a + "rope.dimension_count", uint32_t(c.head_dim));
  w.add_f32(a + "attention.layer_norm_rms_epsilon", float(c.rms_norm_eps));
  w.add_f32(a + "rope.freq_base", float(c.rope_theta));
  w.add_u32(a + "vocab_size", uint32_t(c.vocab_size));
  if (c.is_moe()) {
    w.add_u32(a + "expert_count", uint32_t(c.num_experts));
    w.add_u32(a + "expert_used_count", uint32_t(c.experts_per_token));
    w.add_u32(a + "expert_feed_forward_length", uint32_t(c.moe_intermediate_size));
    if (c.shared_expert_intermediate_size)
      w.add_u32(a + "expert_shared_feed_forward_length", uint32_t(c.shared_expert_intermediate_size));
  }
  if (c.rope_scaling.type == RopeScaling::Type::Linear) {
    w.add_string(a + "rope.scaling.type", "linear");
    w.add_f32(a + "rope.scaling.factor", float(c.rope_scaling.factor));
  } else if (c.rope_scaling.type == RopeScaling::Type::Llama3) {
    // llama.cpp bakes this into a rope_freqs tensor; strata keeps the parameters.
    w.add_f32("strata.rope.llama3.factor", float(c.rope_scaling.factor));
    w.add_f32("strata.rope.llama3.low_freq_factor", float(c.rope_scaling.low_freq_factor));
    w.add_f32("strata.rope.llama3.high_freq_factor", float(c.rope_scaling.high_freq_factor));
    w.add_u32("strata.rope.llama3.original_context_length", uint32_t(c.rope_scaling.original_max_position_embeddings));
  }
}

}  // namespace

void permute_rows_to_interleaved(const float* src, float* dst, int64_t heads, int64_t head_dim, int64_t cols) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j) {
        const float* s = src + (h * head_dim + j * half + i) * cols;
        std::copy(s, s + cols, dst + (h * head_dim + 2 * i + j) * cols);
      }
}

GgufConvertReport convert_to_gguf(const std::filesystem::path& model_dir, const std::filesystem::path& out,
                                  const GgufConvertOptions& opt) {
  if (!std::filesystem::is_directory(model_dir))
    throw Error(model_dir.string() + ": not a model directory (convert reads a Hugging Face directory)");
  const ModelLayout m = open_model_layout(model_dir);
  const ModelConfig& c = m.config;
  // llama.cpp writes Mixtral as `llama` with experts (the reader maps it
  // back by llama.expert_count), so its table row names no GGUF arch.
  const bool mixtral = std::string_view(m.arch->hf_class) == "MixtralForCausalLM";
  if (!m.arch->gguf_arch && !mixtral)
    throw Error(fmt::format("{}: converting {} models to GGUF is not supported yet", model_dir.string(),
                            m.arch->display));
  const std::string arch = mixtral ? "llama" : m.arch->gguf_arch;
  if (m.arch->moe) {
    // llama.cpp's MoE graphs (and strata's reader of their files) have
    // experts in every layer and a fixed renormalization per architecture:
    // a model outside that would be read back as a different model.
    for (const LayerLayout& L : m.layers)
      if (L.experts.empty())
        throw Error(fmt::format("{}: {} with dense layers (mlp_only_layers / decoder_sparse_step) cannot be written "
                                "as a GGUF file: its MoE layout has experts in every layer",
                                model_dir.string(), m.arch->display));
    if (c.norm_topk_prob != (arch != "qwen2moe"))
      throw Error(fmt::format("{}: norm_topk_prob={} cannot be written as a GGUF {} file (llama.cpp fixes it to {})",
                              model_dir.string(), c.norm_topk_prob, arch, arch != "qwen2moe"));
  }
  const bool interleave = m.arch->gguf_rope_interleaved;
  GgufConvertReport report;

  // What to write, in file order: the embedding, each layer's tensors
  // contiguously, then the output norm and head.
  std::vector<Plan> plan;
  const QuantRecipe* recipe = nullptr;
  if (!opt.recipe.empty()) {
    recipe = find_quant_recipe(opt.recipe);
    if (!recipe)
      throw UsageError(fmt::format("unknown quantization type '{}' (expected one of {})", opt.recipe,
                                   quant_recipe_names()));
  }
  auto matrix_type = [&](const TensorInfo& t, bool head, std::string_view gguf_name, int64_t layer) {
    if (recipe) {
      RecipeTensor rt;
      rt.gguf_name = gguf_name;
      rt.layer = layer;
      rt.n_layers = c.num_layers;
      rt.n_gqa = c.num_kv_heads > 0 ? c.num_heads / c.num_kv_heads : 1;
      rt.cols = t.shape.size() == 2 ? t.shape[1] : t.shape[0];
      rt.is_output = head;
      rt.is_matrix = t.shape.size() == 2;
      rt.source = t.dtype;
      std::string note;
      const DType type = recipe_tensor_type(*recipe, rt, &note);
      if (!note.empty()) report.notes.push_back(t.name + " -> " + note);
      return type;
    }
    if (t.shape.size() != 2) return DType::F32;  // norms and biases
    DType want = opt.type;
    if (want == DType::Q4_0 && head) {
      // The head (and a tied embedding) decides every logit; like llama.cpp's
      // q4_0 files it is kept at higher precision.
      report.notes.push_back(fmt::format("{}: Q8_0 (the output head stays at 8 bits in a Q4_0 file)", t.name));
      want = DType::Q8_0;
    }
    if (dtype_is_block(want) && t.shape[1] % int64_t(dtype_block_elems(want)) != 0) {
      const DType keep = t.dtype == DType::F32 ? DType::F32 : DType::F16;
      report.notes.push_back(fmt::format("{}: kept {} (row length {} is not a multiple of {})", t.name,
                                         dtype_name(keep), t.shape[1], dtype_block_elems(want)));
      return keep;
    }
    return want;
  };
  const bool tied = m.lm_head == m.embed;
  auto gguf_name = [&](const TensorInfo& t) {
    std::optional<std::string> n = hf_to_gguf_name(*m.arch, t.name);
    if (!n) throw Error("no GGUF name for tensor " + t.name);
    return *n;
  };
  const std::string embd = gguf_name(*m.embed);
  plan.push_back({m.embed, embd, matrix_type(*m.embed, tied, embd, -1)});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const LayerLayout& L = m.layers[size_t(l)];
    for (size_t i = 0; i < size_t(Role::kCount); ++i) {
      const TensorInfo* t = L.by_role[i];
      if (!t) continue;
      Plan p{t, gguf_name(*t), DType::F32};
      p.type = matrix_type(*t, false, p.gguf_name, l);
      const Role r = Role(i);
      if (r == Role::SharedExpertGate) {
        // One output: llama.cpp stores it as a vector of f32.
        p.type = DType::F32;
        p.ne = {uint64_t(c.hidden_size)};
      }
      if (interleave && (r == Role::Q || r == Role::QBias)) p.permute_heads = c.num_heads;
      if (interleave && (r == Role::K || r == Role::KBias)) p.permute_heads = c.num_kv_heads;
      plan.push_back(std::move(p));
    }
    if (!L.experts.empty()) {
      for (int which = 0; which < 3; ++which) {
        Plan p{nullptr, "", DType::F32};
        for (const ExpertLayout& X : L.experts) p.stack.push_back(which == 0 ? X.gate : which == 1 ? X.up : X.down);
        p.src = p.stack[0];
        for (const TensorInfo* t : p.stack)
          if (t->shape != p.src->shape || t->dtype != p.src->dtype)
            throw Error(fmt::format("{}: experts of layer {} differ in shape or type ({} vs {})", model_dir.string(), l,
                                    t->name, p.src->name));
        static const char* const kNames[3] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
        p.gguf_name = fmt::format("blk.{}.{}.weight", l, kNames[which]);
        p.type = matrix_type(*p.src, false, p.gguf_name, l);
        p.ne = gguf_ne(*p.src);
        p.ne.push_back(uint64_t(p.stack.size()));
        plan.push_back(std::move(p));
      }
    }
    plan.back().layer_end = true;
  }
  plan.push_back({m.final_norm, gguf_name(*m.final_norm), DType::F32});
  if (!tied) {
    const std::string out_name = gguf_name(*m.lm_head);
    plan.push_back({m.lm_head, out_name, matrix_type(*m.lm_head, true, out_name, -1)});
  }

  GgufWriter w(out, opt.alignment);
  write_config_metadata(w, c, arch, model_dir.filename().empty() ? model_dir.parent_path().filename().string()
                                                                   : model_dir.filename().string(),
                        recipe ? recipe->file_type : file_type_of(opt.type),
                        dtype_is_block(recipe ? recipe->base : opt.type));
  if (c.bos_token_id >= 0) w.add_u32("tokenizer.ggml.bos_token_id", uint32_t(c.bos_token_id));
  if (!c.eos_token_ids.empty()) w.add_u32("tokenizer.ggml.eos_token_id", uint32_t(c.eos_token_ids[0]));
  if (std::filesystem::exists(model_dir / "tokenizer.json"))
    report.tokenizer = add_gguf_tokenizer(w, model_dir / "tokenizer.json", c.vocab_size, &c.eos_token_ids);
  // llama.cpp needs tokenizer.ggml.model; "no_vocab" is its convention for
  // a model without a tokenizer (it then takes the size from vocab_size).
  if (!report.tokenizer) w.add_string("tokenizer.ggml.model", "no_vocab");

  uint64_t total = 0;
  for (const Plan& p : plan) total += w.add_tensor(p.gguf_name, p.type, p.ne.empty() ? gguf_ne(*p.src) : p.ne);
  w.begin_data();

  ThreadPool pool(opt.threads);
  SourceFiles files(m.index);
  GgufConvertProgress prog;
  prog.layers_total = c.num_layers;
  prog.bytes_total = total;
  std::vector<uint8_t> raw;
  std::vector<float> f, permuted;
  std::vector<uint8_t> enc;
  for (const Plan& p : plan) {
    const std::vector<const TensorInfo*> parts = p.stack.empty() ? std::vector<const TensorInfo*>{p.src} : p.stack;
    for (const TensorInfo* part : parts) {
      const TensorInfo& t = *part;
      const int64_t rows = t.shape.size() == 2 ? t.shape[0] : 1;
      const int64_t cols = t.shape.size() == 2 ? t.shape[1] : t.shape[0];
      // A 1-D tensor that is permuted (a q/k bias) is one column of rows.
      const bool bias_perm = p.permute_heads > 0 && t.shape.size() == 1;
      const int64_t head_rows = p.permute_heads > 0 && !bias_perm ? rows / p.permute_heads : 1;
      const int64_t perm_rows = bias_perm ? cols : rows;
      if (p.permute_heads > 0 && (perm_rows % p.permute_heads != 0 || (perm_rows / p.permute_heads) % 2 != 0))
        throw Error(fmt::format("{}: tensor '{}' rows {} do not split into {} heads", model_dir.string(), t.name,
                                perm_rows, p.permute_heads));
      // Chunks of ~32 MiB of f32, whole heads when permuting.
      const int64_t per = std::max<int64_t>(1, int64_t(32 << 20) / (4 * cols));
      const int64_t chunk = std::max<int64_t>(head_rows, per / head_rows * head_rows);
      const uint64_t src_row = dtype_bytes(t.dtype, uint64_t(cols));
      const uint64_t dst_row = dtype_bytes(p.type, uint64_t(cols));
      for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        const int64_t n = std::min(chunk, rows - r0);
        raw.resize(size_t(n) * src_row);
        files.read(t, uint64_t(r0) * src_row, raw.size(), raw.data());
        f.resize(size_t(n * cols));
        to_float(raw.data(), t.dtype, f.size(), f.data());
        if (p.permute_heads > 0) {
          permuted.resize(f.size());
          if (bias_perm) permute_rows_to_interleaved(f.data(), permuted.data(), p.permute_heads, cols / p.permute_heads, 1);
          else permute_rows_to_interleaved(f.data(), permuted.data(), n / head_rows, head_rows, cols);
          f.swap(permuted);
        }
        enc.resize(size_t(n) * dst_row);
        pool.parallel_for(size_t(n), 16, [&](size_t a, size_t b) {
          encode(f.data() + a * size_t(cols), (b - a) * size_t(cols), p.type, enc.data() + a * dst_row);
        });
        w.write(enc.data(), enc.size());
      }
    }
    w.end_tensor();
    ++report.tensors;
    prog.bytes_written = w.bytes_written();
    if (p.layer_end) ++prog.layers_done;
    if (opt.progress) opt.progress(prog);
  }
  w.finish();
  report.bytes = std::filesystem::file_size(out);
  return report;
}

}  // namespace strata
