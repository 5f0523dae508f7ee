// Safetensors reading (a real file, and a generated corpus of corrupted
// files that must each parse to something safe or throw Error), writing, and
// sharded model directories.
#include "formats/safetensors.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "formats/safetensors_writer.h"
#include "test_util.h"

namespace strata {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes read_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(f)), {});
}

void write_bytes(const std::filesystem::path& p, const Bytes& b) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// A safetensors file from a header text and a data area of `data_size` bytes.
Bytes make_file(const std::string& json, size_t data_size) {
  Bytes b(8 + json.size() + data_size, 0xAB);
  for (int i = 0; i < 8; ++i) b[size_t(i)] = uint8_t(uint64_t(json.size()) >> (8 * i));
  if (!json.empty()) std::memcpy(b.data() + 8, json.data(), json.size());
  return b;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Either a safe header (every tensor inside the file, sizes consistent, no
// overlap) or an Error naming the file. Anything else fails the test. The
// bytes are copied to an allocation of exactly their size so the sanitizer
// build catches any read past the end.
struct Verdict {
  int ok = 0, errors = 0;
};

void check_variant(const Bytes& b, const std::string& what, Verdict* v) {
  std::unique_ptr<uint8_t[]> exact(new uint8_t[std::max<size_t>(b.size(), 1)]);
  if (!b.empty()) std::memcpy(exact.get(), b.data(), b.size());
  const std::string name = "corrupt.safetensors";
  try {
    SafetensorsHeader h = parse_safetensors_header(exact.get(), b.size(), b.size(), name);
    ++v->ok;
    ASSERT_GE(h.data_start, 8u) << what;
    ASSERT_LE(h.data_start, b.size()) << what;
    uint64_t prev_end = 0;
    for (const TensorInfo& t : h.tensors) {
      ASSERT_GE(t.offset, h.data_start) << what << " " << t.name;
      ASSERT_LE(t.nbytes, b.size() - t.offset) << what << " " << t.name;
      ASSERT_EQ(t.nbytes, t.numel() * dtype_size(t.dtype)) << what << " " << t.name;
      if (t.nbytes > 0) {
        ASSERT_GE(t.offset, prev_end) << what << " overlap at " << t.name;
        prev_end = t.offset + t.nbytes;
      }
    }
  } catch (const Error& e) {
    ++v->errors;
    ASSERT_EQ(std::string(e.what()).rfind(name + ": ", 0), 0u) << what << ": " << e.what();
  } catch (const std::exception& e) {
    FAIL() << what << ": exception that is not strata::Error: " << e.what();
  }
}

// A small valid file: several dtypes, an empty tensor, a scalar, metadata,
// written by the writer itself with a tight layout.
Bytes small_valid_file(const test::TempDir& tmp) {
  SafetensorsWriter::Options o;
  o.data_alignment = 8;
  o.tensor_alignment = 1;
  o.sync = false;
  SafetensorsWriter w(o);
  static const Bytes data(4096, 0x5A);
  w.add_bytes("a.weight", DType::F32, {3, 5}, data.data());
  w.add_bytes("b.bias", DType::F16, {7}, data.data());
  w.add_bytes("c", DType::BF16, {2, 3, 2}, data.data());
  w.add_bytes("empty", DType::F32, {0, 4}, data.data());
  w.add_bytes("scalar", DType::F32, {}, data.data());
  w.set_metadata("format", "pt");
  w.write(tmp / "small.safetensors");
  return read_bytes(tmp / "small.safetensors");
}

uint64_t header_len(const Bytes& b) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(b[size_t(i)]) << (8 * i);
  return n;
}

Bytes with_header_len(Bytes b, uint64_t n) {
  for (int i = 0; i < 8; ++i) b[size_t(i)] = uint8_t(n >> (8 * i));
  return b;
}

// ---------------------------------------------------------------------------

TEST(SafetensorsRead, Stories260K) {
  const auto path = test::stories_dir() / "model.safetensors";
  SafetensorsHeader h = read_safetensors_header(path);
  EXPECT_EQ(h.tensors.size(), 47u);
  EXPECT_EQ(h.metadata.at("format"), "pt");
  const uint64_t size = std::filesystem::file_size(path);
  uint64_t prev_end = h.data_start;
  for (const TensorInfo& t : h.tensors) {
    EXPECT_EQ(t.dtype, DType::F32) << t.name;
    EXPECT_EQ(t.file, 0);
    EXPECT_EQ(t.nbytes, t.numel() * 4) << t.name;
    EXPECT_EQ(t.offset, prev_end) << t.name << ": tensors are contiguous, sorted by offset";
    prev_end = t.offset + t.nbytes;
  }
  EXPECT_EQ(prev_end, size);

  TensorIndex index = load_tensor_index(test::stories_dir());
  ASSERT_EQ(index.files.size(), 1u);
  ASSERT_EQ(index.tensors.size(), 47u);
  const TensorInfo* e = index.find("model.embed_tokens.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(e->offset, h.data_start);
  EXPECT_EQ(e->nbytes, 512u * 64 * 4);
  EXPECT_EQ(index.find("no.such.tensor"), nullptr);
}

TEST(SafetensorsRead, FileErrorsNameThePath) {
  test::TempDir tmp;
  std::string e = error_of([&] { read_safetensors_header(tmp / "missing.safetensors"); });
  EXPECT_NE(e.find((tmp / "missing.safetensors").string() + ": cannot open"), std::string::npos) << e;
  e = error_of([&] { read_safetensors_header(tmp.path()); });
  EXPECT_NE(e.find("not a regular file"), std::string::npos) << e;

  write_bytes(tmp / "short.safetensors", Bytes{1, 2, 3});
  e = error_of([&] { read_safetensors_header(tmp / "short.safetensors"); });
  EXPECT_NE(e.find("short.safetensors: file is 3 bytes"), std::string::npos) << e;

  // Only the header is read: a huge length field fails without reading on.
  Bytes b = make_file("{}", 0);
  write_bytes(tmp / "huge.safetensors", with_header_len(b, uint64_t(1) << 40));
  e = error_of([&] { read_safetensors_header(tmp / "huge.safetensors"); });
  EXPECT_NE(e.find("header length 1099511627776 is larger than the limit"), std::string::npos) << e;
}

// Each hand-written invalid header, with the words its error must contain.
struct BadCase {
  std::string json;
  size_t data_size;
  std::string expect;
};

const std::vector<BadCase>& bad_cases() {
  static const std::vector<BadCase> cases = {
      {"", 16, "header length is 0"},
      {"[1,2]", 16, "expected a JSON object"},
      {"\"x\"", 16, "expected a JSON object"},
      {"{", 16, "header is not valid JSON"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 16, "not valid JSON"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}", 16, "not valid JSON"},
      {"{\"a\":3}", 16, "tensor 'a': entry is number 3, expected an object"},
      {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 16, "tensor 'a': missing field 'dtype'"},
      {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 16, "tensor 'a': missing field 'shape'"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 16, "tensor 'a': missing field 'data_offsets'"},
      {"{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 16, "dtype is number 7, expected a string"},
      {"{\"a\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 16,
       "tensor 'a': dtype 'I8' is not supported (supported: F32, F16, BF16)"},
      {"{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 16, "dtype 'F64' is not supported"},
      {"{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 16, "dtype 'f32' is not supported"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":5,\"data_offsets\":[0,4]}}", 16, "shape is number 5, expected an array"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", 16, "shape[1] -1 is negative"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 16,
       "shape[0] is number 1.5, expected a non-negative integer"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,4]}}", 16, "shape[0] is string \"2\""},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[18446744073709551615],\"data_offsets\":[0,4]}}", 16,
       "shape[0] 18446744073709551615 is too large"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", 16,
       "expected a non-negative integer"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 16,
       "shape [4294967296, 4294967296] of F32 needs more than 2^64 bytes"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2305843009213693952,4],\"data_offsets\":[0,4]}}", 16,
       "needs more than 2^64 bytes"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 16, "data_offsets is array [0], expected [begin, end]"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 16, "expected [begin, end]"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"0\":4}}}", 16, "expected [begin, end]"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 16, "data_offsets begin -4 is negative"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", 16, "data_offsets end is number 4.0"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 16, "data_offsets [8, 4] has begin after end"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]}}", 16,
       "data_offsets [16, 20] ends beyond the data area, which holds 16 bytes"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551615]}}", 16,
       "data_offsets end 18446744073709551615 is too large"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16,
       "tensor 'a': data_offsets [0, 8] hold 8 bytes, but shape [3] of F32 needs 12 bytes"},
      {"{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16,
       "hold 16 bytes, but shape [2, 2] of BF16 needs 8 bytes"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
       16, "tensors 'a' [0, 8] and 'b' [4, 12] overlap"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
       16, "tensors 'a' [0, 16] and 'b' [4, 8] overlap"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
       16, "tensor 'a' appears more than once in the header"},
      {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", 16,
       "key 'dtype' appears more than once"},
      {"{\"__metadata__\":[1]}", 16, "__metadata__ is array [1], expected an object of strings"},
      {"{\"__metadata__\":{\"format\":1}}", 16, "__metadata__ 'format' is number 1, expected a string"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[[[[[[[[[[1]]]]]]]]]],\"data_offsets\":[0,4]}}", 16,
       "nests deeper than"},
      {"{\"bad\\u0001name\":1}", 16, "tensor 'bad\\x01name': entry is number 1"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}\xff", 16, "not valid JSON"},
      {"{\"\xc3\x28\":1}", 16, "not valid JSON"},  // invalid UTF-8 in a name
  };
  return cases;
}

