// 8-bit float decoding tables and the chunked decoding of (scaled) fp8 entries.
// Bit layouts: E4M3 "fn" = sign, 4 exponent bits (bias 7), 3 mantissa bits, no infinities, S.1111.111 NaN;
// E5M2 = sign, 5 exponent bits (bias 15), 2 mantissa bits, IEEE 754 specials (the OCP FP8 formats).
#include "io/float8.h"

#include "core/core.h"
#include "io/store_impl.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <sys/mman.h>
#include <unistd.h>

namespace wan::io {

namespace {

float decode_bits(Float8Format format, uint8_t bits) {
    const bool negative = (bits & 0x80) != 0;
    const int exp_bits = format == Float8Format::E4M3 ? 4 : 5;
    const int man_bits = 7 - exp_bits;
    const int bias = format == Float8Format::E4M3 ? 7 : 15;
    const int e = (bits >> man_bits) & ((1 << exp_bits) - 1);
    const int m = bits & ((1 << man_bits) - 1);
    float v;
    if (format == Float8Format::E4M3 && e == 15 && m == 7) {
        v = std::numeric_limits<float>::quiet_NaN();
    } else if (format == Float8Format::E5M2 && e == 31) {
        v = m == 0 ? std::numeric_limits<float>::infinity() : std::numeric_limits<float>::quiet_NaN();
    } else if (e == 0) {  // subnormal
        v = std::ldexp(static_cast<float>(m), 1 - bias - man_bits);
    } else {
        v = std::ldexp(static_cast<float>((1 << man_bits) + m), e - bias - man_bits);
    }
    return negative ? -v : v;
}

using Table = std::array<float, 256>;

const Table& table_of(Float8Format format) {
    static const Table e4m3 = [] {
        Table t{};
        for (int b = 0; b < 256; ++b) t[b] = decode_bits(Float8Format::E4M3, static_cast<uint8_t>(b));
        return t;
    }();
    static const Table e5m2 = [] {
        Table t{};
        for (int b = 0; b < 256; ++b) t[b] = decode_bits(Float8Format::E5M2, static_cast<uint8_t>(b));
        return t;
    }();
    WAN_CHECK(format == Float8Format::E4M3 || format == Float8Format::E5M2, "not an 8-bit float format");
    return format == Float8Format::E4M3 ? e4m3 : e5m2;
}

// Byte of the largest finite positive value: 0.1111.110 (448) and 0.11110.11 (57344).
uint8_t max_code(Float8Format format) { return format == Float8Format::E4M3 ? 0x7E : 0x7B; }

// A CPU tensor viewing the entry's bytes as `dtype` (the mapping stays alive while the view lives).
at::Tensor raw_view(const StoreEntry& e, at::ScalarType dtype) {
    std::shared_ptr<MappedFile> keep = e.file;
    void* base = const_cast<uint8_t*>(e.file->data() + e.info.data_offset);
    const auto elements = static_cast<int64_t>(e.info.data_bytes / element_size(dtype));
    at::Tensor storage = at::from_blob(base, {elements}, [keep](void*) mutable { keep.reset(); },
                                       at::TensorOptions().dtype(dtype).device(at::kCPU));
    return storage.as_strided(e.info.shape, e.info.strides, e.info.storage_offset);
}

// Lets the kernel drop the pages just read from this process (they stay in the page cache), as
// TensorStore::load does, so that decoding a whole checkpoint never keeps it resident.
void drop_pages(const StoreEntry& e) {
    const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    const uint64_t begin = (e.info.data_offset / page) * page;
    const uint64_t end = e.info.data_offset + e.info.data_bytes;
    ::madvise(const_cast<uint8_t*>(e.file->data()) + begin, end - begin, MADV_DONTNEED);
}

}  // namespace

Float8Format float8_format_from_safetensors(const std::string& name) {
    if (name == "F8_E4M3") return Float8Format::E4M3;
    if (name == "F8_E5M2") return Float8Format::E5M2;
    return Float8Format::None;
}

const char* float8_format_name(Float8Format format) {
    switch (format) {
        case Float8Format::E4M3: return "F8_E4M3";
        case Float8Format::E5M2: return "F8_E5M2";
        default: return "none";
    }
}

float float8_to_float(Float8Format format, uint8_t bits) { return table_of(format)[bits]; }

float float8_max(Float8Format format) { return table_of(format)[max_code(format)]; }

uint8_t float8_from_float(Float8Format format, float value) {
    const Table& t = table_of(format);
    if (std::isnan(value)) return 0x7F;  // a NaN in both formats
    const uint8_t sign = std::signbit(value) ? 0x80 : 0x00;
    const float a = std::fabs(value);
    const uint8_t top = max_code(format);
    if (a >= t[top]) return sign | top;
    // Codes 0..top are in increasing order of value: find the last code not above `a`.
    uint8_t lo = 0, hi = top;  // t[lo] <= a < t[hi]
    while (hi - lo > 1) {
        const auto mid = static_cast<uint8_t>((lo + hi) / 2);
        (t[mid] <= a ? lo : hi) = mid;
    }
    const float below = a - t[lo], above = t[hi] - a;
    const uint8_t code = below < above ? lo : above < below ? hi : ((lo & 1) == 0 ? lo : hi);
    return sign | code;
}

at::Tensor float8_bytes_to_float(const at::Tensor& bytes, Float8Format format) {
    WAN_CHECK(bytes.scalar_type() == at::kByte && bytes.device().is_cpu(), "8-bit float bytes must be uint8 on the CPU");
    const Table& t = table_of(format);
    const at::Tensor src = bytes.contiguous();
    at::Tensor out = at::empty(src.sizes(), at::TensorOptions().dtype(at::kFloat));
    const uint8_t* s = src.data_ptr<uint8_t>();
    float* o = out.data_ptr<float>();
    at::parallel_for(0, src.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) o[i] = t[s[i]];
    });
    return out;
}

