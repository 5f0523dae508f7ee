// The server's request parser: valid bodies become the fields the engine
// needs, and every malformed body (a corpus, plus random mutations of valid
// ones) becomes an OpenAI-style 400 naming the field, never a crash or any
// other exception.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "server/api_error.h"
#include "server/auth.h"
#include "server/request_parser.h"
#include "server/responses.h"

namespace strata::server {
namespace {

const char* kChat = R"({"model":"m","messages":[{"role":"system","content":"Be brief."},
  {"role":"user","content":[{"type":"text","text":"Hi"},{"type":"text","text":" there"}]}],
  "max_completion_tokens":7,"temperature":0.5,"top_p":0.9,"seed":-3,"stop":["\n\n","END"],
  "stream":true,"stream_options":{"include_usage":true},"logprobs":true,"top_logprobs":3,"n":1,
  "top_k":40,"min_p":0.05,"tools":[{"type":"function","function":{"name":"f"}}],"user":"u"})";

const char* kCompletion = R"({"model":"m","prompt":"Once upon","max_tokens":5,"temperature":0,"stop":"x",
  "logprobs":2,"echo":true})";

TEST(ServerRequest, ChatFieldsArePassedThrough) {
  CompletionRequest r = parse_chat_request(kChat);
  EXPECT_EQ(r.endpoint, Endpoint::chat);
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "Hi there");
  EXPECT_EQ(r.messages[1].raw["content"], "Hi there");
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.9f);
  EXPECT_EQ(r.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.05f);
  EXPECT_TRUE(r.seed_given);
  EXPECT_EQ(r.sampling.seed, uint64_t(int64_t(-3)));
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 3u);
  EXPECT_EQ(r.tools.size(), 1u);

  Request q = to_engine_request(r, {1, 2, 3}, {9}, 100);
  EXPECT_EQ(q.prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(q.max_new_tokens, 7);
  EXPECT_EQ(q.stop_ids, (std::vector<int32_t>{9}));
  EXPECT_EQ(q.stop_strings, r.stop);
  EXPECT_TRUE(q.logprobs);
  EXPECT_EQ(q.top_logprobs, 3u);
  EXPECT_EQ(q.sampling.seed, r.sampling.seed);
}

TEST(ServerRequest, DefaultsFollowOpenAI) {
  CompletionRequest c = parse_chat_request(R"({"messages":[{"role":"user","content":"x"}]})");
  EXPECT_FLOAT_EQ(c.sampling.temperature, 1.0f);  // OpenAI's default, not greedy
  EXPECT_FALSE(c.stream);
  EXPECT_FALSE(c.max_tokens);
  // Chat: the rest of the context; completions: 16.
  EXPECT_EQ(to_engine_request(c, {1, 2}, {}, 50).max_new_tokens, 48);
  CompletionRequest p = parse_completion_request(R"({"prompt":[1,2,3]})");
  EXPECT_EQ(p.prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(to_engine_request(p, p.prompt_ids, {}, 50).max_new_tokens, 16);
  // Without a seed, two sampled requests get different seeds.
  EXPECT_NE(to_engine_request(p, {1}, {}, 50).sampling.seed, to_engine_request(p, {1}, {}, 50).sampling.seed);
  // max_tokens agrees with max_completion_tokens, or is refused.
  EXPECT_EQ(parse_chat_request(R"({"messages":[{"role":"user","content":"x"}],"max_tokens":4})").max_tokens, 4);
  EXPECT_THROW(parse_chat_request(R"({"messages":[{"role":"user","content":"x"}],"max_tokens":4,
    "max_completion_tokens":5})"), ApiError);
}

TEST(ServerRequest, CompletionPromptShapes) {
  CompletionRequest r = parse_completion_request(kCompletion);
  EXPECT_EQ(r.prompt_text, "Once upon");
  EXPECT_TRUE(r.echo);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 2u);
  EXPECT_EQ(r.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(parse_completion_request(R"({"prompt":["a b"]})").prompt_text, "a b");
  EXPECT_EQ(parse_completion_request(R"({"prompt":[[5,6]]})").prompt_ids, (std::vector<int32_t>{5, 6}));
}

TEST(ServerRequest, PromptsOverTheContextAreRefused) {
  CompletionRequest r = parse_completion_request(R"({"prompt":[1,2,3],"max_tokens":8})");
  EXPECT_NO_THROW(to_engine_request(r, {1, 2, 3}, {}, 11));
  try {
    to_engine_request(r, {1, 2, 3}, {}, 10);
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.code(), "context_length_exceeded");
    EXPECT_EQ(e.param(), "max_tokens");
  }
  CompletionRequest c = parse_chat_request(R"({"messages":[{"role":"user","content":"x"}]})");
  EXPECT_THROW(to_engine_request(c, std::vector<int32_t>(10, 1), {}, 10), ApiError);
  EXPECT_THROW(to_engine_request(c, {}, {}, 10), ApiError);
}