TEST(SafetensorsCorrupt, HandWrittenCasesGiveSpecificErrors) {
  for (const BadCase& c : bad_cases()) {
    Bytes b = make_file(c.json, c.data_size);
    std::string e = error_of([&] { parse_safetensors_header(b.data(), b.size(), b.size(), "bad.safetensors"); });
    EXPECT_EQ(e.rfind("bad.safetensors: ", 0), 0u) << c.json << " -> " << e;
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.json << "\n  expected: " << c.expect << "\n  got: " << e;
  }
}

TEST(SafetensorsCorrupt, HeaderOfManyTinyItemsIsRefused) {
  // ~10 MB of JSON that would expand to hundreds of MB of DOM.
  std::string json = "{\"a\":[";
  for (int i = 0; i < 5'000'000; ++i) json += "0,";
  json += "0]}";
  Bytes b = make_file(json, 0);
  std::string e = error_of([&] { parse_safetensors_header(b.data(), b.size(), b.size(), "big.safetensors"); });
  EXPECT_NE(e.find("big.safetensors: header has more than 4000000 JSON items"), std::string::npos) << e;
}

TEST(SafetensorsCorrupt, AcceptedEdgeCases) {
  // Gaps between tensors, trailing bytes, empty tensors anywhere, padding
  // spaces after the JSON, scalars, no tensors at all.
  const std::vector<std::pair<std::string, size_t>> good = {
      {"{}", 0},
      {"{}   ", 5},
      {"{\"__metadata__\":{}}", 0},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 20},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
       "\"e\":{\"dtype\":\"F16\",\"shape\":[0,5],\"data_offsets\":[4,4]}}",
       16},
      {"{\"e\":{\"dtype\":\"F32\",\"shape\":[0,4294967296,4294967296],\"data_offsets\":[0,0]}}", 0},
  };
  for (const auto& [json, data] : good) {
    Bytes b = make_file(json, data);
    EXPECT_NO_THROW(parse_safetensors_header(b.data(), b.size(), b.size(), "ok.safetensors")) << json;
  }
}

