// strata._strata: the pybind11 module under the Python package `strata`.
// It binds the public C++ API (include/strata/) and the Tokenizer; the
// transformers/AirLLM-shaped surface is pure Python (python/strata/).
//
// Rules kept here: the GIL is released around everything that loads or
// computes; waiting for a generation polls for signals so Ctrl-C cancels it;
// every C++ exception becomes a Python exception with the same message.
#include <nlohmann/json.hpp>
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

#include "strata/error.h"  // strata::Error / UsageError: what the public API throws
#include "job.h"
#include "strata/convert.h"
#include "strata/hub.h"
#include "strata/prompt.h"
#include "strata/strata.h"
#include "strata/tokenizer.h"

namespace pyb = pybind11;
using namespace pybind11::literals;

namespace strata::py {
namespace {

// How often a waiting call wakes up to check for Ctrl-C.
constexpr double kPollSeconds = 0.02;

// Text from the library as str; byte-fallback pieces never raise.
pyb::str utf8(const std::string& s) {
  return pyb::reinterpret_steal<pyb::str>(PyUnicode_DecodeUTF8(s.data(), Py_ssize_t(s.size()), "replace"));
}

pyb::dict plan_dict(const MemoryPlan& p) {
  return pyb::dict("budget_bytes"_a = p.budget, "min_memory_bytes"_a = p.min_budget, "planned_bytes"_a = p.total_bytes,
                   "units"_a = p.units, "resident_units"_a = p.resident_units, "streaming_slots"_a = p.streaming_slots,
                   "slot_bytes"_a = p.slot_bytes, "resident_bytes"_a = p.resident_bytes,
                   "kv_cache_bytes"_a = p.kv_cache_bytes, "activation_bytes"_a = p.activation_bytes,
                   "logits_bytes"_a = p.logits_bytes, "streamed_bytes_per_pass"_a = p.streamed_bytes_per_pass,
                   "context"_a = p.context);
}

pyb::dict info_dict(const ModelInfo& i) {
  return pyb::dict("path"_a = i.path, "architecture"_a = i.architecture, "family"_a = i.family, "layers"_a = i.layers,
                   "hidden_size"_a = i.hidden_size, "intermediate_size"_a = i.intermediate_size, "heads"_a = i.heads,
                   "kv_heads"_a = i.kv_heads, "head_dim"_a = i.head_dim, "vocab_size"_a = i.vocab_size,
                   "max_position_embeddings"_a = i.max_position_embeddings, "tied_embeddings"_a = i.tied_embeddings,
                   "dtype"_a = i.dtype, "parameters"_a = i.parameters, "total_bytes"_a = i.total_bytes,
                   "layer_bytes"_a = i.layer_bytes, "embedding_bytes"_a = i.embedding_bytes,
                   "head_bytes"_a = i.head_bytes, "eos_token_ids"_a = i.eos_token_ids, "bos_token_id"_a = i.bos_token_id);
}

// Expert cache hits / routed experts; 0 for a dense model (nothing routed).
template <class S>
double hit_rate(const S& s) {
  return s.experts_routed ? double(s.expert_hits) / double(s.experts_routed) : 0.0;
}

pyb::dict stats_dict(const JobStats& s) {
  return pyb::dict("sequences"_a = s.sequences, "passes"_a = s.passes, "generated_tokens"_a = s.generated_tokens,
                   "prompt_tokens"_a = s.prompt_tokens, "bytes_read"_a = s.bytes_read, "wall_s"_a = s.wall_s,
                   "io_wait_s"_a = s.io_wait_s, "compute_s"_a = s.compute_s, "queue_s"_a = s.queue_s,
                   "drafted_tokens"_a = s.drafted_tokens, "accepted_tokens"_a = s.accepted_tokens,
                   "experts_routed"_a = s.experts_routed, "expert_hits"_a = s.expert_hits,
                   "expert_bytes_read"_a = s.expert_bytes_read, "expert_hit_rate"_a = hit_rate(s));
}

pyb::dict engine_stats_dict(const EngineStats& s) {
  return pyb::dict("requests_submitted"_a = s.requests_submitted, "requests_finished"_a = s.requests_finished,
                   "requests_cancelled"_a = s.requests_cancelled, "prompt_tokens"_a = s.prompt_tokens,
                   "generated_tokens"_a = s.generated_tokens, "passes"_a = s.passes, "pass_rows"_a = s.pass_rows,
                   "bytes_read"_a = s.bytes_read, "resident_bytes_read"_a = s.resident_bytes_read,
                   "io_wait_s"_a = s.io_wait_s, "compute_s"_a = s.compute_s, "startup_s"_a = s.startup_s,
                   "running"_a = s.running, "queued"_a = s.queued, "kv_pages_total"_a = s.kv_pages_total,
                   "kv_pages_used"_a = s.kv_pages_used, "kv_page_positions"_a = s.kv_page_positions,
                   "kv_pool_bytes"_a = s.kv_pool_bytes, "preemptions"_a = s.preemptions,
                   "drafted_tokens"_a = s.drafted_tokens, "accepted_tokens"_a = s.accepted_tokens,
                   "experts_routed"_a = s.experts_routed, "expert_hits"_a = s.expert_hits,
                   "expert_bytes_read"_a = s.expert_bytes_read, "expert_hit_rate"_a = hit_rate(s));
}

// Blocks (GIL released) until the job ends or `timeout` seconds passed (< 0:
// no limit); true when it ended. On a pending signal (Ctrl-C raises
// KeyboardInterrupt from its handler) the job is cancelled, awaited, and the
// Python exception propagates: the Engine is left usable.
bool wait_job(Job& job, double timeout) {
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    {
      pyb::gil_scoped_release nogil;
      if (job.wait_done(kPollSeconds)) return true;
    }
    if (timeout >= 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() >= timeout)
      return false;
    if (PyErr_CheckSignals() != 0) {
      job.cancel();
      {
        pyb::gil_scoped_release nogil;
        job.wait_done(1e9);
      }
      throw pyb::error_already_set();
    }
  }
}

// Tokens since the last call, waiting up to `timeout` seconds (< 0: until
// at least one token or the end), interruptible like wait_job.
pyb::tuple take_tokens(Job& job, double timeout) {
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    bool done = false;
    std::vector<TokenOut> got;
    {
      pyb::gil_scoped_release nogil;
      got = job.take(kPollSeconds, &done);
    }
    double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!got.empty() || done || (timeout >= 0 && waited >= timeout)) {
      pyb::list l;
      for (const auto& t : got) l.append(pyb::make_tuple(t.seq, t.id, utf8(t.text)));
      return pyb::make_tuple(l, done);
    }
    if (PyErr_CheckSignals() != 0) {
      job.cancel();
      {
        pyb::gil_scoped_release nogil;
        job.wait_done(1e9);
      }
      throw pyb::error_already_set();
    }
  }
}

