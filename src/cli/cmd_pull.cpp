// `strata pull ORG/NAME[@REV]`: downloads a model into the Hugging Face hub
// cache and prints the path to open (the snapshot directory, or the one GGUF
// file). Progress goes to stderr when it is a terminal.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "strata/hub.h"
#include "strata/strata.h"

namespace strata::cli {

Runner register_pull(CLI::App& app) {
  struct Opts {
    std::string name, token, format = "text";
    HubOptions hub;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "pull", "Download a model from the Hugging Face hub into its cache (resumable, verified); prints its path");
  cmd->add_option("NAME", o->name, "ORG/NAME or ORG/NAME@REVISION (branch, tag or commit; default main)")->required();
  cmd->add_option("--include", o->hub.include,
                  "Only files matching this glob (repeatable; default: config, tokenizer and chat-template files, "
                  "*.safetensors and their index)")
      ->allow_extra_args(false);  // one pattern per --include, so NAME after it stays NAME
  cmd->add_option("--file", o->hub.file, "Only this file, e.g. one GGUF of a repository of many");
  cmd->add_option("--token", o->token, "Hub access token (default: HF_TOKEN, else the token file of `huggingface-cli login`)");
  cmd->add_option("--parallel", o->hub.parallel, "Files downloaded at the same time (default 4)")->check(CLI::Range(1, 64));
  cmd->add_option("--format", o->format, "Output format")->check(CLI::IsMember({"text", "json"}));
  cmd->get_option("--include")->excludes("--file");
  return [o]() {
    o->hub.token = o->token;
    PullResult r = pull(o->name, o->hub);
    if (o->format == "json") {
      nlohmann::json j = {{"repo", r.repo},
                          {"revision", r.revision},
                          {"commit", r.commit},
                          {"snapshot", r.snapshot.string()},
                          {"model", r.model.string()},
                          {"files", r.files},
                          {"downloaded_bytes", r.downloaded_bytes},
                          {"reused_bytes", r.reused_bytes}};
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      std::fprintf(stderr, "%s@%s: commit %s, %zu files (%s downloaded, %s already in the cache)\n", r.repo.c_str(),
                   r.revision.c_str(), r.commit.c_str(), r.files.size(), format_bytes(r.downloaded_bytes).c_str(),
                   format_bytes(r.reused_bytes).c_str());
      std::printf("%s\n", r.model.string().c_str());
    }
    return 0;
  };
}

}  // namespace strata::cli