// The generated corpus: truncations, length fields, byte flips, the
// hand-written cases, all through the same safety check.
TEST(SafetensorsCorrupt, GeneratedCorpusNeverCrashes) {
  test::TempDir tmp;
  const Bytes valid = small_valid_file(tmp);
  const uint64_t n = header_len(valid);
  ASSERT_LT(8 + n, valid.size());
  Verdict v;
  int variants = 0;
  auto run = [&](const Bytes& b, const std::string& what) {
    ++variants;
    check_variant(b, what, &v);
  };

  run(valid, "valid");
  ASSERT_EQ(v.ok, 1) << "the base file must parse";

  // Every truncation of the length field and header, a sample of the data.
  for (size_t len = 0; len < 8 + n; ++len) run(Bytes(valid.begin(), valid.begin() + long(len)), "truncated to " + std::to_string(len));
  for (size_t len = 8 + n; len < valid.size(); len += std::max<size_t>(1, (valid.size() - 8 - n) / 40))
    run(Bytes(valid.begin(), valid.begin() + long(len)), "truncated to " + std::to_string(len));

  // Length field: zero, off by one either way, to the end of the file and
  // past it, around the 100 MB limit, and huge values.
  for (uint64_t len : {uint64_t(0), uint64_t(1), n - 1, n + 1, n + 7, uint64_t(valid.size() - 8),
                       uint64_t(valid.size() - 7), uint64_t(valid.size()), kSafetensorsMaxHeaderBytes,
                       kSafetensorsMaxHeaderBytes + 1, uint64_t(1) << 32, uint64_t(1) << 63, ~uint64_t(0),
                       ~uint64_t(0) - 7})
    run(with_header_len(valid, len), "header length " + std::to_string(len));

  // Seeded random byte changes in the JSON: random bytes, and characters
  // that keep it JSON-like so the parse reaches the validation.
  std::mt19937 rng(20240611);
  const std::string interesting = "0123456789-+.eE[]{}\":, \\ufFIB";
  for (int i = 0; i < 4000; ++i) {
    Bytes b = valid;
    int flips = 1 + int(rng() % 3);
    std::string what = "flip";
    for (int f = 0; f < flips; ++f) {
      size_t pos = 8 + rng() % n;
      uint8_t val = (rng() % 2) ? uint8_t(rng()) : uint8_t(interesting[rng() % interesting.size()]);
      b[pos] = val;
      what += " [" + std::to_string(pos) + "]=" + std::to_string(val);
    }
    run(b, what);
  }

  // Digits of numbers replaced by huge or negative ones, one number at a time.
  const std::string text(valid.begin() + 8, valid.begin() + 8 + long(n));
  for (size_t pos = 0; pos < text.size(); ++pos) {
    if (!isdigit(static_cast<unsigned char>(text[pos])) || (pos > 0 && isdigit(static_cast<unsigned char>(text[pos - 1]))))
      continue;
    size_t end = pos;
    while (end < text.size() && isdigit(static_cast<unsigned char>(text[end]))) ++end;
    for (const char* repl : {"18446744073709551615", "9223372036854775808", "-1", "1e3", "0", "4611686018427387904"}) {
      std::string t = text.substr(0, pos) + repl + text.substr(end);
      run(make_file(t, valid.size() - 8 - n), "number at " + std::to_string(pos) + " -> " + std::string(repl));
    }
  }

  // The hand-written cases, also against a data area too small and through
  // the file reader.
  for (const BadCase& c : bad_cases()) {
    run(make_file(c.json, c.data_size), c.json);
    run(make_file(c.json, 0), c.json + " (no data)");
  }
  int on_disk = 0;
  for (size_t len = 0; len < valid.size(); len += 17) {
    write_bytes(tmp / "t.safetensors", Bytes(valid.begin(), valid.begin() + long(len)));
    try {
      read_safetensors_header(tmp / "t.safetensors");
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind((tmp / "t.safetensors").string() + ": ", 0), 0u) << e.what();
    }
    ++on_disk;
  }

  std::printf("[ corpus   ] %d variants in memory (%d parsed safely, %d rejected), %d on disk\n", variants, v.ok,
              v.errors, on_disk);
  EXPECT_EQ(v.ok + v.errors, variants);
  EXPECT_GT(v.errors, variants / 2);
}

