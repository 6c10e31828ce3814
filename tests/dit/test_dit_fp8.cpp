// Block weights held as fp8 (--dit-dtype fp8, Note [FP8 weights]) on the CPU: the quantisation rule against io's
// scalar e4m3 codec, a forward bit-equal to the same model whose block Linear weights were quantised and
// dequantised up front (this file's own loop), the bytes held, an F8_E4M3 file kept as fp8 by default, streamed
// fp8 blocks equal to resident ones, and the option's names.
#include "raw_safetensors.h"
#include "tiny_dit.h"

#include "core/core.h"
#include "dit/dit.h"
#include "dit/streaming.h"
#include "io/component_files.h"
#include "io/float8.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace {

using wan::dit::WanModel;
using wan::dit::WeightDtype;
using wan::io::Float8Format;
using wan::io::WanConfig;

bool is_block_linear(const std::string& name, const at::Tensor& t) {
    return name.rfind("blocks.", 0) == 0 && t.dim() == 2 && name.size() > 7 &&
           name.compare(name.size() - 7, 7, ".weight") == 0;
}

// The rule written out element by element with io's scalar codec: scale = row amax / 448, code = nearest e4m3.
struct Reference {
    std::vector<uint8_t> codes;
    at::Tensor scale;   // [N] f32
    at::Tensor values;  // [N, K] f32: decode(code) · scale
};
Reference reference_fp8(const at::Tensor& w_in) {
    const at::Tensor w = w_in.to(at::kFloat).contiguous();
    const int64_t N = w.size(0), K = w.size(1);
    Reference r;
    r.scale = w.abs().amax(1).clamp_min(1e-12) / 448.0;
    r.values = at::empty_like(w);
    r.codes.resize(static_cast<size_t>(N * K));
    const float* src = w.data_ptr<float>();
    float* dst = r.values.data_ptr<float>();
    for (int64_t i = 0; i < N; ++i) {
        const float s = r.scale.data_ptr<float>()[i];
        for (int64_t j = 0; j < K; ++j) {
            const uint8_t c = wan::io::float8_from_float(Float8Format::E4M3, src[i * K + j] / s);
            r.codes[static_cast<size_t>(i * K + j)] = c;
            dst[i * K + j] = wan::io::float8_to_float(Float8Format::E4M3, c) * s;
        }
    }
    return r;
}

// The tiny checkpoint with every block Linear weight replaced by its quantised-dequantised values.
std::string write_dequantised_tiny() {
    const auto store = wan::test::tiny_store();
    wan::io::NamedTensors out;
    for (const auto& n : store.names()) {
        at::Tensor t = store.load(n, c10::Device(c10::kCPU), at::kFloat);
        out.emplace_back(n, is_block_linear(n, t) ? reference_fp8(t).values : t);
    }
    const std::string path = wan::test::make_temp_dir("dit_fp8") + "/deq.safetensors";
    wan::io::save_safetensors(path, out);
    return path;
}

using Inputs = wan::test::TinyForwardInputs;
Inputs make_inputs(const WanConfig& c) { return wan::test::tiny_forward_inputs(c, 5, 700.0, 6); }

wan::dit::ModelOptions fp8_options() {
    wan::dit::ModelOptions o;
    o.weight_dtype = WeightDtype::Fp8;
    return o;
}

int64_t block_bytes_held(const WanModel& m) {
    int64_t n = 0;
    for (const auto& [name, t] : m.named_parameters())
        if (name.rfind("blocks.", 0) == 0) n += static_cast<int64_t>(t.nbytes());
    return n;
}