std::shared_ptr<EngineHolder> open_engine(const std::filesystem::path& path, const EngineOptions& o) {
  auto h = std::make_shared<EngineHolder>();
  pyb::gil_scoped_release nogil;
  h->engine = Engine::open(path, o);
  return h;
}

void register_errors(pyb::module_& m) {
  // strata.Error is a RuntimeError; strata.UsageError (bad arguments, a
  // budget below the minimum) is also a ValueError, which is what Python
  // callers catch for bad values.
  static pyb::handle error = PyErr_NewException("strata.Error", PyExc_RuntimeError, nullptr);
  pyb::tuple usage_bases = pyb::make_tuple(error, pyb::handle(PyExc_ValueError));
  static pyb::handle usage = PyErr_NewException("strata.UsageError", usage_bases.ptr(), nullptr);
  pyb::tuple nf_bases = pyb::make_tuple(error, pyb::handle(PyExc_FileNotFoundError));
  static pyb::handle budget = PyErr_NewException("strata.BudgetError", usage.ptr(), nullptr);
  static pyb::handle not_found = PyErr_NewException("strata.ModelNotFoundError", nf_bases.ptr(), nullptr);
  m.attr("Error") = error;
  m.attr("UsageError") = usage;
  m.attr("ModelNotFoundError") = not_found;
  m.attr("BudgetError") = budget;
  pyb::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const UsageError& e) {
      PyErr_SetString(usage.ptr(), e.what());
    } catch (const Error& e) {
      // The planner refuses a budget below the model's minimum with an
      // Error (the CLI's exit status 1); for Python callers it is a bad
      // max_memory value, so it is raised as a BudgetError, a ValueError too.
      if (std::strstr(e.what(), "is below the minimum")) PyErr_SetString(budget.ptr(), e.what());
      else PyErr_SetString(error.ptr(), e.what());
    } catch (const nlohmann::json::exception& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::filesystem::filesystem_error& e) {
      if (e.code() == std::errc::no_such_file_or_directory) PyErr_SetString(not_found.ptr(), e.what());
      else PyErr_SetString(PyExc_OSError, e.what());
    } catch (const std::system_error& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    }
  });
}

}  // namespace