// ---------------------------------------------------------------------------

Bytes pattern(size_t n, uint32_t seed) {
  Bytes b(n);
  std::mt19937 rng(seed);
  for (auto& x : b) x = uint8_t(rng());
  return b;
}

TEST(SafetensorsWriter, RoundTrip) {
  test::TempDir tmp;
  struct T {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    Bytes data;
  };
  std::vector<T> ts = {
      {"model.layers.0.weight", DType::F32, {3, 5}, {}},  // 60 bytes: the next tensor needs padding
      {"model.layers.0.bias", DType::F16, {7}, {}},
      {"model.norm", DType::BF16, {2, 3, 4}, {}},
      {"empty", DType::F32, {0, 4}, {}},
      {"scalar", DType::F32, {}, {}},
      {"big", DType::F32, {1000, 3}, {}},
  };
  uint32_t seed = 1;
  for (T& t : ts) {
    uint64_t n = dtype_size(t.dtype);
    for (int64_t d : t.shape) n *= uint64_t(d);
    t.data = pattern(n, seed++);
  }

  SafetensorsWriter::Options o;
  o.chunk_bytes = 100;  // many chunks per tensor, and chunks that straddle tensors
  o.sync = false;
  o.tensor_alignment = 64;  // gaps between tensors, which the reader must accept
  SafetensorsWriter w(o);
  std::vector<std::vector<std::pair<uint64_t, size_t>>> calls(ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    const Bytes* src = &ts[i].data;
    auto* log = &calls[i];
    w.add(ts[i].name, ts[i].dtype, ts[i].shape, [src, log](uint64_t off, uint8_t* dst, size_t len) {
      log->emplace_back(off, len);
      std::memcpy(dst, src->data() + off, len);
    });
  }
  w.set_metadata("format", "pt");
  w.set_metadata("note", "written by strata \xe2\x9c\x93");
  const auto path = tmp / "out.safetensors";
  w.write(path);
  EXPECT_FALSE(std::filesystem::exists(tmp / "out.safetensors.tmp"));

  // Fill calls cover each tensor in order, exactly once, at most a chunk each.
  for (size_t i = 0; i < ts.size(); ++i) {
    uint64_t next = 0;
    for (auto [off, len] : calls[i]) {
      EXPECT_EQ(off, next);
      EXPECT_LE(len, 100u);
      EXPECT_GT(len, 0u);
      next += len;
    }
    EXPECT_EQ(next, ts[i].data.size()) << ts[i].name;
  }

  SafetensorsHeader h = read_safetensors_header(path);
  EXPECT_EQ(h.data_start % 4096, 0u);
  EXPECT_EQ(h.metadata.at("format"), "pt");
  EXPECT_EQ(h.metadata.at("note"), "written by strata \xe2\x9c\x93");
  ASSERT_EQ(h.tensors.size(), ts.size());
  const Bytes file = read_bytes(path);
  for (size_t i = 0; i < ts.size(); ++i) {
    const TensorInfo& t = h.tensors[i];  // sorted by offset = order added
    EXPECT_EQ(t.name, ts[i].name);
    EXPECT_EQ(t.dtype, ts[i].dtype);
    EXPECT_EQ(t.shape, ts[i].shape);
    EXPECT_EQ((t.offset - h.data_start) % 64, 0u) << t.name;
    EXPECT_EQ(t.offset % 64, 0u) << t.name;
    ASSERT_EQ(t.nbytes, ts[i].data.size());
    EXPECT_TRUE(std::equal(ts[i].data.begin(), ts[i].data.end(), file.begin() + long(t.offset))) << t.name;
  }
  // Padding is zeros and the file ends with the last tensor.
  EXPECT_EQ(file[h.tensors[0].offset + 60], 0);
  EXPECT_EQ(h.tensors.back().offset + h.tensors.back().nbytes, file.size());
  // The header is JSON padded with spaces.
  EXPECT_EQ(file[h.data_start - 1], ' ');
}