at::Tensor float8_e4m3_decode(const at::Tensor& codes) { return float8_bytes_to_float(codes, Float8Format::E4M3); }

namespace {

// float8_from_float(E4M3, v) from the float's bits instead of a search of the table (a LoRA merge into fp8
// weights quantises every touched weight; tests/dit/test_dit_fp8.cpp compares the two): round to nearest even
// at the third mantissa bit, steps of 2^-9 below the smallest normal 2^-6, saturation at 448.
uint8_t e4m3_by_bits(float v) {
    if (std::isnan(v)) return 0x7F;
    uint32_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    const auto sign = static_cast<uint8_t>((bits >> 24) & 0x80);
    const float a = std::fabs(v);
    if (a >= 448.0f) return sign | max_code(Float8Format::E4M3);
    if (a < 0.015625f) return sign | static_cast<uint8_t>(std::nearbyint(a * 512.0f));  // subnormal codes 0..8
    uint32_t ab = bits & 0x7FFFFFFFu;
    ab += 0x7FFFFu + ((ab >> 20) & 1u);  // ties to even; a carry moves into the exponent
    const uint32_t e = (ab >> 23) - 127u + 7u, m = (ab >> 20) & 7u;
    return sign | static_cast<uint8_t>((e << 3) | m);
}

}  // namespace

at::Tensor float8_e4m3_encode(const at::Tensor& values) {
    WAN_CHECK(values.scalar_type() == at::kFloat && values.device().is_cpu(),
              "float8_e4m3_encode: expected float32 values on the CPU");
    const at::Tensor src = values.contiguous();
    at::Tensor out = at::empty(src.sizes(), at::TensorOptions().dtype(at::kByte));
    const float* s = src.data_ptr<float>();
    uint8_t* o = out.data_ptr<uint8_t>();
    at::parallel_for(0, src.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) o[i] = e4m3_by_bits(s[i]);
    });
    return out;
}

