#include "formats/gguf.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "core/error.h"

namespace strata {
namespace {

// Tensor names as data: one row per tensor of a layer, GGUF suffix and HF
// suffix after "blk.N." / "model.layers.N.".
struct NamePair {
  const char* gguf;
  const char* hf;
};
constexpr NamePair kLayerNames[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_q_norm.weight", "self_attn.q_norm.weight"},
    {"attn_k_norm.weight", "self_attn.k_norm.weight"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
};
constexpr NamePair kGlobalNames[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};
constexpr NamePair kArchNames[] = {
    {"llama", "LlamaForCausalLM"},
    {"qwen2", "Qwen2ForCausalLM"},
    {"qwen3", "Qwen3ForCausalLM"},
};

// "PREFIX<digits>.rest" -> (layer, rest)
bool split_layer(std::string_view name, std::string_view prefix, std::string* layer, std::string_view* rest) {
  if (!name.starts_with(prefix)) return false;
  name.remove_prefix(prefix.size());
  size_t d = 0;
  while (d < name.size() && d < 9 && name[d] >= '0' && name[d] <= '9') ++d;
  if (d == 0 || d >= name.size() || name[d] != '.') return false;
  *layer = std::string(name.substr(0, d));
  *rest = name.substr(d + 1);
  return true;
}

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::Bool: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    case GgufType::String: return 8;  // at least its length field
    case GgufType::Array: return 12;  // at least type + length
  }
  return 0;
}

// Bounds-checked little-endian reads over the header bytes.
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t len, uint64_t file_size, const std::string& name)
      : p_(p), len_(len), file_size_(file_size), name_(name) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining_in_file() const { return file_size_ - pos_; }

  void need(uint64_t n, const char* what) {
    if (n > file_size_ - pos_)
      throw Error(fmt::format("{}: truncated header: {} needs {} bytes at offset {} but the file has {}", name_, what,
                              n, pos_, file_size_));
    if (pos_ + n > kGgufMaxHeaderBytes)
      throw Error(fmt::format("{}: header larger than {} bytes (at {})", name_, kGgufMaxHeaderBytes, what));
    if (pos_ + n > len_) throw GgufNeedMore{pos_ + n};
  }
  template <class T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string str(const char* what) {
    uint64_t n = get<uint64_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), size_t(n));
    pos_ += n;
    return s;
  }

 private:
  const uint8_t* p_;
  uint64_t len_;
  uint64_t file_size_;
  const std::string& name_;
  uint64_t pos_ = 0;
};

GgufType value_type(uint32_t raw, const std::string& name, const std::string& key) {
  if (raw > uint32_t(GgufType::F64))
    throw Error(fmt::format("{}: metadata '{}' has unknown value type {}", name, key, raw));
  return GgufType(raw);
}

// Reads one scalar of type t into v (strings into v.s).
void read_scalar(Cursor& c, GgufType t, GgufValue& v, const char* what) {
  switch (t) {
    case GgufType::U8: v.u = c.get<uint8_t>(what); v.i = int64_t(v.u); break;
    case GgufType::I8: v.i = c.get<int8_t>(what); v.u = uint64_t(v.i); break;
    case GgufType::U16: v.u = c.get<uint16_t>(what); v.i = int64_t(v.u); break;
    case GgufType::I16: v.i = c.get<int16_t>(what); v.u = uint64_t(v.i); break;
    case GgufType::U32: v.u = c.get<uint32_t>(what); v.i = int64_t(v.u); break;
    case GgufType::I32: v.i = c.get<int32_t>(what); v.u = uint64_t(v.i); break;
    case GgufType::U64: v.u = c.get<uint64_t>(what); v.i = int64_t(v.u); break;
    case GgufType::I64: v.i = c.get<int64_t>(what); v.u = uint64_t(v.i); break;
    case GgufType::F32: v.f = c.get<float>(what); break;
    case GgufType::F64: v.f = c.get<double>(what); break;
    case GgufType::Bool: v.u = c.get<uint8_t>(what); v.i = int64_t(v.u); break;
    case GgufType::String: v.s = c.str(what); break;
    case GgufType::Array: break;  // not a scalar
  }
}