TEST(SafetensorsWriter, TightLayoutIsContiguous) {
  // tensor_alignment = 1 gives the layout Hugging Face's reader requires:
  // tensors back to back from 0 to the end of the file.
  test::TempDir tmp;
  SafetensorsWriter::Options o;
  o.tensor_alignment = 1;
  o.data_alignment = 8;
  o.sync = false;
  SafetensorsWriter w(o);
  Bytes d = pattern(64, 3);
  w.add_bytes("x", DType::F16, {3}, d.data());
  w.add_bytes("y", DType::F32, {5}, d.data());
  w.write(tmp / "t.safetensors");
  SafetensorsHeader h = read_safetensors_header(tmp / "t.safetensors");
  EXPECT_EQ(h.data_start % 8, 0u);
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors[0].offset, h.data_start);
  EXPECT_EQ(h.tensors[1].offset, h.data_start + 6);
  EXPECT_EQ(h.tensors[1].offset + 20, std::filesystem::file_size(tmp / "t.safetensors"));
}

TEST(SafetensorsWriter, RejectsBadTensors) {
  SafetensorsWriter w;
  Bytes d(16);
  w.add_bytes("a", DType::F32, {2}, d.data());
  EXPECT_NE(error_of([&] { w.add_bytes("a", DType::F32, {2}, d.data()); }).find("added twice"), std::string::npos);
  EXPECT_NE(error_of([&] { w.add_bytes("__metadata__", DType::F32, {2}, d.data()); }).find("reserved"),
            std::string::npos);
  EXPECT_NE(error_of([&] { w.add_bytes("n", DType::F32, {2, -3}, d.data()); }).find("negative dimension -3"),
            std::string::npos);
  EXPECT_NE(error_of([&] { w.add_bytes("o", DType::F32, {int64_t(1) << 40, int64_t(1) << 40}, d.data()); })
                .find("overflows"),
            std::string::npos);
  SafetensorsWriter::Options o;
  o.tensor_alignment = 48;
  EXPECT_NE(error_of([&] { SafetensorsWriter bad(o); }).find("powers of two"), std::string::npos);
}

