// Each subcommand of `strata` lives in its own cmd_<name>.cpp and exposes a
// register function that adds it to the app and returns the function that
// runs it once CLI11 has parsed the arguments (returning the exit status).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace strata::cli {

using Runner = std::function<int()>;

Runner register_run(CLI::App& app);
Runner register_score(CLI::App& app);
Runner register_info(CLI::App& app);
Runner register_synth(CLI::App& app);
Runner register_convert(CLI::App& app);
Runner register_bench(CLI::App& app);
Runner register_batch(CLI::App& app);
Runner register_tokenize(CLI::App& app);
Runner register_detokenize(CLI::App& app);
Runner register_pull(CLI::App& app);
Runner register_chat_template(CLI::App& app);

}  // namespace strata::cli
