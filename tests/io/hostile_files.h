// Builders of handcrafted hostile checkpoint files (bytes made here, or edited from the tiny checkpoint), shared
// by the reader tests (test_bad_files.cpp) and the `wanstudio --inspect` tests (test_hostile_inspect.cpp).
#pragma once

#include "golden.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

namespace wan::test::hostile {

inline std::string write_file(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
}

inline std::string read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

template <typename T>
void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

inline std::string safetensors_bytes(const std::string& header_json, size_t data_bytes,
                                     int64_t header_len_override = -1) {
    std::string out;
    uint64_t len = header_len_override >= 0 ? static_cast<uint64_t>(header_len_override) : header_json.size();
    put(out, len);
    out += header_json;
    out.append(data_bytes, '\0');
    return out;
}

/// [3, 6148914691236517206] F32 in 8 bytes: 3 × 6148914691236517206 × 4 = 2^66 + 8 wraps to 8 in 64 bits.
inline std::string safetensors_wrapping_shape() {
    return safetensors_bytes(R"({"w":{"dtype":"F32","shape":[3,6148914691236517206],"data_offsets":[0,8]}})", 8);
}

/// One stored zip entry; `central_extra` is put in its central directory record as the extra field.
struct ZipItem {
    std::string name;
    std::string data;
    std::string central_extra;
};

/// A zip of stored entries (what torch.save writes), CRCs left zero (our reader does not check them).
inline std::string zip_stored(const std::vector<ZipItem>& items) {
    std::string out, central;
    for (const auto& it : items) {
        const uint32_t local = static_cast<uint32_t>(out.size());
        put<uint32_t>(out, 0x04034b50u); put<uint16_t>(out, 20); put<uint16_t>(out, 0); put<uint16_t>(out, 0);
        put<uint32_t>(out, 0); put<uint32_t>(out, 0);
        put<uint32_t>(out, static_cast<uint32_t>(it.data.size())); put<uint32_t>(out, static_cast<uint32_t>(it.data.size()));
        put<uint16_t>(out, static_cast<uint16_t>(it.name.size())); put<uint16_t>(out, 0);
        out += it.name;
        out += it.data;
        put<uint32_t>(central, 0x02014b50u); put<uint16_t>(central, 20); put<uint16_t>(central, 20);
        put<uint16_t>(central, 0); put<uint16_t>(central, 0); put<uint32_t>(central, 0); put<uint32_t>(central, 0);
        const bool z64 = !it.central_extra.empty() && it.central_extra[0] == 1;  // zip64 field: sizes deferred
        const uint32_t sz = z64 ? 0xFFFFFFFFu : static_cast<uint32_t>(it.data.size());
        put<uint32_t>(central, sz); put<uint32_t>(central, sz);
        put<uint16_t>(central, static_cast<uint16_t>(it.name.size()));
        put<uint16_t>(central, static_cast<uint16_t>(it.central_extra.size()));
        put<uint16_t>(central, 0); put<uint16_t>(central, 0); put<uint16_t>(central, 0); put<uint32_t>(central, 0);
        put<uint32_t>(central, local);
        central += it.name;
        central += it.central_extra;
    }
    const uint32_t cd_offset = static_cast<uint32_t>(out.size());
    out += central;
    put<uint32_t>(out, 0x06054b50u); put<uint16_t>(out, 0); put<uint16_t>(out, 0);
    put<uint16_t>(out, static_cast<uint16_t>(items.size())); put<uint16_t>(out, static_cast<uint16_t>(items.size()));
    put<uint32_t>(out, static_cast<uint32_t>(central.size())); put<uint32_t>(out, cd_offset); put<uint16_t>(out, 0);
    return out;
}

/// A .pth archive `<stem>/data.pkl` = `pickle` plus storages `<stem>/data/<k>`.
inline std::string pth_with_pickle(const std::string& pickle, const std::vector<std::string>& storages = {},
                                   const std::string& stem = "archive") {
    std::vector<ZipItem> items{{stem + "/data.pkl", pickle, ""}};
    for (size_t k = 0; k < storages.size(); ++k) items.push_back({stem + "/data/" + std::to_string(k), storages[k], ""});
    return zip_stored(items);
}

// ---- pickle pieces (protocol 2) -------------------------------------------------------------------------

inline std::string pk_str(const std::string& s) {
    std::string o = "X";
    put<uint32_t>(o, static_cast<uint32_t>(s.size()));
    return o + s;
}
inline std::string pk_int(int64_t v) {  // LONG1 with 8 bytes: any int64
    std::string o = "\x8a\x08";
    put<int64_t>(o, v);
    return o;
}
inline std::string pk_int_tuple(const std::vector<int64_t>& v) {
    std::string o = "(";
    for (int64_t x : v) o += pk_int(x);
    return o + "t";
}

/// {name: FloatStorage tensor} with the given storage element count, sizes and strides (offset 0).
inline std::string state_dict_pickle(int64_t storage_numel, const std::vector<int64_t>& size,
                                     const std::vector<int64_t>& stride) {
    std::string p = std::string("\x80\x02", 2) + "}(" + pk_str("w");
    p += "ctorch._utils\n_rebuild_tensor_v2\n(";
    p += "(" + pk_str("storage") + "ctorch\nFloatStorage\n" + pk_str("0") + pk_str("cpu") + pk_int(storage_numel) + "tQ";
    p += pk_int(0) + pk_int_tuple(size) + pk_int_tuple(stride);
    p += "\x89";
    p += "ccollections\nOrderedDict\n)RtRu.";
    return p;
}

/// `depth` empty lists, each appended into the previous one: a list nested `depth` deep.
inline std::string nested_lists_pickle(size_t depth) {
    return std::string("\x80\x02", 2) + std::string(depth, ']') + std::string(depth - 1, 'a') + ".";
}

/// `count` empty lists side by side on the stack (the 5 MB file that used to take 1.1 GB).
inline std::string many_lists_pickle(size_t count) {
    return std::string("\x80\x02", 2) + std::string(count, ']') + ".";
}

/// `bytes` of a valid .pth whose end record defers to a zip64 locator that points at 2^64 - 8.
inline std::string zip64_locator_past_end(std::string bytes) {
    const size_t eocd = bytes.size() - 22;  // our writer adds no comment
    std::memcpy(&bytes[eocd + 8], "\xff\xff\xff\xff", 4);  // entry counts → "see zip64 record"
    std::string locator;
    put<uint32_t>(locator, 0x07064b50u);
    put<uint32_t>(locator, 0);
    put<uint64_t>(locator, ~uint64_t(0) - 7);
    put<uint32_t>(locator, 1);
    bytes.insert(eocd, locator);
    return bytes;
}

/// A config.json whose "dim" is a list nested `depth` deep (valid JSON).
inline std::string nested_json_config(size_t depth) {
    return R"({"dim":)" + std::string(depth, '[') + std::string(depth, ']') +
           R"(,"ffn_dim":8960,"num_heads":12,"num_layers":30})";
}

/// A checkpoint folder whose files link to the tiny checkpoint's, except `name`, which holds `bytes`.
inline std::string tiny_ckpt_with(const std::string& name, const std::string& bytes) {
    const std::string src = tiny_ckpt_dir();
    const std::string dir = make_temp_dir("hostile-ckpt");
    ::mkdir((dir + "/google").c_str(), 0755);
    for (const char* f : {"config.json", "diffusion_pytorch_model.safetensors", "models_t5_umt5-xxl-enc-bf16.pth",
                          "Wan2.1_VAE.pth", "google/umt5-xxl"}) {
        if (name == f) continue;
        if (::symlink((src + "/" + f).c_str(), (dir + "/" + f).c_str()) != 0) return "";
    }
    write_file(dir + "/" + name, bytes);
    return dir;
}

}  // namespace wan::test::hostile