TEST(SafetensorsWriter, FailedWriteLeavesNoFile) {
  test::TempDir tmp;
  const auto path = tmp / "x.safetensors";
  Bytes d = pattern(1 << 16, 5);
  {
    SafetensorsWriter w;
    w.add("a", DType::F32, {1 << 14}, [&](uint64_t off, uint8_t* dst, size_t len) {
      if (off + len > 1000) throw Error("source went away");
      std::memcpy(dst, d.data() + off, len);
    });
    EXPECT_EQ(error_of([&] { w.write(path); }), "source went away");
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_FALSE(std::filesystem::exists(tmp / "x.safetensors.tmp"));
  }
  {
    // A directory that does not exist.
    SafetensorsWriter w;
    w.add_bytes("a", DType::F32, {4}, d.data());
    std::string e = error_of([&] { w.write(tmp / "no" / "dir.safetensors"); });
    EXPECT_NE(e.find((tmp / "no" / "dir.safetensors").string() + ": cannot create"), std::string::npos) << e;
  }
  {
    // Disk full, simulated with a file size limit (EFBIG instead of ENOSPC).
    SafetensorsWriter::Options o;
    o.chunk_bytes = 4096;
    SafetensorsWriter w(o);
    w.add_bytes("a", DType::F32, {1 << 14}, d.data());
    struct rlimit old;
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
    auto old_handler = signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = old;
    lim.rlim_cur = 20000;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
    std::string e = error_of([&] { w.write(path); });
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_handler);
    EXPECT_EQ(e.rfind(path.string() + ": write failed at byte", 0), 0u) << e;
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_FALSE(std::filesystem::exists(tmp / "x.safetensors.tmp"));
  }
}

