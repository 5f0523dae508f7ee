// Incremental detokenization for generation: feed ids one at a time and get
// text as soon as it is final. A piece never ends inside a UTF-8 sequence
// (text that would end in U+FFFD is held back until the next id completes
// it), and the concatenation of all pieces plus flush() equals
// tokenizer.decode(all ids) for any ids an encoder can produce (tested on the
// whole reference corpus). One exception for arbitrary ids: with
// ByteFallback, a byte token that cannot continue an already complete run of
// byte tokens makes decode() replace the whole run by U+FFFD; the stream has
// already emitted the run's text and emits only the new byte as U+FFFD.
//
//   strata::StreamDecoder sd(tok);
//   for (int32_t id : generated) std::cout << sd.step(id) << std::flush;
//   std::cout << sd.flush();
//
// Like the reference's DecodeStream, each step decodes only a short window:
// the ids of the last emitted piece (as context, so decoders that treat the
// first token specially, e.g. Llama 2's leading-space Strip, behave as in a
// full decode) plus the ids not yet emitted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace strata {

class Tokenizer;

class StreamDecoder {
 public:
  // `tokenizer` must outlive the decoder.
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false);

  // Returns the text that `id` completes; often empty.
  std::string step(int32_t id);
  // Returns whatever is still held back (e.g. a genuine trailing U+FFFD, or an
  // incomplete byte sequence, decoded as decode() would) and resets.
  std::string flush();
  void reset();

 private:
  const Tokenizer* tok_;
  bool skip_special_;
  std::vector<int32_t> ids_;  // context ids, then pending ids
  size_t context_ = 0;        // how many of ids_ are context
  std::string prefix_;        // decode of the context ids
};

}  // namespace strata
