// Test helper: safetensors files written the way the format defines them.
#include "safetensors_writer.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace attnscope::test {

SafetensorsTensor f32_tensor(const std::string& name, std::vector<uint64_t> shape,
                             const std::vector<float>& values) {
  SafetensorsTensor t{name, "F32", std::move(shape), {}};
  t.bytes.resize(values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

SafetensorsTensor u16_tensor(const std::string& name, const std::string& dtype,
                             std::vector<uint64_t> shape, const std::vector<uint16_t>& bits) {
  SafetensorsTensor t{name, dtype, std::move(shape), {}};
  t.bytes.resize(bits.size() * 2);
  for (size_t i = 0; i < bits.size(); ++i) {
    t.bytes[2 * i] = static_cast<char>(bits[i] & 0xFF);
    t.bytes[2 * i + 1] = static_cast<char>(bits[i] >> 8);
  }
  return t;
}

std::string raw_safetensors_bytes(const std::string& header_json, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header_json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header_json + data;
}

std::string safetensors_bytes(const std::vector<SafetensorsTensor>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  // ordered_json keeps tensors in the order given, like the reference writer's layout.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string data;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';
  return raw_safetensors_bytes(text, data);
}

void write_binary_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

void write_safetensors(const std::filesystem::path& path,
                       const std::vector<SafetensorsTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  write_binary_file(path, safetensors_bytes(tensors, metadata));
}

std::vector<std::string> write_sharded_safetensors(const std::filesystem::path& dir,
                                                   const std::vector<SafetensorsTensor>& tensors,
                                                   int n_shards) {
  if (n_shards < 1) throw std::invalid_argument("n_shards must be >= 1");
  std::vector<std::string> names;
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  uint64_t total_size = 0;
  const size_t n = tensors.size();
  for (int s = 0; s < n_shards; ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
    const size_t lo = n * static_cast<size_t>(s) / static_cast<size_t>(n_shards);
    const size_t hi = n * static_cast<size_t>(s + 1) / static_cast<size_t>(n_shards);
    std::vector<SafetensorsTensor> part(tensors.begin() + static_cast<std::ptrdiff_t>(lo),
                                        tensors.begin() + static_cast<std::ptrdiff_t>(hi));
    for (const auto& t : part) {
      weight_map[t.name] = name;
      total_size += t.bytes.size();
    }
    write_safetensors(dir / name, part, {{"format", "pt"}});
    names.push_back(name);
  }
  nlohmann::ordered_json index = {{"metadata", {{"total_size", total_size}}},
                                  {"weight_map", weight_map}};
  write_binary_file(dir / "model.safetensors.index.json", index.dump(2));
  return names;
}

}  // namespace attnscope::test