// ---------------------------------------------------------------------------

TEST(SafetensorsSharded, RoundTrip) {
  test::TempDir tmp;
  std::vector<Bytes> data;
  data.reserve(10);  // the fill functions keep pointers into it
  std::vector<TensorSource> ts;
  for (int i = 0; i < 10; ++i) {
    int64_t rows = (i == 4) ? 300 : 10 + i;  // tensor 4 is larger than a shard
    data.push_back(pattern(size_t(rows) * 16 * 2, uint32_t(100 + i)));
    const Bytes* src = &data.back();
    ts.push_back({"model.layers." + std::to_string(i) + ".weight", i % 2 ? DType::BF16 : DType::F16, {rows, 16},
                  [src](uint64_t off, uint8_t* dst, size_t len) { std::memcpy(dst, src->data() + off, len); }});
  }
  SafetensorsWriter::Options o;
  o.sync = false;
  const auto dir = tmp / "model";
  auto shards = write_sharded(dir, ts, 2000, {{"format", "pt"}}, o);
  ASSERT_GE(shards.size(), 4u);
  EXPECT_EQ(shards[0].filename().string(), "model-00001-of-0000" + std::to_string(shards.size()) + ".safetensors");

  nlohmann::json index = nlohmann::json::parse(test::read_text(dir / "model.safetensors.index.json"));
  uint64_t total = 0;
  for (const Bytes& b : data) total += b.size();
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), total);
  EXPECT_EQ(index["weight_map"].size(), ts.size());

  TensorIndex ti = load_tensor_index(dir);
  ASSERT_EQ(ti.files.size(), shards.size());
  ASSERT_EQ(ti.tensors.size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    const TensorInfo* t = ti.find(ts[i].name);
    ASSERT_NE(t, nullptr) << ts[i].name;
    EXPECT_EQ(t->shape, ts[i].shape);
    EXPECT_EQ(t->dtype, ts[i].dtype);
    EXPECT_EQ(index["weight_map"][ts[i].name].get<std::string>(), ti.files[size_t(t->file)].filename().string());
    const Bytes f = read_bytes(ti.files[size_t(t->file)]);
    ASSERT_LE(t->offset + t->nbytes, f.size());
    EXPECT_TRUE(std::equal(data[i].begin(), data[i].end(), f.begin() + long(t->offset))) << ts[i].name;
  }
  for (const auto& s : shards) {
    SafetensorsHeader h = read_safetensors_header(s);
    EXPECT_EQ(h.metadata.at("format"), "pt");
    uint64_t bytes = 0;
    for (const TensorInfo& t : h.tensors) bytes += t.nbytes;
    EXPECT_TRUE(bytes <= 2000 || h.tensors.size() == 1) << s;
  }
}

// A directory of two shards for the index tests to damage.
struct ShardedFixture {
  test::TempDir tmp;
  std::filesystem::path dir = tmp / "m";
  Bytes d = pattern(4096, 9);
  ShardedFixture() {
    std::vector<TensorSource> ts;
    for (std::string name : {"t0", "t1", "t2", "t3"})
      ts.push_back({name, DType::F32, {64},
                    [this](uint64_t off, uint8_t* dst, size_t len) { std::memcpy(dst, d.data() + off, len); }});
    SafetensorsWriter::Options o;
    o.sync = false;
    write_sharded(dir, ts, 512, {}, o);
  }
  void write_index(const std::string& text) {
    std::ofstream(dir / "model.safetensors.index.json", std::ios::trunc) << text;
  }
  std::string load_error() {
    return error_of([&] { load_tensor_index(dir); });
  }
};

