// The `strata` command: parses arguments with CLI11 and turns every error
// into a message and an exit status (2 for usage, 1 for everything else).
#include <cstdio>
#include <exception>

#include "commands.h"
#include "common.h"
#include "strata/error.h"

int main(int argc, char** argv) {
  CLI::App app{"strata: run language models larger than memory by streaming layers from disk"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "strata 0.1.0");
  std::vector<std::pair<CLI::App*, strata::cli::Runner>> commands;
  auto add = [&](strata::cli::Runner r) { commands.emplace_back(app.get_subcommands([](CLI::App*) { return true; }).back(), std::move(r)); };
  add(strata::cli::register_run(app));
  add(strata::cli::register_score(app));
  add(strata::cli::register_info(app));
  add(strata::cli::register_synth(app));
  add(strata::cli::register_convert(app));
  add(strata::cli::register_bench(app));
  add(strata::cli::register_batch(app));
  add(strata::cli::register_tokenize(app));
  add(strata::cli::register_detokenize(app));
  add(strata::cli::register_pull(app));
  add(strata::cli::register_serve(app));
  add(strata::cli::register_chat_template(app));
  add(strata::cli::register_chat(app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    std::fprintf(stderr, "Run 'strata --help' or 'strata COMMAND --help' for usage.\n");
    return 2;
  }
  try {
    for (auto& [cmd, run] : commands)
      if (cmd->parsed()) return run();
  } catch (const strata::UsageError& e) {
    std::fprintf(stderr, "strata: error: %s\n", strata::cli::cli_message(e.what()).c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strata: error: %s\n", strata::cli::cli_message(e.what()).c_str());
    return 1;
  }
  return 2;
}