GgufValue read_value(Cursor& c, GgufType t, const std::string& name, const std::string& key) {
  GgufValue v;
  v.type = t;
  if (t != GgufType::Array) {
    read_scalar(c, t, v, "metadata value");
    if (t == GgufType::Bool && v.u > 1) throw Error(fmt::format("{}: metadata '{}' bool is {}", name, key, v.u));
    return v;
  }
  v.elem_type = value_type(c.get<uint32_t>("array type"), name, key);
  if (v.elem_type == GgufType::Array)
    throw Error(fmt::format("{}: metadata '{}' is an array of arrays (not supported)", name, key));
  v.array_len = c.get<uint64_t>("array length");
  // Every element takes at least scalar_size bytes: a length the rest of the
  // file cannot hold is corrupt, and is rejected before any allocation.
  if (v.array_len > c.remaining_in_file() / scalar_size(v.elem_type))
    throw Error(fmt::format("{}: metadata '{}' array length {} exceeds the file", name, key, v.array_len));
  GgufValue e;
  if (v.elem_type == GgufType::String) {
    v.strs.reserve(size_t(v.array_len));
    for (uint64_t i = 0; i < v.array_len; ++i) v.strs.push_back(c.str("array string"));
  } else if (v.elem_type == GgufType::F32 || v.elem_type == GgufType::F64) {
    v.floats.reserve(size_t(v.array_len));
    for (uint64_t i = 0; i < v.array_len; ++i) {
      read_scalar(c, v.elem_type, e, "array element");
      v.floats.push_back(e.f);
    }
  } else {
    v.ints.reserve(size_t(v.array_len));
    for (uint64_t i = 0; i < v.array_len; ++i) {
      read_scalar(c, v.elem_type, e, "array element");
      v.ints.push_back(e.i);
    }
  }
  return v;
}

uint64_t mul_checked(uint64_t a, uint64_t b, const std::string& what) {
  if (a != 0 && b > (uint64_t(1) << 62) / a) throw Error(what + ": element count overflows");
  return a * b;
}

}  // namespace

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::U8: case GgufType::I8: case GgufType::U16: case GgufType::I16: case GgufType::U32:
    case GgufType::I32: case GgufType::U64: case GgufType::I64: return true;
    default: return false;
  }
}
bool GgufValue::is_float() const { return type == GgufType::F32 || type == GgufType::F64; }

const GgufValue* GgufHeader::find(const std::string& key) const {
  auto it = kv_index.find(key);
  return it == kv_index.end() ? nullptr : &kv[it->second].second;
}

uint32_t ggml_type_of(DType t) { return dtype_traits(t).ggml_type; }

DType dtype_of_ggml_type(uint32_t ggml_type, const std::string& context) {
  const DTypeTraits* t = dtype_of_ggml(ggml_type);
  if (!t || !t->weight)
    throw Error(fmt::format("{}: unsupported tensor type {} (strata reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, "
                            "Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)",
                            context, ggml_type_label(ggml_type)));
  return t->type;
}

std::optional<std::string> gguf_to_hf_name(std::string_view n) {
  for (const auto& p : kGlobalNames)
    if (n == p.gguf) return std::string(p.hf);
  std::string layer;
  std::string_view rest;
  if (!split_layer(n, "blk.", &layer, &rest)) return std::nullopt;
  for (const auto& p : kLayerNames)
    if (rest == p.gguf) return "model.layers." + layer + "." + p.hf;
  return std::nullopt;
}

std::optional<std::string> hf_to_gguf_name(std::string_view n) {
  for (const auto& p : kGlobalNames)
    if (n == p.hf) return std::string(p.gguf);
  std::string layer;
  std::string_view rest;
  if (!split_layer(n, "model.layers.", &layer, &rest)) return std::nullopt;
  for (const auto& p : kLayerNames)
    if (rest == p.hf) return "blk." + layer + "." + p.gguf;
  return std::nullopt;
}

std::optional<std::string> gguf_arch_of_hf(std::string_view hf_class) {
  for (const auto& p : kArchNames)
    if (hf_class == p.hf) return std::string(p.gguf);
  if (hf_class == "MistralForCausalLM") return std::string("llama");  // as llama.cpp converts it
  return std::nullopt;
}