void bind_tokenizer(pyb::module_& m);
void bind_chat(pyb::module_& m);

}  // namespace strata::py

PYBIND11_MODULE(_strata, m) {
  using namespace strata;
  using namespace strata::py;
  m.doc() = "strata's C++ engine (use the `strata` package, not this module)";
  register_errors(m);

  pyb::class_<SamplingParams>(m, "SamplingParams")
      .def(pyb::init([](float temperature, int top_k, float top_p, float min_p, uint64_t seed) {
             return SamplingParams{temperature, top_k, top_p, min_p, seed};
           }),
           "temperature"_a = 0.0f, "top_k"_a = 0, "top_p"_a = 1.0f, "min_p"_a = 0.0f, "seed"_a = 0)
      .def_readwrite("temperature", &SamplingParams::temperature)
      .def_readwrite("top_k", &SamplingParams::top_k)
      .def_readwrite("top_p", &SamplingParams::top_p)
      .def_readwrite("min_p", &SamplingParams::min_p)
      .def_readwrite("seed", &SamplingParams::seed);

  pyb::class_<SeqSpec>(m, "Sequence")
      .def(pyb::init([](std::vector<int32_t> prompt, int max_new_tokens, SamplingParams sampling, bool stop_at_eos,
                        std::vector<int32_t> stop_ids, std::vector<std::string> stop_strings, size_t lookup_ngram,
                        size_t draft_tokens) {
             return SeqSpec{std::move(prompt), max_new_tokens,         sampling,     stop_at_eos,
                            std::move(stop_ids), std::move(stop_strings), lookup_ngram, draft_tokens};
           }),
           "prompt"_a, "max_new_tokens"_a = 64, "sampling"_a = SamplingParams{}, "stop_at_eos"_a = true,
           "stop_ids"_a = std::vector<int32_t>{}, "stop_strings"_a = std::vector<std::string>{},
           "lookup_ngram"_a = 0, "draft_tokens"_a = 0)
      .def_readonly("prompt", &SeqSpec::prompt)
      .def_readonly("max_new_tokens", &SeqSpec::max_new_tokens);

  pyb::class_<Job, std::shared_ptr<Job>>(m, "Job")
      .def("cancel", &Job::cancel, "Stops every sequence at its next token; queued ones never start.")
      .def_property_readonly("cancelled", &Job::cancelled)
      .def("done", [](Job& j) { return j.wait_done(0); })
      .def("wait", &wait_job, "timeout"_a = -1.0,
           "Blocks until the job ends or timeout seconds pass (< 0: no limit); True when it ended. Ctrl-C "
           "cancels the job and raises KeyboardInterrupt.")
      .def("take", &take_tokens, "timeout"_a = -1.0,
           "(tokens, done): [(sequence index, id), ...] chosen since the last call")
      .def("results",
           [](Job& j) {
             pyb::list l;
             for (const auto& s : j.results())
               l.append(pyb::dict("ids"_a = s.ids, "text"_a = utf8(s.text), "finish_reason"_a = s.finish_reason,
                                  "passes"_a = s.passes, "queue_s"_a = s.queue_s,
                                  "drafted_tokens"_a = s.drafted_tokens, "accepted_tokens"_a = s.accepted_tokens));
             return l;
           })
      .def("stats", [](Job& j) { return stats_dict(j.stats()); })
      .def("__len__", &Job::size);

  pyb::class_<EngineHolder, std::shared_ptr<EngineHolder>>(m, "Engine")
      .def(pyb::init([](const std::filesystem::path& path, uint64_t max_memory, size_t threads, const std::string& io,
                        size_t max_prefill_rows, size_t streaming_slots, int64_t context, size_t max_sequences,
                        const std::string& kv_type, const std::string& draft_model, size_t draft_tokens) {
             EngineOptions o;
             o.draft_model = draft_model;
             o.draft_tokens = draft_tokens;
             o.max_memory = max_memory;
             o.threads = threads;
             o.io = io;
             if (max_prefill_rows) o.max_prefill_rows = max_prefill_rows;
             o.streaming_slots = streaming_slots;
             o.context = context;
             o.max_sequences = max_sequences;
             o.kv_type = kv_type;
             return open_engine(path, o);
           }),
           "path"_a, "max_memory"_a = 0, "threads"_a = 0, "io"_a = "", "max_prefill_rows"_a = 0,
           "streaming_slots"_a = 0, "context"_a = 0, "max_sequences"_a = 0, "kv_type"_a = "f16",
           "draft_model"_a = std::string(), "draft_tokens"_a = 0)
      .def("info", [](EngineHolder& h) { return info_dict(h.engine->info()); })
      .def(
          "plan_for",
          [](EngineHolder& h, int64_t context, size_t logit_rows, size_t sequences) {
            MemoryPlan p;
            {
              pyb::gil_scoped_release nogil;
              p = h.engine->plan_for(context, logit_rows, sequences);
            }
            return plan_dict(p);
          },
          "context"_a, "logit_rows"_a = 1, "sequences"_a = 1)
      .def("auto_batch_size",
           [](EngineHolder& h, int64_t context, size_t cap) {
             pyb::gil_scoped_release nogil;
             return h.engine->auto_batch_size(context, cap);
           })
      .def("io_method",
           [](EngineHolder& h) {
             std::string method, reason;
             {
               pyb::gil_scoped_release nogil;  // the first call may calibrate (reads the disk)
               method = h.engine->io_method();
               reason = h.engine->io_method_reason();
             }
             return pyb::make_tuple(method, reason);
           })
      .def(
          "start",
          [](std::shared_ptr<EngineHolder> h, std::vector<SeqSpec> seqs) {
            pyb::gil_scoped_release nogil;  // the first request builds the runtime (loads resident layers)
            return std::make_shared<Job>(std::move(h), std::move(seqs));
          },
          "sequences"_a)
      .def(
          "score",
          [](EngineHolder& h, const std::vector<int32_t>& ids, bool keep_logits) {
            ScoreResult r;
            {
              pyb::gil_scoped_release nogil;
              r = h.engine->score(ids, keep_logits);
            }
            pyb::dict d("argmax"_a = r.argmax, "logprobs"_a = r.logprobs, "perplexity"_a = r.perplexity,
                        "passes"_a = r.passes.size(), "plan"_a = plan_dict(r.plan), "io_method"_a = r.io_method);
            // float32 rows x vocab as bytes: numpy reads them without a copy
            // per element; no numpy is needed to build them.
            d["logits"] = pyb::bytes(reinterpret_cast<const char*>(r.logits.data()), r.logits.size() * sizeof(float));
            return d;
          },
          "ids"_a, "keep_logits"_a = false)
      .def("stats", [](EngineHolder& h) { return engine_stats_dict(h.engine->stats()); })
      .def("shutdown", [](EngineHolder& h) {
        pyb::gil_scoped_release nogil;
        h.engine->shutdown();
      });

  m.def(
      "convert",
      [](const std::filesystem::path& model, const std::filesystem::path& out, const std::string& compression,
         std::function<void(int64_t, int64_t, uint64_t, uint64_t)> progress) {
        ConvertOptions o;
        o.compression = compression;
        if (progress)
          o.progress = [&](const ConvertProgress& p) {
            pyb::gil_scoped_acquire gil;
            // Ctrl-C during a conversion aborts it (the temporary file is removed).
            if (PyErr_CheckSignals() != 0) throw pyb::error_already_set();
            progress(p.layers_done, p.layers_total, p.bytes_written, p.bytes_total);
          };
        ConvertResult r;
        {
          pyb::gil_scoped_release nogil;
          r = convert_model(model, out, o);
        }
        return pyb::dict("bytes"_a = r.bytes, "tensors"_a = r.tensors, "type"_a = r.type, "notes"_a = r.notes,
                         "tokenizer"_a = r.tokenizer);
      },
      "model"_a, "out"_a, "compression"_a = "8bit", "progress"_a = nullptr);

  m.def("is_hub_model_name", &is_hub_model_name, "name"_a);
  m.def(
      "hub_download",
      [](const std::string& name, const std::optional<std::string>& token) {
        HubOptions o;
        if (token) o.token = *token;
        pyb::gil_scoped_release nogil;
        return resolve_model(name, o).string();
      },
      "name"_a, "token"_a = std::nullopt,
      "The local directory (or file) of ORG/NAME[@REV]: the Hugging Face cache's snapshot, downloaded if needed.");

  m.def("parse_byte_size", &parse_byte_size);
  m.def("format_bytes", &format_bytes);
  bind_tokenizer(m);
  bind_chat(m);
}