struct Bad {
  bool chat;
  const char* body;
  const char* param;  // expected "param" ("" = null)
};

// One entry per rule; each must be a 400 naming `param`.
const std::vector<Bad>& corpus() {
  static const std::vector<Bad> c = {
      {true, "", ""},
      {true, "{", ""},
      {true, "[]", ""},
      {true, "null", ""},
      {true, "\"x\"", ""},
      {true, "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}", ""},  // invalid UTF-8
      {true, "{\"messages\":[]} trailing", ""},
      {true, "{}", "messages"},
      {true, R"({"messages":{}})", "messages"},
      {true, R"({"messages":[]})", "messages"},
      {true, R"({"messages":[1]})", "messages[0]"},
      {true, R"({"messages":[{"content":"x"}]})", "messages[0].role"},
      {true, R"({"messages":[{"role":"wizard","content":"x"}]})", "messages[0].role"},
      {true, R"({"messages":[{"role":7,"content":"x"}]})", "messages[0].role"},
      {true, R"({"messages":[{"role":"user"}]})", "messages[0].content"},
      {true, R"({"messages":[{"role":"user","content":5}]})", "messages[0].content"},
      {true, R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})", "messages[0].content"},
      {true, R"({"messages":[{"role":"user","content":[{"type":"text"}]}]})", "messages[0].content"},
      {true, R"({"messages":[{"role":"user","content":[7]}]})", "messages[0].content"},
      {true, R"({"messages":[{"role":"user","content":"x","name":3}]})", "messages[0].name"},
      {true, R"({"messages":[{"role":"assistant","content":null,"tool_calls":{}}]})", "messages[0].tool_calls"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"model":3})", "model"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})", "temperature"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"temperature":2.5})", "temperature"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"temperature":-1})", "temperature"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"top_p":1.5})", "top_p"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"top_k":-1})", "top_k"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"top_k":1.5})", "top_k"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"min_p":2})", "min_p"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"seed":"s"})", "seed"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"seed":1.5})", "seed"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"seed":18446744073709551615})", "seed"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"max_tokens":-1})", "max_tokens"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"max_tokens":1e3})", "max_tokens"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"max_tokens":99999999999})", "max_tokens"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"max_completion_tokens":"5"})", "max_completion_tokens"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"stop":5})", "stop"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"stop":[""]})", "stop"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"stop":["a",1]})", "stop"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]})", "stop"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"stream":"yes"})", "stream"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}})",
       "stream_options"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":[]})", "stream_options"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"x":1}})", "x"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":1}})",
       "include_usage"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"logprobs":1})", "logprobs"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})", "top_logprobs"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":21})", "top_logprobs"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"n":2})", "n"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"n":0})", "n"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"tools":{}})", "tools"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"tools":[1]})", "tools[0]"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"tool_choice":"required"})", "tool_choice"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"frequency_penalty":0.5})", "frequency_penalty"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"presence_penalty":3})", "presence_penalty"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"logit_bias":{"5":1}})", "logit_bias"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"logit_bias":[]})", "logit_bias"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}})",
       "response_format"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"user":1})", "user"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"functions":[]})", "functions"},
      {true, R"({"messages":[{"role":"user","content":"x"}],"best_of":1})", "best_of"},
      {false, "{}", "prompt"},
      {false, R"({"prompt":5})", "prompt"},
      {false, R"({"prompt":[]})", "prompt"},
      {false, R"({"prompt":[[]]})", "prompt"},
      {false, R"({"prompt":[""]})", "prompt"},
      {false, R"({"prompt":["a","b"]})", "prompt"},
      {false, R"({"prompt":[1,-2]})", "prompt"},
      {false, R"({"prompt":[1,2.5]})", "prompt"},
      {false, R"({"prompt":[1,"a"]})", "prompt"},
      {false, R"({"prompt":[4294967296]})", "prompt"},
      {false, R"({"prompt":[{}]})", "prompt"},
      {false, R"({"prompt":"x","logprobs":6})", "logprobs"},
      {false, R"({"prompt":"x","logprobs":true})", "logprobs"},
      {false, R"({"prompt":"x","echo":1})", "echo"},
      {false, R"({"prompt":"x","suffix":"y"})", "suffix"},
      {false, R"({"prompt":"x","best_of":2})", "best_of"},
      {false, R"({"prompt":"x","messages":[]})", "messages"},
      {false, R"({"prompt":"x","max_completion_tokens":3})", "max_completion_tokens"},
  };
  return c;
}

