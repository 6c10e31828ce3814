// Writing safetensors files byte by byte, with any dtype name: fp8 cannot be written through ATen before LibTorch
// 2.1, and tests of hostile or unusual files need headers ATen would never write.
//   write_raw_safetensors(path, {raw_of("w", at::ones({2, 2})), {"w8", "F8_E4M3", {4}, "\x38\x38\x38\x38"}});
#pragma once

#include "io/io.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace wan::test {

struct RawTensor {
    std::string name, dtype;  ///< dtype as safetensors spells it ("F32", "F8_E4M3", …)
    std::vector<int64_t> shape;
    std::string bytes;
};

/// A tensor's bytes as they are in memory, under its safetensors dtype name.
inline RawTensor raw_of(const std::string& name, const at::Tensor& t) {
    const at::Tensor c = t.contiguous();
    return {name, io::dtype_to_safetensors(c.scalar_type()), c.sizes().vec(),
            std::string(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.nbytes()))};
}

/// The file: 8-byte header length, the JSON header (padded to 8 bytes), then the tensors' bytes in order.
inline void write_raw_safetensors(const std::string& path, const std::vector<RawTensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {}) {
    nlohmann::ordered_json h = nlohmann::ordered_json::object();
    if (!metadata.empty()) h["__metadata__"] = metadata;
    uint64_t off = 0;
    for (const auto& t : tensors) {
        h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
        off += t.bytes.size();
    }
    std::string s = h.dump();
    while (s.size() % 8) s.push_back(' ');
    std::ofstream f(path, std::ios::binary);
    const uint64_t n = s.size();
    f.write(reinterpret_cast<const char*>(&n), 8);
    f.write(s.data(), static_cast<std::streamsize>(s.size()));
    for (const auto& t : tensors) f.write(t.bytes.data(), static_cast<std::streamsize>(t.bytes.size()));
}

}  // namespace wan::test