TEST(SafetensorsSharded, IndexErrors) {
  const std::string a = "model-00001-of-00002.safetensors", b = "model-00002-of-00002.safetensors";
  {
    ShardedFixture f;
    EXPECT_EQ(load_tensor_index(f.dir).tensors.size(), 4u);
  }
  struct Case {
    std::string index, expect;
  };
  const std::vector<Case> cases = {
      {"{\"weight_map\":{\"t0\":\"" + a + "\",\"t1\":\"model-00009-of-00009.safetensors\"}}",
       "shard 'model-00009-of-00009.safetensors' (holding tensor 't1') does not exist in"},
      {"{\"weight_map\":{\"t0\":\"../" + a + "\"}}", "names shard '../" + a + "', which is not a plain file name"},
      {"{\"weight_map\":{\"t0\":\"/etc/passwd\"}}", "which is not a plain file name"},
      {"{\"weight_map\":{\"t0\":\"..\"}}", "which is not a plain file name"},
      {"{\"weight_map\":{\"t0\":\"\"}}", "which is not a plain file name"},
      {"{\"weight_map\":{\"t0\":\"" + a + "\",\"t3\":\"" + a + "\",\"t2\":\"" + b + "\"}}",
       "tensor 't3' is listed in shard '" + a + "' but found in '" + b + "'"},
      {"{\"weight_map\":{\"t0\":\"" + a + "\",\"ghost\":\"" + a + "\"}}",
       "tensor 'ghost' is listed in shard '" + a + "' but " + a + " does not hold it"},
      {"{\"weight_map\":{\"t0\":\"" + a + "\",", "index is not valid JSON"},
      {"not json", "index is not valid JSON"},
      {"[]", "index is array [], expected a JSON object"},
      {"{\"metadata\":{}}", "missing \"weight_map\""},
      {"{\"weight_map\":[]}", "weight_map is array [], expected an object"},
      {"{\"weight_map\":{}}", "weight_map lists no tensors"},
      {"{\"weight_map\":{\"t0\":3}}", "weight_map: tensor 't0' maps to number 3, expected a file name"},
      {"{\"weight_map\":{\"t0\":\"" + a + "\",\"t0\":\"" + b + "\"}}", "'t0' appears more than once"},
  };
  for (const Case& c : cases) {
    ShardedFixture f;
    f.write_index(c.index);
    std::string e = f.load_error();
    const std::string index_path = (f.dir / "model.safetensors.index.json").string();
    EXPECT_EQ(e.rfind(index_path + ": ", 0), 0u) << c.index << " -> " << e;
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.index << "\n  expected: " << c.expect << "\n  got: " << e;
  }
  {
    // The same tensor in two shards.
    ShardedFixture f;
    SafetensorsWriter::Options o;
    o.sync = false;
    SafetensorsWriter w(o);
    w.add_bytes("t0", DType::F32, {64}, f.d.data());
    w.add_bytes("t2", DType::F32, {64}, f.d.data());
    w.write(f.dir / b);
    std::string e = f.load_error();
    EXPECT_NE(e.find("tensor 't0' is in both " + a + " and " + b), std::string::npos) << e;
  }
  {
    // A corrupt shard: the error names the shard.
    ShardedFixture f;
    write_bytes(f.dir / b, Bytes{1, 2, 3, 4, 5, 6, 7, 8, 9});
    std::string e = f.load_error();
    EXPECT_EQ(e.rfind((f.dir / b).string() + ": ", 0), 0u) << e;
  }
}

TEST(SafetensorsSharded, MissingModelFiles) {
  test::TempDir tmp;
  std::string e = error_of([&] { load_tensor_index(tmp.path()); });
  EXPECT_EQ(e, tmp.path().string() + ": no model.safetensors or model.safetensors.index.json");
  e = error_of([&] { load_tensor_index(tmp / "nope"); });
  EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
}

}  // namespace
}  // namespace strata
