#include "tokenizer/post_processor.h"

#include <map>

#include "tokenizer/json_util.h"

namespace strata::tok {

namespace {

// Adds fixed ids before and after the sequence. TemplateProcessing's single
// template, Bert's [CLS] $A [SEP] and Roberta's <s> $A </s> are all this.
class Surround final : public PostProcessor {
 public:
  Surround(std::vector<int32_t> before, std::vector<int32_t> after) : before_(std::move(before)), after_(std::move(after)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    ids.insert(ids.begin(), before_.begin(), before_.end());
    ids.insert(ids.end(), after_.begin(), after_.end());
  }

 private:
  std::vector<int32_t> before_, after_;
};

class NoOp final : public PostProcessor {
 public:
  void process(std::vector<int32_t>&, bool) const override {}
};

class SequencePost final : public PostProcessor {
 public:
  explicit SequencePost(std::vector<std::unique_ptr<PostProcessor>> parts) : parts_(std::move(parts)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    for (const auto& p : parts_) p->process(ids, add_special_tokens);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

std::unique_ptr<PostProcessor> template_processing(const nlohmann::json& j) {
  const std::string where = "post_processor TemplateProcessing";
  std::map<std::string, std::vector<int32_t>> specials;
  auto st = j.find("special_tokens");
  if (st != j.end() && st->is_object()) {
    for (const auto& [name, spec] : st->items()) {
      const auto& ids = require(spec, "ids", where + " special token '" + name + "'");
      if (!ids.is_array()) throw Error(fmt::format("{}: special token '{}' has no id list", where, name));
      std::vector<int32_t> v;
      for (const auto& id : ids) {
        if (!id.is_number_integer()) throw Error(fmt::format("{}: special token '{}' has a non-integer id", where, name));
        v.push_back(id.get<int32_t>());
      }
      specials[name] = std::move(v);
    }
  }
  const auto& single = require(j, "single", where);
  if (!single.is_array()) throw Error(where + ": 'single' must be an array");
  std::vector<int32_t> before, after;
  bool seen_sequence = false;
  for (const auto& piece : single) {
    if (piece.contains("Sequence")) {
      if (seen_sequence) throw Error(where + ": the single template uses the sequence twice");
      seen_sequence = true;
    } else if (piece.contains("SpecialToken")) {
      std::string id = require_string(piece["SpecialToken"], "id", where);
      auto it = specials.find(id);
      if (it == specials.end()) throw Error(fmt::format("{}: template uses '{}', which is not in special_tokens", where, id));
      auto& dst = seen_sequence ? after : before;
      dst.insert(dst.end(), it->second.begin(), it->second.end());
    } else {
      throw Error(where + ": template piece is neither Sequence nor SpecialToken");
    }
  }
  if (!seen_sequence) throw Error(where + ": the single template has no $A");
  return std::make_unique<Surround>(std::move(before), std::move(after));
}

// Bert and Roberta store each token as ["text", id].
int32_t token_pair_id(const nlohmann::json& j, std::string_view key, std::string_view where) {
  const auto& v = require(j, key, where);
  if (!v.is_array() || v.size() != 2 || !v[1].is_number_integer())
    throw Error(fmt::format("{}: '{}' must be [token, id]", where, key));
  return v[1].get<int32_t>();
}

}  // namespace

std::unique_ptr<PostProcessor> PostProcessor::from_json(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  std::string type = component_type(j, "post_processor");
  std::string where = "post_processor " + type;
  if (type == "TemplateProcessing") return template_processing(j);
  if (type == "ByteLevel") return std::make_unique<NoOp>();
  if (type == "BertProcessing" || type == "RobertaProcessing")
    return std::make_unique<Surround>(std::vector<int32_t>{token_pair_id(j, "cls", where)},
                                      std::vector<int32_t>{token_pair_id(j, "sep", where)});
  if (type == "Sequence") {
    const auto& list = require(j, "processors", where);
    if (!list.is_array()) throw Error(where + ": 'processors' must be an array");
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (const auto& item : list) {
      if (auto p = from_json(item)) parts.push_back(std::move(p));
    }
    return std::make_unique<SequencePost>(std::move(parts));
  }
  throw Error(fmt::format("unsupported post_processor type '{}'", type));
}

}  // namespace strata::tok