TEST(ServerRequest, SpeculativeFieldsWithinWhatTheServerPlanned) {
  auto chat = [](const std::string& extra) {
    return parse_chat_request(R"({"messages":[{"role":"user","content":"x"}])" + extra + "}");
  };
  CompletionRequest r = chat(R"(,"prompt_lookup":3,"draft_tokens":2)");
  EXPECT_EQ(r.prompt_lookup, 3u);
  EXPECT_EQ(r.draft_tokens, 2u);
  Request q;
  set_speculative(r, 4, 0, q);
  EXPECT_EQ(q.lookup_ngram, 3u);
  EXPECT_EQ(q.draft_tokens, 2u);
  // Absent: the server's defaults.
  set_speculative(chat(""), 4, 2, q);
  EXPECT_EQ(q.lookup_ngram, 2u);
  EXPECT_EQ(q.draft_tokens, 4u);
  set_speculative(chat(""), 0, 0, q);
  EXPECT_EQ(q.draft_tokens, 0u);
  // A request can turn drafting off, not ask for more than was planned.
  set_speculative(chat(R"(,"draft_tokens":0)"), 4, 3, q);
  EXPECT_EQ(q.draft_tokens, 0u);
  auto refused = [&](const CompletionRequest& c, size_t planned, const char* param) {
    try {
      Request q2;
      set_speculative(c, planned, 0, q2);
      ADD_FAILURE() << "accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400);
      EXPECT_EQ(e.param(), param);
    }
  };
  refused(chat(R"(,"draft_tokens":5)"), 4, "draft_tokens");
  refused(chat(R"(,"prompt_lookup":3)"), 0, "prompt_lookup");
  for (const char* bad : {R"(,"prompt_lookup":17)", R"(,"prompt_lookup":-1)", R"(,"draft_tokens":"4")",
                          R"(,"draft_tokens":33)"})
    EXPECT_THROW(chat(bad), ApiError) << bad;
  EXPECT_EQ(parse_completion_request(R"({"prompt":"x","prompt_lookup":2})").prompt_lookup, 2u);
}

TEST(ServerRequest, MalformedCorpusGivesA400NamingTheField) {
  for (const Bad& b : corpus()) {
    SCOPED_TRACE(b.body);
    try {
      if (b.chat) parse_chat_request(b.body);
      else parse_completion_request(b.body);
      ADD_FAILURE() << "accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400);
      EXPECT_EQ(e.param(), b.param);
      EXPECT_EQ(e.type(), "invalid_request_error");
      nlohmann::json j = e.to_json();
      EXPECT_TRUE(j["error"]["message"].is_string());
      EXPECT_EQ(j["error"]["param"].is_null(), std::string(b.param).empty());
    }
  }
}

TEST(ServerRequest, DeepNestingIsRefusedBeforeParsing) {
  std::string deep = "{\"messages\":" + std::string(200000, '[') + std::string(200000, ']') + "}";
  EXPECT_THROW(parse_chat_request(deep), ApiError);
  // Brackets inside strings are text, not nesting.
  std::string text(1000, '[');
  CompletionRequest r = parse_completion_request("{\"prompt\":\"" + text + "\"}");
  EXPECT_EQ(r.prompt_text, text);
}