TEST(DitFp8, QuantisationIsTheRowScaledE4m3Rule) {
    at::manual_seed(3);
    at::Tensor w = at::randn({24, 40}) * at::linspace(0.01, 30.0, 24).unsqueeze(1);  // rows of very different range
    w[3].zero_();                                                                    // an all-zero row
    w[5][7] = 1e-9f;                                                                 // a subnormal code
    const wan::dit::Fp8Weight q = wan::dit::quantize_fp8(w);
    const Reference r = reference_fp8(w);
    ASSERT_EQ(q.codes.scalar_type(), at::kByte);
    ASSERT_EQ(q.codes.sizes(), w.sizes());
    EXPECT_TRUE(at::equal(q.scale, r.scale));
    EXPECT_EQ(std::vector<uint8_t>(q.codes.data_ptr<uint8_t>(), q.codes.data_ptr<uint8_t>() + q.codes.numel()), r.codes);
    EXPECT_TRUE(at::equal(wan::dit::dequantize_fp8(q.codes, q.scale, at::kFloat), r.values));
    EXPECT_TRUE(at::equal(wan::dit::dequantize_fp8(q.codes, q.scale, at::kBFloat16), r.values.to(at::kBFloat16)));
    // Each row's largest magnitude maps to the largest code, 448.
    EXPECT_EQ(q.codes[10].bitwise_and(0x7F).max().item<int64_t>(), 0x7E);
}

TEST(DitFp8, TensorEncoderEqualsTheScalarCodec) {
    // Every 241st float bit pattern of each sign (normal, subnormal, saturating, infinite), and the ties.
    std::vector<float> v;
    for (uint64_t b = 0; b < 0x7F800000u; b += 241) {
        float f = 0;
        const auto bits = static_cast<uint32_t>(b);
        std::memcpy(&f, &bits, sizeof f);
        v.push_back(f);
        v.push_back(-f);
    }
    for (int c = 0; c < 0x7E; ++c) {  // midpoints between neighbouring codes: ties to even
        v.push_back(0.5f * (wan::io::float8_to_float(Float8Format::E4M3, static_cast<uint8_t>(c)) +
                            wan::io::float8_to_float(Float8Format::E4M3, static_cast<uint8_t>(c + 1))));
    }
    for (float f : {448.0f, 464.0f, 1e30f, INFINITY, -INFINITY, NAN, -0.0f, 0.001953125f, 0.0009765625f}) v.push_back(f);
    const at::Tensor codes = wan::io::float8_e4m3_encode(at::from_blob(v.data(), {static_cast<int64_t>(v.size())}, at::kFloat));
    int64_t differ = 0;
    for (size_t i = 0; i < v.size(); ++i) {
        const uint8_t want = wan::io::float8_from_float(Float8Format::E4M3, v[i]);
        if (codes.data_ptr<uint8_t>()[i] != want && ++differ <= 5)
            ADD_FAILURE() << "value " << v[i] << ": code " << int(codes.data_ptr<uint8_t>()[i]) << ", expected " << int(want);
    }
    EXPECT_EQ(differ, 0) << "of " << v.size();
}

TEST(DitFp8, ForwardEqualsTheModelQuantisedUpFront) {
    const WanConfig c = wan::test::tiny_config();
    const WanModel fp8(c, wan::test::tiny_store(), fp8_options());
    ASSERT_TRUE(fp8.fp8_weights());
    const WanModel deq(c, wan::io::TensorStore::open(write_dequantised_tiny()));
    ASSERT_FALSE(deq.fp8_weights());
    const Inputs in = make_inputs(c);
    wan::dit::CrossAttentionCache cache_a, cache_b;
    for (int step = 0; step < 2; ++step) {  // the second call takes the text K/V from the cache
        const at::Tensor a = fp8.forward(in.x, in.t, in.ctx, in.seq_len, &cache_a);
        const at::Tensor b = deq.forward(in.x, in.t, in.ctx, in.seq_len, &cache_b);
        EXPECT_TRUE(at::equal(a, b)) << "step " << step << ": max diff " << (a - b).abs().max().item<double>();
    }
    // And it is a real quantisation: not the f32 model's output.
    EXPECT_FALSE(at::equal(fp8.forward(in.x, in.t, in.ctx, in.seq_len), wan::test::tiny_model().forward(in.x, in.t, in.ctx, in.seq_len)));
}