GgufHeader parse_gguf_header(const uint8_t* bytes, size_t len, uint64_t file_size, const std::string& name) {
  Cursor c(bytes, len, file_size, name);
  GgufHeader h;
  if (file_size < 4 || (len >= 4 && std::memcmp(bytes, "GGUF", 4) != 0))
    throw Error(name + ": not a GGUF file (no GGUF magic)");
  c.get<uint32_t>("magic");
  h.version = c.get<uint32_t>("version");
  if (h.version != 2 && h.version != 3)
    throw Error(fmt::format("{}: GGUF version {} is not supported (2 or 3)", name, h.version));
  const uint64_t n_tensors = c.get<uint64_t>("tensor count");
  const uint64_t n_kv = c.get<uint64_t>("metadata count");
  if (n_tensors > kGgufMaxTensors || n_tensors > file_size / 24)
    throw Error(fmt::format("{}: tensor count {} is impossible for a file of {} bytes", name, n_tensors, file_size));
  if (n_kv > kGgufMaxKeys || n_kv > file_size / 12)
    throw Error(fmt::format("{}: metadata count {} is impossible for a file of {} bytes", name, n_kv, file_size));

  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.str("metadata key");
    if (key.empty()) throw Error(fmt::format("{}: metadata key {} is empty", name, i));
    GgufType t = value_type(c.get<uint32_t>("metadata type"), name, key);
    GgufValue v = read_value(c, t, name, key);
    if (h.kv_index.count(key)) throw Error(fmt::format("{}: duplicate metadata key '{}'", name, key));
    h.kv_index[key] = h.kv.size();
    h.kv.emplace_back(std::move(key), std::move(v));
  }
  if (const GgufValue* a = h.find("general.alignment")) {
    if (!a->is_integer() || a->u == 0 || (a->u & (a->u - 1)) != 0 || a->u > (1u << 24))
      throw Error(fmt::format("{}: general.alignment must be a power of two up to 16 MiB", name));
    h.alignment = a->u;
  }

  std::set<std::string> names;
  h.tensors.reserve(size_t(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    t.name = c.str("tensor name");
    if (t.name.empty()) throw Error(fmt::format("{}: tensor {} has an empty name", name, i));
    if (!names.insert(t.name).second) throw Error(fmt::format("{}: duplicate tensor '{}'", name, t.name));
    const uint32_t n_dims = c.get<uint32_t>("tensor dims");
    if (n_dims == 0 || n_dims > kGgufMaxDims)
      throw Error(fmt::format("{}: tensor '{}' has {} dimensions (1 to {})", name, t.name, n_dims, kGgufMaxDims));
    for (uint32_t d = 0; d < n_dims; ++d) t.ne.push_back(c.get<uint64_t>("tensor shape"));
    t.ggml_type = c.get<uint32_t>("tensor type");
    t.offset = c.get<uint64_t>("tensor offset");
    h.tensors.push_back(std::move(t));
  }
  h.data_start = (c.pos() + h.alignment - 1) / h.alignment * h.alignment;
  if (h.data_start > file_size && n_tensors > 0)
    throw Error(fmt::format("{}: data section starts at {} past the end of the file ({} bytes)", name, h.data_start,
                            file_size));

  for (const GgufTensor& t : h.tensors) {
    const std::string ctx = fmt::format("{}: tensor '{}'", name, t.name);
    const DType dt = dtype_of_ggml_type(t.ggml_type, ctx);
    uint64_t count = 1;
    for (uint64_t d : t.ne) {
      if (d == 0 || d > (uint64_t(1) << 40)) throw Error(fmt::format("{} has dimension {}", ctx, d));
      count = mul_checked(count, d, ctx);
    }
    if (t.ne[0] % dtype_block_elems(dt) != 0)
      throw Error(fmt::format("{}: row length {} is not a multiple of the {} block size {}", ctx, t.ne[0],
                              dtype_name(dt), dtype_block_elems(dt)));
    if (t.offset % h.alignment != 0)
      throw Error(fmt::format("{}: offset {} is not a multiple of general.alignment {}", ctx, t.offset, h.alignment));
    TensorInfo info;
    info.name = gguf_to_hf_name(t.name).value_or(t.name);
    info.dtype = dt;
    for (auto it = t.ne.rbegin(); it != t.ne.rend(); ++it) info.shape.push_back(int64_t(*it));
    info.nbytes = dtype_bytes(dt, count);
    if (t.offset > file_size || info.nbytes > file_size - h.data_start ||
        t.offset > file_size - h.data_start - info.nbytes)
      throw Error(fmt::format("{}: data [{}, +{}) runs past the end of the file ({} bytes)", ctx, t.offset,
                              info.nbytes, file_size));
    info.offset = h.data_start + t.offset;
    info.file = 0;
    h.infos.push_back(std::move(info));
  }
  std::sort(h.infos.begin(), h.infos.end(), [](const TensorInfo& a, const TensorInfo& b) { return a.offset < b.offset; });
  for (size_t i = 1; i < h.infos.size(); ++i) {
    const TensorInfo& a = h.infos[i - 1];
    if (a.offset + a.nbytes > h.infos[i].offset)
      throw Error(fmt::format("{}: tensors '{}' and '{}' overlap", name, a.name, h.infos[i].name));
  }
  std::set<std::string> hf_names;
  for (const TensorInfo& t : h.infos)
    if (!hf_names.insert(t.name).second) throw Error(fmt::format("{}: duplicate tensor '{}'", name, t.name));
  return h;
}

