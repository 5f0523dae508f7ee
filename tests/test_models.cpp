#include <algorithm>
#include "test_models.h"

#include <fstream>
#include <sstream>
#include <cstring>
#include <memory>
#include <vector>

#include "formats/safetensors.h"
#include "formats/safetensors_writer.h"
#include "test_util.h"

namespace strata::test {
namespace {

std::vector<float> read_tensor_f32(const std::filesystem::path& file, const TensorInfo& t) {
  std::ifstream f(file, std::ios::binary);
  f.seekg(std::streamoff(t.offset));
  std::vector<uint8_t> raw(t.nbytes);
  f.read(reinterpret_cast<char*>(raw.data()), std::streamsize(raw.size()));
  std::vector<float> out(t.numel());
  for (size_t i = 0; i < out.size(); ++i) {
    if (t.dtype == DType::F32) std::memcpy(&out[i], raw.data() + 4 * i, 4);
    else {
      uint16_t h;
      std::memcpy(&h, raw.data() + 2 * i, 2);
      out[i] = t.dtype == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
  }
  return out;
}

}  // namespace

void copy_model(const std::filesystem::path& src, const std::filesystem::path& dst, DType dtype,
                uint64_t shard_bytes, bool round_only) {
  std::filesystem::create_directories(dst);
  TensorIndex idx = load_tensor_index(src);
  auto data = std::make_shared<std::vector<std::vector<uint8_t>>>();
  std::vector<TensorSource> sources;
  const DType out_type = round_only ? DType::F32 : dtype;
  for (const auto& t : idx.tensors) {
    std::vector<float> v = read_tensor_f32(idx.files[size_t(t.file)], t);
    std::vector<uint8_t> bytes(v.size() * dtype_size(out_type));
    for (size_t i = 0; i < v.size(); ++i) {
      float x = v[i];
      if (dtype == DType::BF16) {
        uint16_t h = f32_to_bf16(x);
        if (round_only) x = bf16_to_f32(h);
        else std::memcpy(bytes.data() + 2 * i, &h, 2);
      } else if (dtype == DType::F16) {
        uint16_t h = f32_to_f16(x);
        if (round_only) x = f16_to_f32(h);
        else std::memcpy(bytes.data() + 2 * i, &h, 2);
      }
      if (out_type == DType::F32) std::memcpy(bytes.data() + 4 * i, &x, 4);
    }
    data->push_back(std::move(bytes));
    const uint8_t* p = data->back().data();
    sources.push_back({t.name, out_type, t.shape, [p, data](uint64_t off, uint8_t* d, size_t n) {
                         std::memcpy(d, p + off, n);
                       }});
  }
  if (shard_bytes > 0) {
    write_sharded(dst, sources, shard_bytes);
  } else {
    SafetensorsWriter w;
    for (auto& s : sources) w.add(s.name, s.dtype, s.shape, s.fill);
    w.write(dst / "model.safetensors");
  }
  std::filesystem::copy_file(src / "config.json", dst / "config.json",
                             std::filesystem::copy_options::overwrite_existing);
}

std::map<std::string, std::vector<float>> load_tensors_f32(const std::filesystem::path& dir) {
  TensorIndex idx = load_tensor_index(dir);
  std::map<std::string, std::vector<float>> out;
  for (const auto& t : idx.tensors) out[t.name] = read_tensor_f32(idx.files[size_t(t.file)], t);
  return out;
}

void copy_model_files(const std::filesystem::path& src, const std::filesystem::path& dst,
                      const std::vector<std::string>& leave_out) {
  std::filesystem::create_directories(dst);
  for (const auto& e : std::filesystem::directory_iterator(src)) {
    const std::string name = e.path().filename().string();
    if (std::find(leave_out.begin(), leave_out.end(), name) != leave_out.end()) continue;
    std::filesystem::copy(e.path(), dst / name, std::filesystem::copy_options::overwrite_existing);
  }
}

void copy_with_config(const std::filesystem::path& src, const std::filesystem::path& dst,
                      const std::function<void(std::string&)>& edit) {
  copy_model_files(src, dst, {"config.json"});
  std::string cfg = read_text(src / "config.json");
  edit(cfg);
  std::ofstream(dst / "config.json") << cfg;
}

}  // namespace strata::test
