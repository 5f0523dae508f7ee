#include "arch/model_layout.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>

#include "core/error.h"
#include "arch/gguf_model.h"

namespace strata {
namespace {

std::string shape_str(const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

const TensorInfo& require(const ModelLayout& m, const std::string& name, const std::vector<int64_t>& shape) {
  const TensorInfo* t = m.index.find(name);
  if (!t) {
    throw Error(fmt::format("{}: tensor '{}' is missing (expected shape {} for {})", m.dir.string(), name,
                            shape_str(shape), m.config.architecture));
  }
  if (t->shape != shape) {
    throw Error(fmt::format("{}: tensor '{}' has shape {} but config.json implies {}", m.file_of(*t).string(), name,
                            shape_str(t->shape), shape_str(shape)));
  }
  return *t;
}

}  // namespace

ModelLayout open_model_layout(const std::filesystem::path& dir) {
  ModelLayout m;
  m.dir = dir;
  if (std::filesystem::is_regular_file(dir)) {
    // A GGUF file: config and tensor index (HF names and shapes) from its header.
    GgufModel g = read_gguf_model(dir);
    m.config = std::move(g.config);
    m.arch = g.arch;
    m.index = std::move(g.index);
  } else {
    if (!std::filesystem::is_directory(dir))
      throw Error(dir.string() + ": not a directory or GGUF file (expected a model directory or a .gguf file)");
    m.config = load_model_config(dir);
    m.arch = &find_arch(m.config.architecture, (dir / "config.json").string());
    m.index = load_tensor_index(dir);
  }
  const ModelConfig& c = m.config;

  // The embedding is checked first: its shape decides whether a mismatch is
  // the config's vocab/hidden or a layer's fault.
  // Input and output tensors from the family's table; the head is looked
  // up even when tied, since a checkpoint may carry one anyway.
  ModelConfig untied = c;
  untied.tie_word_embeddings = false;
  for (Placement where : {Placement::Input, Placement::Output})
    for (const auto& spec : global_tensors(*m.arch, untied, where)) {
      if (spec.role() == Role::LmHead && !m.index.find(spec.name)) {
        if (!c.tie_word_embeddings)
          throw Error(fmt::format("{}: tensor '{}' is missing and config.json does not set tie_word_embeddings",
                                  dir.string(), spec.name));
        m.lm_head = m.embed;
        continue;
      }
      const TensorInfo* t = &require(m, spec.name, spec.shape);
      if (spec.role() == Role::Embed) m.embed = t;
      if (spec.role() == Role::FinalNorm) m.final_norm = t;
      if (spec.role() == Role::LmHead) m.lm_head = t;
    }
  if (!m.embed || !m.final_norm || !m.lm_head)
    throw Error(fmt::format("internal: the {} table lacks an embedding, final norm or head", m.arch->display));

  m.layers.resize(size_t(c.num_layers));
  for (int64_t l = 0; l < c.num_layers; ++l) {
    LayerLayout& L = m.layers[size_t(l)];
    if (c.moe_layer(l)) L.experts.resize(size_t(c.num_experts));
    for (const auto& spec : layer_tensors(*m.arch, c, l)) {
      const TensorInfo& t = require(m, spec.name, spec.shape);
      L.bytes += t.nbytes;
      if (spec.def->per_expert) {
        ExpertLayout& x = L.experts.at(size_t(spec.expert));
        (spec.role() == Role::ExpertGate ? x.gate : spec.role() == Role::ExpertUp ? x.up : x.down) = &t;
        continue;
      }
      L.by_role[size_t(spec.role())] = &t;
      L.in_order.push_back(&t);
      L.dense_bytes += t.nbytes;
    }
  }
  // A checkpoint with more layers than config.json states is a contradiction
  // a user should hear about rather than silently get a truncated model.
  // DeepSeek-V3 checkpoints append their multi-token-prediction module as
  // layer num_hidden_layers (marked by eh_proj); like transformers, it is
  // not part of the model.
  if (m.index.find(fmt::format("model.layers.{}.input_layernorm.weight", c.num_layers)) &&
      !(c.mla && m.index.find(fmt::format("model.layers.{}.eh_proj.weight", c.num_layers))))
    throw Error(fmt::format("{}: checkpoint has more layers than num_hidden_layers = {} in config.json", dir.string(),
                            c.num_layers));
  return m;
}

uint64_t ModelLayout::total_bytes() const {
  uint64_t b = embed->nbytes + final_norm->nbytes;
  if (lm_head != embed) b += lm_head->nbytes;
  for (const auto& l : layers) b += l.bytes;
  return b;
}

uint64_t ModelLayout::parameter_count() const {
  uint64_t n = embed->numel() + final_norm->numel();
  if (lm_head != embed) n += lm_head->numel();
  for (const auto& l : layers) {
    for (const TensorInfo* t : l.in_order) n += t->numel();
    for (const auto& x : l.experts) n += x.gate->numel() + x.up->numel() + x.down->numel();
  }
  return n;
}

}  // namespace strata
