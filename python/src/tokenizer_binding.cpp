// strata._strata.Tokenizer: the library's tokenizer.json tokenizer.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <memory>

#include "strata/prompt.h"
#include "strata/tokenizer.h"

namespace pyb = pybind11;
using namespace pybind11::literals;

namespace strata::py {

void bind_tokenizer(pyb::module_& m) {
  pyb::class_<Tokenizer, std::shared_ptr<Tokenizer>>(m, "Tokenizer")
      .def_static(
          "from_file",
          [](const std::filesystem::path& p) {
            pyb::gil_scoped_release nogil;
            return std::make_shared<Tokenizer>(Tokenizer::from_file(p));
          },
          "path"_a)
      .def(
          "encode",
          [](const Tokenizer& t, std::string_view text, bool add_special_tokens, bool special_as_text) {
            pyb::gil_scoped_release nogil;
            // With special tokens: as transformers' tokenizer(text) for the model (BOS rule included).
            return encode_prompt(t, text, add_special_tokens, special_as_text);
          },
          "text"_a, "add_special_tokens"_a = true, "special_as_text"_a = false)
      .def(
          "encode_batch",
          [](const Tokenizer& t, const std::vector<std::string>& texts, bool add_special_tokens, bool special_as_text) {
            pyb::gil_scoped_release nogil;
            std::vector<std::vector<int32_t>> r;
            r.reserve(texts.size());
            for (const auto& s : texts) r.push_back(encode_prompt(t, s, add_special_tokens, special_as_text));
            return r;
          },
          "texts"_a, "add_special_tokens"_a = true, "special_as_text"_a = false)
      .def(
          "decode",
          [](const Tokenizer& t, const std::vector<int32_t>& ids, bool skip_special) {
            std::string s;
            {
              pyb::gil_scoped_release nogil;
              s = t.decode(ids, skip_special);
            }
            // Byte-fallback pieces can end mid-character: replace, never raise.
            return pyb::reinterpret_steal<pyb::str>(PyUnicode_DecodeUTF8(s.data(), Py_ssize_t(s.size()), "replace"));
          },
          "ids"_a, "skip_special"_a = false)
      .def_property_readonly("vocab_size", &Tokenizer::vocab_size)
      .def("token_to_id", &Tokenizer::token_to_id)
      .def("id_to_token", [](const Tokenizer& t, int32_t id) {
        std::string s = t.id_to_token(id);
        return pyb::reinterpret_steal<pyb::str>(PyUnicode_DecodeUTF8(s.data(), Py_ssize_t(s.size()), "replace"));
      })
      .def("is_special", &Tokenizer::is_special)
      .def_property_readonly("bos_id", &Tokenizer::bos_id)
      .def_property_readonly("eos_id", &Tokenizer::eos_id)
      .def_property_readonly("config", [](const Tokenizer& t) {
        const TokenizerConfig& c = t.config();
        return pyb::dict("bos_token"_a = c.bos_token, "eos_token"_a = c.eos_token, "pad_token"_a = c.pad_token,
                         "unk_token"_a = c.unk_token, "add_bos_token"_a = c.add_bos_token,
                         "add_eos_token"_a = c.add_eos_token, "chat_template"_a = c.chat_template);
      });
}

}  // namespace strata::py