TEST(DitFp8, BlockLinearsAreHeldAsCodesWithRowScales) {
    const WanConfig c = wan::test::tiny_config();
    const WanModel fp8(c, wan::test::tiny_store(), fp8_options());
    std::map<std::string, at::Tensor> p;
    for (const auto& [name, t] : fp8.named_parameters()) p.emplace(name, t);
    int linears = 0;
    for (const auto& spec : wan::dit::expected_parameter_shapes(c)) {
        const at::Tensor& t = p.at(spec.name);
        if (wan::dit::is_fp8_linear(spec)) {
            ++linears;
            EXPECT_EQ(t.scalar_type(), at::kByte) << spec.name;
            const at::Tensor& s = p.at(spec.name + "_scale");
            EXPECT_EQ(s.scalar_type(), at::kFloat);
            EXPECT_EQ(s.sizes().vec(), std::vector<int64_t>{spec.shape[0]}) << spec.name;
            EXPECT_EQ(std::vector<uint8_t>(t.data_ptr<uint8_t>(), t.data_ptr<uint8_t>() + t.numel()),
                      reference_fp8(wan::test::tiny_store().load(spec.name, c10::Device(c10::kCPU), at::kFloat)).codes)
                << spec.name;
        } else {
            EXPECT_EQ(t.scalar_type(), at::kFloat) << spec.name << " (small tensors keep the compute dtype)";
        }
    }
    EXPECT_EQ(linears, 10 * c.num_layers);
}

TEST(DitFp8, BytesHeldAreAQuarterOfF32AndHalfOfBf16) {
    const WanConfig c = wan::test::tiny_config();
    const WanModel f32(c, wan::test::tiny_store());
    const WanModel fp8(c, wan::test::tiny_store(), fp8_options());
    const int64_t held = block_bytes_held(fp8), full = block_bytes_held(f32);
    EXPECT_EQ(held, fp8.weight_bytes().first);  // the formula the log and --max-vram use
    EXPECT_EQ(full, f32.weight_bytes().first);
    EXPECT_LT(held, full * 0.27) << held << " of " << full;  // a byte per weight, 4 per scale and small tensor
    // The 14B model: 40 blocks of fp8 are half of bf16, 14.0 GB (the root adds 0.87 GB, mostly the f32
    // time projection, which stays f32 as upstream keeps it).
    WanConfig c14 = c;
    c14.dim = 5120, c14.ffn_dim = 13824, c14.num_heads = 40, c14.num_layers = 40;
    const auto mixed = wan::dit::Precision::BF16Mixed;
    const double bf16 = static_cast<double>(wan::dit::block_weight_bytes(c14, mixed));
    const double f8 = static_cast<double>(wan::dit::block_weight_bytes(c14, mixed, /*fp8=*/true));
    EXPECT_GT(f8 / bf16, 0.50);
    EXPECT_LT(f8 / bf16, 0.51);
    EXPECT_LT(40 * f8, 14.1e9);
    EXPECT_LT(40 * f8 + static_cast<double>(wan::dit::root_weight_bytes(c14, mixed)), 14.9e9);
}

// ---- an fp8 file -------------------------------------------------------------------------------------------