// Note [E5M2 as e4m3]
// An F8_E5M2 value is ±(1 + m/4)·2^E, m in 0..3, E in −14..15 (subnormals m/4·2^−14 down to 2^−16): 2 mantissa bits
// over 32 binades. e4m3 ("fn") has 3 mantissa bits over the binades 2^−6..2^8 (max 448) and subnormals in steps
// of 2^−9. A row divided by 2^s, s = E_max − 8 (E_max: the binade of the row's largest magnitude), has its top
// binade at e4m3's top, and then every value of binade E ≥ E_max − 15 is an e4m3 code exactly (E_max − 14..E_max
// are normals with a spare mantissa bit; E_max − 15 lands on the subnormals (4 + m)·2^−9); in binade E_max − 16
// only even m, in E_max − 17 only m = 0; anything smaller is rounded to the nearest step of 2^−9·2^s, or to 0.
// So a row whose values span at most 16 binades (a factor 65536 between its largest and smallest magnitude) is
// held exactly: value = decode_e4m3(code) · 2^s (· the file's scale), the same f32 product as the file's value.
// The largest e5m2 value (57344 = 1.75·2^15) becomes 448 exactly, never saturated. The rest are counted
// (Float8Codes::rounded, worst relative error) for the loader to report.
Float8Codes e5m2_as_e4m3(const at::Tensor& bytes, const std::string& what) {
    WAN_CHECK(bytes.scalar_type() == at::kByte && bytes.device().is_cpu() && bytes.dim() >= 1,
              "%s: F8_E5M2 bytes must be a uint8 CPU tensor with rows", what.c_str());
    const int64_t rows = bytes.size(0);
    const int64_t cols = rows == 0 ? 0 : bytes.numel() / rows;
    const at::Tensor src = bytes.contiguous().view({rows, cols});
    Float8Codes out;
    out.from_e5m2 = true;
    out.codes = at::empty(bytes.sizes(), at::TensorOptions().dtype(at::kByte));
    out.scale = at::empty({rows}, at::TensorOptions().dtype(at::kFloat));
    at::Tensor codes = out.codes.view({rows, cols});
    float* scale = out.scale.data_ptr<float>();
    constexpr int64_t kSliceElements = 1 << 22;
    const int64_t step = std::max<int64_t>(1, kSliceElements / std::max<int64_t>(cols, 1));
    for (int64_t r0 = 0; r0 < rows; r0 += step) {
        const int64_t n = std::min(step, rows - r0);
        const at::Tensor values = float8_bytes_to_float(src.narrow(0, r0, n), Float8Format::E5M2);  // [n, cols]
        WAN_CHECK(at::isfinite(values).all().item<bool>(), "%s: holds an infinite or NaN F8_E5M2 value (rows %lld..%lld)",
                  what.c_str(), static_cast<long long>(r0), static_cast<long long>(r0 + n - 1));
        const at::Tensor amax = cols == 0 ? at::zeros({n}) : values.abs().amax(1).contiguous();
        for (int64_t r = 0; r < n; ++r) {
            int e = 0;
            const float a = amax.data_ptr<float>()[r];
            std::frexp(a, &e);  // a = f·2^e, f in [0.5, 1): the binade E_max = e − 1
            scale[r0 + r] = a > 0 ? std::ldexp(1.0f, e - 1 - 8) : 1.0f;
        }
        const at::Tensor row_scale = out.scale.narrow(0, r0, n).view({n, 1});
        const at::Tensor part = float8_e4m3_encode(values / row_scale);  // exact division by a power of two
        codes.narrow(0, r0, n).copy_(part);
        const at::Tensor held = float8_e4m3_decode(part) * row_scale;
        const at::Tensor off = held != values;
        const int64_t rounded = off.sum().item<int64_t>();
        if (rounded == 0) continue;
        out.rounded += rounded;
        const at::Tensor rel = ((held - values).abs() / values.abs()).masked_select(off);
        out.worst_relative_error = std::max(out.worst_relative_error, rel.max().item<double>());
    }
    return out;
}

at::Tensor entry_bytes(const StoreEntry& entry) {
    at::Tensor out = raw_view(entry, at::kByte).clone(at::MemoryFormat::Contiguous);
    drop_pages(entry);
    return out;
}

at::Tensor decode_entry(const StoreEntry& entry, const EntryDecoding& decoding, c10::Device device,
                        at::ScalarType dtype) {
    const bool is_f8 = decoding.float8 != Float8Format::None;
    const at::Tensor raw = raw_view(entry, is_f8 ? at::kByte : entry.info.dtype);
    at::Tensor out = at::empty(raw.sizes(), at::TensorOptions().dtype(dtype).device(device));
    if (raw.numel() == 0) return out;
    // Rows of the weight (dim 0): the unit of a per-row scale, and of the slices decoded at once.
    const int64_t rows = raw.dim() == 0 ? 1 : raw.size(0);
    const int64_t cols = raw.numel() / rows;
    const at::Tensor scale = decoding.scale.defined() ? decoding.scale.to(at::kFloat).reshape({-1}) : at::Tensor();
    WAN_CHECK(!scale.defined() || scale.numel() == 1 || scale.numel() == rows,
              "%s: tensor '%s': %lld scale values for %lld rows (expected 1 or one per row)", entry.info.file.c_str(),
              entry.info.name.c_str(), static_cast<long long>(scale.defined() ? scale.numel() : 0),
              static_cast<long long>(rows));
    const at::Tensor src = raw.reshape({rows, cols});
    at::Tensor dst = out.view({rows, cols});
    constexpr int64_t kSliceElements = 1 << 22;  // 16 MB of float32 per slice
    const int64_t step = std::max<int64_t>(1, kSliceElements / std::max<int64_t>(cols, 1));
    for (int64_t r0 = 0; r0 < rows; r0 += step) {
        const int64_t n = std::min(step, rows - r0);
        at::Tensor part = is_f8 ? float8_bytes_to_float(src.narrow(0, r0, n), decoding.float8)  // [n, cols] f32
                                : src.narrow(0, r0, n).to(at::kFloat);
        if (scale.defined()) part.mul_(scale.numel() == 1 ? scale.view({1, 1}) : scale.narrow(0, r0, n).view({n, 1}));
        dst.narrow(0, r0, n).copy_(part);
    }
    drop_pages(entry);
    return out;
}

}  // namespace wan::io