// Random byte flips, insertions and truncations of valid bodies: each parses
// or throws ApiError 400, nothing else.
TEST(ServerRequest, MutatedBodiesNeverEscapeAsOtherErrors) {
  std::mt19937 rng(1234);
  const std::string alphabet = "{}[]\":,0123456789.-eEtrufalsn \\\xff\x80" "abc";
  size_t parsed = 0, refused = 0;
  for (int i = 0; i < 4000; ++i) {
    bool chat = i % 2 == 0;
    std::string body = chat ? kChat : kCompletion;
    int edits = 1 + int(rng() % 4);
    for (int k = 0; k < edits && !body.empty(); ++k) {
      size_t at = rng() % body.size();
      switch (rng() % 4) {
        case 0: body[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: body.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
        case 2: body.erase(at, 1 + rng() % 8); break;
        default: body.resize(at); break;
      }
    }
    try {
      CompletionRequest r = chat ? parse_chat_request(body) : parse_completion_request(body);
      try {
        to_engine_request(r, {1, 2}, {}, 64);
      } catch (const ApiError& e) {
        EXPECT_EQ(e.status(), 400);
      }
      ++parsed;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400) << body;
      ++refused;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "escaped: " << e.what() << " for " << body;
    }
  }
  EXPECT_GT(parsed, 50u);
  EXPECT_GT(refused, 1000u);
}

TEST(ServerAuth, KeysCompareExactly) {
  EXPECT_TRUE(keys_equal("secret", "secret"));
  EXPECT_FALSE(keys_equal("secreT", "secret"));
  EXPECT_FALSE(keys_equal("secret2", "secret"));
  EXPECT_FALSE(keys_equal("", "secret"));
  EXPECT_FALSE(keys_equal("s", ""));
  EXPECT_NO_THROW(check_authorization("", ""));
  EXPECT_NO_THROW(check_authorization("Bearer secret", "secret"));
  for (const char* h : {"", "secret", "Bearer", "Bearer ", "Bearer wrong", "bearer secret", "Basic secret"}) {
    try {
      check_authorization(h, "secret");
      ADD_FAILURE() << h;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 401);
      EXPECT_EQ(e.code(), "invalid_api_key");
    }
  }
}

TEST(ServerResponses, ObjectsHaveOpenAIFields) {
  RequestResult r;
  r.text = "Hi";
  r.output_ids = {5, 6};
  r.prompt_tokens = 3;
  r.finish_reason = "stop";
  TokenEvent a;
  a.id = 5;
  a.text = "H";
  a.logprob = -0.5f;
  a.top = {{5, -0.5f}, {7, -1.5f}};
  TokenEvent b = a;
  b.id = 6;
  b.text = "i";
  r.tokens = {a, b};
  ResponseMeta m{new_response_id("chatcmpl"), 1700000000, "m"};
  TokenText text = [](int32_t id) {
    std::string s = std::to_string(id);
    return s.insert(0, 1, 't');
  };
  json c = chat_completion_json(m, r, true, text);
  EXPECT_EQ(c["object"], "chat.completion");
  EXPECT_EQ(c["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(c["choices"][0]["message"]["content"], "Hi");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(c["usage"], json({{"prompt_tokens", 3}, {"completion_tokens", 2}, {"total_tokens", 5}}));
  json lp = c["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(lp.size(), 2u);
  EXPECT_EQ(lp[0]["token"], "t5");
  EXPECT_EQ(lp[0]["bytes"], json({'t', '5'}));
  EXPECT_EQ(lp[0]["top_logprobs"][1]["token"], "t7");
  EXPECT_FLOAT_EQ(lp[0]["top_logprobs"][1]["logprob"].get<float>(), -1.5f);

  json t = text_completion_json(m, r, "Say: ", true, text);
  EXPECT_EQ(t["object"], "text_completion");
  EXPECT_EQ(t["choices"][0]["text"], "Say: Hi");
  EXPECT_EQ(t["choices"][0]["logprobs"]["text_offset"], json({5, 6}));
  EXPECT_EQ(t["choices"][0]["logprobs"]["tokens"], json({"t5", "t6"}));
  EXPECT_EQ(t["choices"][0]["logprobs"]["top_logprobs"][0].size(), 2u);

  r.finish_reason = "length";
  EXPECT_EQ(finish_reason(r), "length");
  json u = usage_chunk_json(m, "chat.completion.chunk", usage_json(3, 2));
  EXPECT_TRUE(u["choices"].empty());
  EXPECT_EQ(u["usage"]["total_tokens"], 5);
  EXPECT_NE(new_response_id("x"), new_response_id("x"));
  // Invalid UTF-8 from a model never breaks the JSON.
  EXPECT_EQ(dump(json("a\xff")), "\"a\xEF\xBF\xBD\"");
}

}  // namespace
}  // namespace strata::server