ModelConfig gguf_model_config(const GgufHeader& h, const std::string& name) {
  auto str_key = [&](const std::string& key) -> std::string {
    const GgufValue* v = h.find(key);
    if (!v) throw Error(fmt::format("{}: metadata '{}' is missing", name, key));
    if (v->type != GgufType::String) throw Error(fmt::format("{}: metadata '{}' is not a string", name, key));
    return v->s;
  };
  auto int_key = [&](const std::string& key, std::optional<int64_t> dflt, int64_t lo, int64_t hi) -> int64_t {
    const GgufValue* v = h.find(key);
    if (!v) {
      if (dflt) return *dflt;
      throw Error(fmt::format("{}: metadata '{}' is missing", name, key));
    }
    if (!v->is_integer()) throw Error(fmt::format("{}: metadata '{}' is not an integer", name, key));
    const bool is_unsigned = v->type == GgufType::U8 || v->type == GgufType::U16 || v->type == GgufType::U32 ||
                             v->type == GgufType::U64;
    if ((is_unsigned && v->u > uint64_t(hi)) || (!is_unsigned && (v->i < lo || v->i > hi)))
      throw Error(fmt::format("{}: metadata '{}' = {} is out of range [{}, {}]", name, key,
                              is_unsigned ? std::to_string(v->u) : std::to_string(v->i), lo, hi));
    if (is_unsigned && int64_t(v->u) < lo)
      throw Error(fmt::format("{}: metadata '{}' = {} is out of range [{}, {}]", name, key, v->u, lo, hi));
    return v->i;
  };
  auto float_key = [&](const std::string& key, double dflt) -> double {
    const GgufValue* v = h.find(key);
    if (!v) return dflt;
    if (v->is_float()) return v->f;
    if (v->is_integer()) return double(v->i);
    throw Error(fmt::format("{}: metadata '{}' is not a number", name, key));
  };

  ModelConfig c;
  const std::string arch = str_key("general.architecture");
  for (const auto& p : kArchNames)
    if (arch == p.gguf) c.architecture = p.hf;
  if (c.architecture.empty())
    throw Error(fmt::format("{}: general.architecture '{}' is not supported (llama, qwen2, qwen3)", name, arch));
  c.model_type = arch;
  constexpr int64_t kBig = int64_t(1) << 31;
  c.num_layers = int_key(arch + ".block_count", std::nullopt, 1, 1 << 16);
  c.hidden_size = int_key(arch + ".embedding_length", std::nullopt, 1, 1 << 20);
  c.intermediate_size = int_key(arch + ".feed_forward_length", std::nullopt, 1, 1 << 24);
  c.num_heads = int_key(arch + ".attention.head_count", std::nullopt, 1, 1 << 16);
  c.num_kv_heads = int_key(arch + ".attention.head_count_kv", c.num_heads, 1, 1 << 16);
  if (c.num_heads % c.num_kv_heads != 0)
    throw Error(fmt::format("{}: head_count {} is not a multiple of head_count_kv {}", name, c.num_heads,
                            c.num_kv_heads));
  c.head_dim = int_key(arch + ".attention.key_length", c.hidden_size / c.num_heads, 2, 1 << 16);
  if (c.head_dim % 2 != 0) throw Error(fmt::format("{}: head dimension {} is odd", name, c.head_dim));
  c.max_position_embeddings = int_key(arch + ".context_length", 2048, 1, kBig);
  c.rms_norm_eps = float_key(arch + ".attention.layer_norm_rms_epsilon", 1e-6);
  c.rope_theta = float_key(arch + ".rope.freq_base", 10000.0);
  if (!(c.rms_norm_eps >= 0 && c.rms_norm_eps < 1) || !(c.rope_theta > 1))
    throw Error(fmt::format("{}: rms epsilon {} or rope.freq_base {} out of range", name, c.rms_norm_eps, c.rope_theta));

  // RoPE scaling: the standard linear keys, and Llama 3's spectrum reshaping
  // in strata's own keys (llama.cpp bakes it into a rope_freqs tensor).
  if (const GgufValue* st = h.find(arch + ".rope.scaling.type")) {
    if (st->type != GgufType::String) throw Error(fmt::format("{}: rope.scaling.type is not a string", name));
    if (st->s == "linear") {
      c.rope_scaling.type = RopeScaling::Type::Linear;
      c.rope_scaling.factor = float_key(arch + ".rope.scaling.factor", 1.0);
    } else if (st->s != "none") {
      throw Error(fmt::format("{}: rope.scaling.type '{}' is not supported", name, st->s));
    }
  }
  if (h.find("strata.rope.llama3.factor")) {
    c.rope_scaling.type = RopeScaling::Type::Llama3;
    c.rope_scaling.factor = float_key("strata.rope.llama3.factor", 1.0);
    c.rope_scaling.low_freq_factor = float_key("strata.rope.llama3.low_freq_factor", 1.0);
    c.rope_scaling.high_freq_factor = float_key("strata.rope.llama3.high_freq_factor", 4.0);
    c.rope_scaling.original_max_position_embeddings =
        int_key("strata.rope.llama3.original_context_length", 8192, 1, kBig);
  } else {
    for (const TensorInfo& t : h.infos)
      if (t.name == "rope_freqs.weight")
        throw Error(fmt::format("{}: tensor rope_freqs.weight (Llama 3 RoPE scaling written by another converter) is "
                                "not supported yet",
                                name));
  }
  if (!(c.rope_scaling.factor > 0)) throw Error(fmt::format("{}: rope scaling factor must be positive", name));

  const TensorInfo* embd = nullptr;
  bool has_output = false, has_bias = false;
  for (const TensorInfo& t : h.infos) {
    if (t.name == "model.embed_tokens.weight") embd = &t;
    if (t.name == "lm_head.weight") has_output = true;
    if (t.name == "model.layers.0.self_attn.q_proj.bias") has_bias = true;
  }
  if (!embd) throw Error(fmt::format("{}: tensor token_embd.weight is missing", name));
  if (embd->shape.size() != 2)
    throw Error(fmt::format("{}: tensor token_embd.weight has {} dimensions (expected 2)", name, embd->shape.size()));
  c.vocab_size = embd->shape[0];
  c.tie_word_embeddings = !has_output;
  c.attention_bias = has_bias;
  c.rope_interleaved = arch == "llama";
  c.hidden_act = "silu";
  const int64_t max_id = c.vocab_size - 1;
  if (h.find("tokenizer.ggml.bos_token_id"))
    c.bos_token_id = int32_t(int_key("tokenizer.ggml.bos_token_id", std::nullopt, 0, max_id));
  if (h.find("tokenizer.ggml.eos_token_id"))
    c.eos_token_ids.push_back(int32_t(int_key("tokenizer.ggml.eos_token_id", std::nullopt, 0, max_id)));
  if (h.find("tokenizer.ggml.eot_token_id")) {
    int32_t eot = int32_t(int_key("tokenizer.ggml.eot_token_id", std::nullopt, 0, max_id));
    if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), eot) == c.eos_token_ids.end())
      c.eos_token_ids.push_back(eot);
  }
  return c;
}

namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

void pread_all(int fd, uint8_t* dst, size_t n, uint64_t off, const std::string& name) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, dst + done, n - done, off_t(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) throw Error(fmt::format("{}: read failed at offset {}: {}", name, off + done, std::strerror(errno)));
    done += size_t(r);
  }
}

}  // namespace

GgufFile read_gguf(const std::filesystem::path& path) {
  const std::string name = path.string();
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) throw Error(fmt::format("{}: cannot open: {}", name, std::strerror(errno)));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode)) throw Error(name + ": not a regular file");
  const uint64_t file_size = uint64_t(st.st_size);
  // Read a prefix and grow it until the header fits (tokenizer arrays can
  // make headers of several MB).
  std::vector<uint8_t> buf;
  uint64_t want = std::min<uint64_t>(file_size, 1 << 20);
  GgufFile g;
  for (;;) {
    size_t old = buf.size();
    buf.resize(size_t(want));
    pread_all(f.fd, buf.data() + old, buf.size() - old, old, name);
    try {
      g.header = parse_gguf_header(buf.data(), buf.size(), file_size, name);
      break;
    } catch (const GgufNeedMore& m) {
      want = std::min<uint64_t>(file_size, std::max<uint64_t>(m.bytes, want * 2));
    }
  }
  g.config = gguf_model_config(g.header, name);
  g.index.files.push_back(path);
  g.index.tensors = g.header.infos;
  for (size_t i = 0; i < g.index.tensors.size(); ++i) g.index.by_name[g.index.tensors[i].name] = i;
  return g;
}

bool is_gguf_file(const std::filesystem::path& path) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) return false;
  char m[4];
  return ::pread(f.fd, m, 4, 0) == 4 && std::memcmp(m, "GGUF", 4) == 0;
}

}  // namespace strata