// The tiny DiT as a ComfyUI-style scaled-fp8 file: each block Linear weight as F8_E4M3 (or F8_E5M2) bytes with a
// per-tensor `.scale_weight`, the marker `scaled_fp8`, everything else f32. Returns the dequantised values by name.
struct Fp8File {
    std::string path;
    std::map<std::string, std::vector<uint8_t>> codes;
    std::map<std::string, float> scales;  ///< the per-tensor `.scale_weight`
    wan::io::NamedTensors values;
};
Fp8File write_scaled_fp8_tiny(const std::string& dir, Float8Format format = Float8Format::E4M3) {
    using wan::test::raw_of;
    const std::string dtype = wan::io::float8_format_name(format);
    Fp8File f;
    f.path = dir + "/tiny_" + dtype + "_scaled.safetensors";
    std::vector<wan::test::RawTensor> raws = {{"scaled_fp8", dtype, {0}, ""}};
    const auto store = wan::test::tiny_store();
    for (const auto& n : store.names()) {
        const at::Tensor t = store.load(n, c10::Device(c10::kCPU), at::kFloat).contiguous();
        if (!is_block_linear(n, t)) {
            raws.push_back(raw_of(n, t));
            f.values.emplace_back(n, t);
            continue;
        }
        const float scale = t.abs().max().item<float>() / wan::io::float8_max(format);
        std::vector<uint8_t> codes(static_cast<size_t>(t.numel()));
        at::Tensor deq = at::empty_like(t);
        for (int64_t i = 0; i < t.numel(); ++i) {
            codes[static_cast<size_t>(i)] = wan::io::float8_from_float(format, t.data_ptr<float>()[i] / scale);
            deq.data_ptr<float>()[i] = wan::io::float8_to_float(format, codes[static_cast<size_t>(i)]) * scale;
        }
        raws.push_back({n, dtype, t.sizes().vec(), std::string(codes.begin(), codes.end())});
        raws.push_back(raw_of(n.substr(0, n.size() - 7) + ".scale_weight", at::full({}, scale, at::kFloat)));
        f.codes[n] = codes;
        f.scales[n] = scale;
        f.values.emplace_back(n, deq);
    }
    wan::test::write_raw_safetensors(f.path, raws);
    return f;
}

TEST(DitFp8, AnE4m3FileIsHeldAsFp8ByDefaultWithItsOwnCodes) {
    const std::string dir = wan::test::make_temp_dir("dit_fp8_file");
    const Fp8File file = write_scaled_fp8_tiny(dir);
    const WanConfig c = wan::test::tiny_config();
    const wan::io::TensorStore view = wan::io::open_dit_file(file.path);
    EXPECT_TRUE(view.stores_e4m3("blocks.0.ffn.0.weight"));
    EXPECT_FALSE(view.stores_e4m3("blocks.0.ffn.0.bias"));
    EXPECT_EQ(wan::dit::resolve_weight_dtype({}, c, view), WeightDtype::Fp8);

    const WanModel automatic(c, view);  // WeightDtype::Auto
    ASSERT_TRUE(automatic.fp8_weights());
    for (const auto& [name, t] : automatic.named_parameters()) {
        const auto it = file.codes.find(name);
        if (it == file.codes.end()) continue;
        EXPECT_EQ(std::vector<uint8_t>(t.data_ptr<uint8_t>(), t.data_ptr<uint8_t>() + t.numel()), it->second)
            << name << ": the file's codes, not re-rounded";
    }
    wan::dit::ModelOptions widen;
    widen.weight_dtype = WeightDtype::Compute;  // --dit-dtype bf16: widened at load, as before
    const WanModel widened(c, view, widen);
    EXPECT_FALSE(widened.fp8_weights());
    wan::io::save_safetensors(dir + "/values.safetensors", file.values);
    const WanModel values(c, wan::io::TensorStore::open(dir + "/values.safetensors"));
    EXPECT_EQ(wan::dit::resolve_weight_dtype({}, c, wan::io::TensorStore::open(dir + "/values.safetensors")),
              WeightDtype::Compute);

    const Inputs in = make_inputs(c);
    const at::Tensor want = values.forward(in.x, in.t, in.ctx, in.seq_len);
    EXPECT_TRUE(at::equal(automatic.forward(in.x, in.t, in.ctx, in.seq_len), want));
    EXPECT_TRUE(at::equal(widened.forward(in.x, in.t, in.ctx, in.seq_len), want));
}

// io Note [E5M2 as e4m3] on every finite e5m2 value in one row: the row's top binade (2^15) goes to e4m3's top
// (scale 2^7); a value is held exactly where e4m3 has it after that shift (io's scalar codec says), else rounded
// to the nearest e4m3 step, and those are what `rounded` counts. An infinity is refused, naming the tensor.
TEST(DitFp8, E5m2RowsAreRecodedAsE4m3WithAPowerOfTwoScale) {
    std::vector<uint8_t> all;
    for (int b = 0; b < 256; ++b)
        if (std::isfinite(wan::io::float8_to_float(Float8Format::E5M2, static_cast<uint8_t>(b))))
            all.push_back(static_cast<uint8_t>(b));
    const at::Tensor bytes = at::from_blob(all.data(), {1, static_cast<int64_t>(all.size())}, at::kByte).clone();
    const wan::io::Float8Codes c = wan::io::e5m2_as_e4m3(bytes, "row");
    EXPECT_TRUE(c.from_e5m2);
    ASSERT_EQ(c.scale.numel(), 1);
    EXPECT_EQ(c.scale.item<float>(), 128.0f);
    const at::Tensor held = wan::io::float8_e4m3_decode(c.codes) * c.scale.view({-1, 1});
    int64_t inexact = 0;
    for (size_t i = 0; i < all.size(); ++i) {
        const float v = wan::io::float8_to_float(Float8Format::E5M2, all[i]);
        const float shifted = v / 128.0f;
        const bool representable =
            wan::io::float8_to_float(Float8Format::E4M3, wan::io::float8_from_float(Float8Format::E4M3, shifted)) == shifted;
        const float h = held[0][static_cast<int64_t>(i)].item<float>();
        if (representable) {
            EXPECT_EQ(h, v) << "e5m2 byte " << int(all[i]);
        } else {
            ++inexact;
            EXPECT_LE(std::fabs(h - v), std::ldexp(1.0f, 15 - 18)) << "e5m2 byte " << int(all[i]);  // half a step
        }
    }
    // Binades 2^0..2^15 exact (16 of them), 2^-1 half, 2^-2 one in four: 2·(4·16 + 2 + 1) + zero and −zero.
    EXPECT_EQ(static_cast<int64_t>(all.size()) - inexact, 2 * (4 * 16 + 2 + 1) + 2);
    EXPECT_EQ(c.rounded, inexact);
    EXPECT_DOUBLE_EQ(c.worst_relative_error, 1.0);  // 2^-16 becomes 0

    at::Tensor inf = bytes.clone();
    inf[0][3] = 0x7C;  // +inf
    try {
        wan::io::e5m2_as_e4m3(inf, "f.safetensors: tensor 'w'");
        FAIL() << "an infinity was accepted";
    } catch (const wan::Error& e) {
        EXPECT_NE(std::string(e.what()).find("f.safetensors: tensor 'w': holds an infinite or NaN F8_E5M2 value"),
                  std::string::npos) << e.what();
    }
}

// An F8_E5M2 file is held as fp8 by default: every held weight dequantises to the file's value exactly, except
// values whose e5m2 code is more than 15 binades below its row's largest, which are within half an e4m3 step
// (2^(E_max − 18) · the file's scale, E_max the binade of the row's largest e5m2 magnitude) and are the ones io
// counts as rounded.
TEST(DitFp8, AnE5m2FileIsHeldAsFp8WithTheFilesValues) {
    const std::string dir = wan::test::make_temp_dir("dit_e5m2_file");
    const Fp8File file = write_scaled_fp8_tiny(dir, Float8Format::E5M2);
    const WanConfig c = wan::test::tiny_config();
    const wan::io::TensorStore view = wan::io::open_dit_file(file.path);
    EXPECT_FALSE(view.stores_e4m3("blocks.0.ffn.0.weight"));
    EXPECT_TRUE(view.stores_fp8("blocks.0.ffn.0.weight"));
    EXPECT_EQ(wan::dit::resolve_weight_dtype({}, c, view), WeightDtype::Fp8);
    const WanModel automatic(c, view);
    ASSERT_TRUE(automatic.fp8_weights());

    std::map<std::string, at::Tensor> values(file.values.begin(), file.values.end());
    const auto params = automatic.named_parameters();
    int64_t checked = 0, inexact = 0, reported = 0;
    for (size_t k = 0; k + 1 < params.size(); ++k) {
        const auto& [name, codes] = params[k];
        if (codes.scalar_type() != at::kByte) continue;
        ASSERT_EQ(params[k + 1].first, name + "_scale");
        const at::Tensor held = wan::dit::dequantize_fp8(codes, params[k + 1].second, at::kFloat);
        const at::Tensor want = values.at(name);
        reported += view.e4m3_codes(name)->rounded;
        const std::vector<uint8_t>& bytes = file.codes.at(name);
        const at::Tensor e5m2 = wan::io::float8_bytes_to_float(at::from_blob(const_cast<uint8_t*>(bytes.data()), want.sizes(), at::kByte).clone(),
                                                                 Float8Format::E5M2);
        for (int64_t r = 0; r < want.size(0); ++r) {
            int e = 0;
            std::frexp(e5m2[r].abs().max().item<float>(), &e);  // the row's top binade: e − 1
            const float exact_from = std::ldexp(1.0f, e - 1 - 15);
            const float half_step = std::ldexp(1.0f, e - 1 - 18) * file.scales.at(name) * (1 + 1e-6f);
            const at::Tensor wide = e5m2[r].abs() >= exact_from;
            EXPECT_TRUE(at::equal(held[r].masked_select(wide), want[r].masked_select(wide))) << name << " row " << r;
            const at::Tensor err = (held[r] - want[r]).abs().masked_select(wide.logical_not());
            if (err.numel() > 0) EXPECT_LE(err.max().item<float>(), half_step) << name << " row " << r;
            inexact += (held[r] != want[r]).sum().item<int64_t>();
        }
        ++checked;
    }
    EXPECT_EQ(checked, 10 * c.num_layers);
    EXPECT_EQ(inexact, reported);
    std::printf("F8_E5M2 tiny file held as e4m3: %lld of its values rounded\n", static_cast<long long>(inexact));
    if (inexact == 0) {  // then the forward is the file's values' forward, bit for bit
        wan::io::save_safetensors(dir + "/values.safetensors", file.values);
        const WanModel exact(c, wan::io::TensorStore::open(dir + "/values.safetensors"));
        const Inputs in = make_inputs(c);
        EXPECT_TRUE(at::equal(automatic.forward(in.x, in.t, in.ctx, in.seq_len), exact.forward(in.x, in.t, in.ctx, in.seq_len)));
    }
}

TEST(DitFp8, StreamedFp8BlocksEqualResidentOnes) {
    const WanConfig c = wan::test::tiny_config();
    const auto store = wan::test::tiny_store();
    const WanModel resident(c, store, fp8_options());
    const Inputs in = make_inputs(c);
    const at::Tensor want = resident.forward(in.x, in.t, in.ctx, in.seq_len);
    for (int64_t keep = 0; keep <= c.num_layers; ++keep) {
        SCOPED_TRACE("resident blocks: " + std::to_string(keep));
        auto blocks = wan::dit::StreamedBlockWeights::load(c, store, fp8_options(), keep);
        for (int64_t i = 0; i < c.num_layers; ++i) {
            const auto stored = blocks->stored(i);
            ASSERT_TRUE(stored.has_value());
            EXPECT_EQ(stored->ffn0_weight.scalar_type(), at::kByte) << "block " << i << " moves fp8 codes";
            EXPECT_TRUE(stored->ffn0_scale.defined());
        }
        const WanModel streamed(c, resident.root_weights(), blocks, fp8_options());
        EXPECT_TRUE(streamed.fp8_weights());
        EXPECT_TRUE(at::equal(streamed.forward(in.x, in.t, in.ctx, in.seq_len), want));
    }
}

TEST(DitFp8, OptionValues) {
    EXPECT_EQ(wan::dit::parse_weight_dtype("auto"), WeightDtype::Auto);
    EXPECT_EQ(wan::dit::parse_weight_dtype("fp8"), WeightDtype::Fp8);
    EXPECT_EQ(wan::dit::parse_weight_dtype("bf16"), WeightDtype::Compute);
    EXPECT_FALSE(wan::dit::parse_weight_dtype("fp16").has_value());
    EXPECT_FALSE(wan::dit::parse_weight_dtype("FP8").has_value());
    for (WeightDtype d : {WeightDtype::Auto, WeightDtype::Fp8, WeightDtype::Compute})
        EXPECT_EQ(wan::dit::parse_weight_dtype(wan::dit::weight_dtype_name(d)), d);
}

}  // namespace
