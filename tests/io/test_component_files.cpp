// Single-file components (io/component_files.h): tiny checkpoints written here in each form users have —
// prefixed bf16 DiT, scaled-fp8 DiT, Hugging Face UMT5 with its tokenizer inside, safetensors VAE — load and
// give the same outputs as the upstream layout holding the same values; files of other models are named.
// Origin of the inputs: tests/data/golden/tiny-ckpt (the upstream folder layout, see its README).
#include "error_of.h"
#include "golden.h"
#include "raw_safetensors.h"
#include "small_request.h"

#include "dit/dit.h"
#include "io/component_files.h"
#include "io/float8.h"
#include "pipeline/pipeline.h"
#include "text/text.h"
#include "vae/vae.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <algorithm>
#include <cstdlib>
#include <fstream>

namespace {

using wan::io::Float8Format;
using wan::test::error_of;
using wan::io::ModelComponents;
using wan::io::TensorStore;

std::string tiny(const std::string& file) { return wan::test::tiny_ckpt_dir() + "/" + file; }

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << "'" << (part) << "' not in: " << (msg)

using wan::test::RawTensor;
using wan::test::raw_of;
using wan::test::write_raw_safetensors;

wan::io::NamedTensors all_tensors(const TensorStore& st) {
    wan::io::NamedTensors out;
    for (const auto& n : st.names()) out.emplace_back(n, st.load(n));
    return out;
}

// The tiny DiT in bf16, twice: under ComfyUI's "model.diffusion_model." prefix at `prefixed_path` and under the
// upstream names at `upstream_path` (the same values in both).
void write_bf16_dit(const std::string& prefixed_path, const std::string& upstream_path) {
    const TensorStore dit = TensorStore::open(tiny(wan::io::CheckpointDir::kDitName));
    wan::io::NamedTensors prefixed, upstream;
    for (auto& [n, t] : all_tensors(dit)) {
        prefixed.emplace_back("model.diffusion_model." + n, t.to(at::kBFloat16));
        upstream.emplace_back(n, t.to(at::kBFloat16));
    }
    wan::io::save_safetensors(prefixed_path, prefixed);
    wan::io::save_safetensors(upstream_path, upstream);
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
    return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// DiT forward on fixed inputs (CPU, float32).
at::Tensor dit_forward(const wan::io::WanConfig& cfg, const TensorStore& store, wan::dit::ModelOptions options = {}) {
    wan::dit::WanModel model(cfg, store, options);
    auto gen = at::detail::createCPUGenerator(7);
    const at::Tensor x = at::randn({cfg.in_dim, 2, 4, 4}, gen);
    const at::Tensor ctx = at::randn({5, cfg.text_dim}, gen);
    return model.forward(x, at::full({1}, 421.0), ctx, 2 * 2 * 2);
}

// ---- fp8 --------------------------------------------------------------------------------------------------

TEST(Float8, EveryCodeDecodesAndEncodesBack) {
    for (Float8Format f : {Float8Format::E4M3, Float8Format::E5M2}) {
        for (int b = 0; b < 256; ++b) {
            const float v = wan::io::float8_to_float(f, static_cast<uint8_t>(b));
            if (!std::isfinite(v)) continue;
            EXPECT_EQ(wan::io::float8_from_float(f, v), b) << wan::io::float8_format_name(f) << " code " << b;
        }
    }
    EXPECT_EQ(wan::io::float8_max(Float8Format::E4M3), 448.0f);
    EXPECT_EQ(wan::io::float8_max(Float8Format::E5M2), 57344.0f);
    EXPECT_EQ(wan::io::float8_to_float(Float8Format::E4M3, 0x38), 1.0f);
    EXPECT_EQ(wan::io::float8_to_float(Float8Format::E4M3, 0x01), std::ldexp(1.0f, -9));  // smallest subnormal
    EXPECT_TRUE(std::isnan(wan::io::float8_to_float(Float8Format::E4M3, 0x7F)));
    EXPECT_EQ(wan::io::float8_from_float(Float8Format::E4M3, 1000.0f), 0x7E);  // saturates to 448
    EXPECT_EQ(wan::io::float8_from_float(Float8Format::E4M3, 1.0625f), 0x38);  // tie between 1 and 1.125: even
}

// ---- DiT --------------------------------------------------------------------------------------------------

TEST(ComponentFiles, PrefixedBf16DitEqualsUpstreamLayout) {
    const std::string dir = wan::test::make_temp_dir("dit_bf16");
    write_bf16_dit(dir + "/comfy.safetensors", dir + "/upstream.safetensors");

    wan::ComponentPaths files;
    files.dit = dir + "/comfy.safetensors";
    const auto m = ModelComponents::locate(wan::test::tiny_ckpt_dir(), files);
    const auto cfg = m.dit_config();  // the folder's config.json fits the file's shapes: its head count is used
    EXPECT_EQ(cfg.num_heads, wan::io::WanConfig::from_json_file(tiny("config.json")).num_heads);
    const at::Tensor got = dit_forward(cfg, m.open_dit());
    const at::Tensor want = dit_forward(cfg, TensorStore::open(dir + "/upstream.safetensors"));
    EXPECT_EQ(max_abs_diff(got, want), 0.0);

    const auto report = wan::io::inspect_file(files.dit);
    EXPECT_EQ(report.kind, wan::io::ComponentKind::WanDiT);
    EXPECT_EQ(report.key_prefix, "model.diffusion_model.");
    EXPECT_EQ(report.dtypes.at("BF16"), TensorStore::open(tiny(wan::io::CheckpointDir::kDitName)).size());
}

// Quantises every 2-D Linear weight to fp8 with a per-tensor scale, ComfyUI's "scaled fp8" layout.
struct ScaledFp8 {
    std::vector<RawTensor> file;           // fp8 + scales + marker
    wan::io::NamedTensors dequantised;     // the same values in float32, upstream names
    std::map<std::string, std::string> metadata;
};
// `newer`: the later layout — `<layer>.weight_scale`, a `<layer>.comfy_quant` JSON tensor, the fp8 bytes in a U8
// container, and `_quantization_metadata` in the header (returned in `metadata`).
ScaledFp8 quantise(const TensorStore& up, const std::string& prefix, Float8Format format, bool newer = false) {
    ScaledFp8 q;
    const char* dtype = newer ? "U8" : wan::io::float8_format_name(format);
    if (!newer) q.file.push_back({prefix + "scaled_fp8", dtype, {0}, ""});
    nlohmann::json layers = nlohmann::json::object();
    for (auto& [n, t] : all_tensors(up)) {
        const bool linear = t.dim() == 2 && n.size() > 7 && n.compare(n.size() - 7, 7, ".weight") == 0;
        if (!linear) {
            q.file.push_back(raw_of(prefix + n, t));
            q.dequantised.emplace_back(n, t);
            continue;
        }
        const float scale = t.abs().max().item<float>() / wan::io::float8_max(format);
        const at::Tensor w = t.contiguous();
        std::string bytes(static_cast<size_t>(w.numel()), '\0');
        at::Tensor deq = at::empty_like(w);
        for (int64_t i = 0; i < w.numel(); ++i) {
            const uint8_t b = wan::io::float8_from_float(format, w.data_ptr<float>()[i] / scale);
            bytes[static_cast<size_t>(i)] = static_cast<char>(b);
            deq.data_ptr<float>()[i] = wan::io::float8_to_float(format, b) * scale;
        }
        const std::string layer = prefix + n.substr(0, n.size() - 7);
        q.file.push_back({prefix + n, dtype, w.sizes().vec(), bytes});
        const std::string fmt = format == Float8Format::E4M3 ? "float8_e4m3fn" : "float8_e5m2";
        if (newer) {
            q.file.push_back(raw_of(layer + ".weight_scale", at::full({}, scale, at::kFloat)));
            q.file.push_back(raw_of(layer + ".input_scale", at::full({}, 3.0f, at::kFloat)));  // ignored
            const std::string j = nlohmann::json{{"format", fmt}}.dump();
            q.file.push_back({layer + ".comfy_quant", "U8", {static_cast<int64_t>(j.size())}, j});
            layers[layer] = {{"format", fmt}};
        } else {
            q.file.push_back(raw_of(layer + ".scale_weight", at::full({}, scale, at::kFloat)));
            q.file.push_back(raw_of(layer + ".scale_input", at::full({}, 3.0f, at::kFloat)));  // ignored
        }
        q.dequantised.emplace_back(n, deq);
    }
    if (newer) q.metadata["_quantization_metadata"] = nlohmann::json{{"format_version", "1.0"}, {"layers", layers}}.dump();
    return q;
}

TEST(ComponentFiles, ScaledFp8DitEqualsItsDequantisedValues) {
    const std::string dir = wan::test::make_temp_dir("dit_fp8");
    const TensorStore up = TensorStore::open(tiny(wan::io::CheckpointDir::kDitName));
    const auto cfg = wan::io::WanConfig::from_json_file(tiny("config.json"));
    const at::Tensor original = dit_forward(cfg, up);
    for (int variant = 0; variant < 3; ++variant) {
        const Float8Format format = variant == 1 ? Float8Format::E5M2 : Float8Format::E4M3;
        const bool newer = variant == 2;
        SCOPED_TRACE(std::string(wan::io::float8_format_name(format)) + (newer ? " (weight_scale, comfy_quant)" : ""));
        const ScaledFp8 q = quantise(up, newer ? "" : "model.diffusion_model.", format, newer);
        write_raw_safetensors(dir + "/fp8.safetensors", q.file, q.metadata);
        wan::io::save_safetensors(dir + "/deq.safetensors", q.dequantised);

        wan::ComponentPaths files;
        files.dit = dir + "/fp8.safetensors";
        files.dit_config = tiny("config.json");
        const auto m = ModelComponents::locate("", [&] {
            wan::ComponentPaths f = files;
            f.t5 = tiny(wan::io::CheckpointDir::kT5Name);
            f.vae = tiny(wan::io::CheckpointDir::kVaeName);
            f.tokenizer = tiny(wan::io::CheckpointDir::kTokenizerName);
            return f;
        }());
        const TensorStore view = m.open_dit();
        EXPECT_FALSE(view.contains("scaled_fp8"));
        EXPECT_EQ(view.info("blocks.0.self_attn.q.weight").dtype, at::kBFloat16);
        // The view's values (widened at load: --dit-dtype bf16); held as fp8 they are tests/dit's (DitFp8.*File*).
        wan::dit::ModelOptions widened;
        widened.weight_dtype = wan::dit::WeightDtype::Compute;
        const at::Tensor got = dit_forward(m.dit_config(), view, widened);
        EXPECT_EQ(max_abs_diff(got, dit_forward(cfg, TensorStore::open(dir + "/deq.safetensors"))), 0.0);
        // Against the unquantised model: fp8 keeps 3 (E4M3) or 2 (E5M2) mantissa bits.
        const double rel = (got - original).norm().item<double>() / original.norm().item<double>();
        EXPECT_LT(rel, format == Float8Format::E4M3 ? 0.05 : 0.1);
        std::printf("%s: forward relative L2 error against f32 weights %.4f\n", wan::io::float8_format_name(format), rel);

        const auto report = wan::io::inspect_file(files.dit);
        EXPECT_GT(report.dtypes.at(newer ? "U8" : wan::io::float8_format_name(format)), 0u);
        EXPECT_GT(report.weight_scales, 0u);
        // fp8 block weights (E5M2 ones re-coded as e4m3) are kept as fp8 by --dit-dtype auto, and the report says
        // so (dit Note [FP8 weights], io Note [E5M2 as e4m3]).
        const std::string said = format == Float8Format::E4M3 ? "are F8_E4M3: the DiT holds them as fp8 (--dit-dtype auto)"
                                                              : "are F8_E5M2: the DiT holds them as fp8 (--dit-dtype auto), "
                                                                "each row re-coded at load as e4m3";
        const bool held_note = std::any_of(report.notes.begin(), report.notes.end(), [&](const std::string& n) {
            return n.find(said) != std::string::npos;
        });
        EXPECT_TRUE(held_note) << said;
        EXPECT_EQ(wan::dit::resolve_weight_dtype({}, m.dit_config(), view), wan::dit::WeightDtype::Fp8);
    }
}

TEST(ComponentFiles, DitSizesInferredFromShapes) {
    const TensorStore up = TensorStore::open(tiny(wan::io::CheckpointDir::kDitName));
    const auto cfg = wan::io::WanConfig::from_json_file(tiny("config.json"));
    // The tiny model's dim (128) gives one head of 128 by the rule every released model follows.
    const auto inferred = wan::io::infer_dit_config(up, "tiny");
    EXPECT_EQ(inferred.dim, cfg.dim);
    EXPECT_EQ(inferred.num_heads, cfg.dim / 128);
    EXPECT_EQ(inferred.ffn_dim, cfg.ffn_dim);
    EXPECT_EQ(inferred.num_layers, cfg.num_layers);
    EXPECT_EQ(inferred.in_dim, cfg.in_dim);
    EXPECT_EQ(inferred.out_dim, cfg.out_dim);
    EXPECT_EQ(inferred.text_dim, cfg.text_dim);
    EXPECT_EQ(inferred.freq_dim, cfg.freq_dim);
    EXPECT_EQ(inferred.text_len, 512);
}

// ---- T5 ---------------------------------------------------------------------------------------------------

std::string hf_name(const std::string& n) {
    if (n == "token_embedding.weight") return "shared.weight";
    if (n == "norm.weight") return "encoder.final_layer_norm.weight";
    const size_t dot = n.find('.', 7);
    const std::string i = n.substr(7, dot - 7), leaf = n.substr(dot + 1);
    const std::map<std::string, std::string> m = {
        {"norm1.weight", "layer.0.layer_norm.weight"},
        {"attn.q.weight", "layer.0.SelfAttention.q.weight"},
        {"attn.k.weight", "layer.0.SelfAttention.k.weight"},
        {"attn.v.weight", "layer.0.SelfAttention.v.weight"},
        {"attn.o.weight", "layer.0.SelfAttention.o.weight"},
        {"pos_embedding.embedding.weight", "layer.0.SelfAttention.relative_attention_bias.weight"},
        {"norm2.weight", "layer.1.layer_norm.weight"},
        {"ffn.gate.0.weight", "layer.1.DenseReluDense.wi_0.weight"},
        {"ffn.fc1.weight", "layer.1.DenseReluDense.wi_1.weight"},
        {"ffn.fc2.weight", "layer.1.DenseReluDense.wo.weight"}};
    return "encoder.block." + i + "." + m.at(leaf);
}

// The tiny upstream T5 in Hugging Face names (as umt5_xxl_fp16.safetensors), tokenizer inside.
void write_hf_t5(const std::string& path) {
    const TensorStore up = TensorStore::open(tiny(wan::io::CheckpointDir::kT5Name));
    wan::io::NamedTensors hf;
    for (auto& [n, t] : all_tensors(up)) hf.emplace_back(hf_name(n), t);
    std::ifstream sp(tiny(wan::io::CheckpointDir::kTokenizerName), std::ios::binary);
    const std::string spm((std::istreambuf_iterator<char>(sp)), std::istreambuf_iterator<char>());
    hf.emplace_back("spiece_model", at::from_blob(const_cast<char*>(spm.data()), {static_cast<int64_t>(spm.size())},
                                                  at::kByte).clone());
    wan::io::save_safetensors(path, hf);
}

TEST(ComponentFiles, HuggingFaceT5WithEmbeddedTokenizerEqualsUpstream) {
    const std::string dir = wan::test::make_temp_dir("t5_hf");
    write_hf_t5(dir + "/umt5.safetensors");

    wan::ComponentPaths files;
    files.t5 = dir + "/umt5.safetensors";
    const auto m = ModelComponents::locate(wan::test::tiny_ckpt_dir(), files);
    EXPECT_TRUE(m.tokenizer_path.empty());  // the one inside the T5 file
    EXPECT_HAS(m.tokenizer_source(), "spiece_model in");
    wan::text::TextEncoder got(m);
    wan::text::TextEncoder want(wan::io::CheckpointDir::locate(wan::test::tiny_ckpt_dir()));
    const std::vector<std::string> prompts = {"a cat walks on the grass", wan::text::kDefaultNegativePrompt};
    const auto a = got.encode(prompts), b = want.encode(prompts);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_EQ(a[i].sizes(), b[i].sizes());
        EXPECT_EQ(max_abs_diff(a[i], b[i]), 0.0) << "prompt " << i;
    }
    const auto report = wan::io::inspect_file(files.t5);
    EXPECT_EQ(report.kind, wan::io::ComponentKind::UMT5Encoder);
    EXPECT_EQ(report.naming, "Hugging Face UMT5");
    EXPECT_TRUE(report.has_tokenizer);
}

// ---- VAE --------------------------------------------------------------------------------------------------

TEST(ComponentFiles, SafetensorsVaeEqualsPth) {
    const std::string dir = wan::test::make_temp_dir("vae_st");
    const TensorStore pth = TensorStore::open(tiny(wan::io::CheckpointDir::kVaeName));
    wan::io::save_safetensors(dir + "/wan_2.1_vae.safetensors", all_tensors(pth));
    wan::vae::VAEOptions opt;
    opt.load_encoder = false;
    const wan::vae::WanVAE got(wan::io::open_vae_file(dir + "/wan_2.1_vae.safetensors"), opt);
    const wan::vae::WanVAE want(pth, opt);
    auto gen = at::detail::createCPUGenerator(3);
    const at::Tensor z = at::randn({16, 2, 4, 4}, gen);
    EXPECT_EQ(max_abs_diff(got.decode(z), want.decode(z)), 0.0);
}

// ---- the whole pipeline ----------------------------------------------------------------------------------

// Only single files (no folder: bf16 DiT with a prefix, HF T5 with its tokenizer, safetensors VAE) against the
// upstream folder layout holding the same values: the same final latent and video.
TEST(ComponentFiles, PipelineFromSingleFilesEqualsUpstreamFolder) {
    const std::string files_dir = wan::test::make_temp_dir("pipe_files");
    const std::string folder = wan::test::make_temp_dir("pipe_folder");
    write_bf16_dit(files_dir + "/dit.safetensors", folder + "/" + wan::io::CheckpointDir::kDitName);
    write_hf_t5(files_dir + "/umt5.safetensors");
    wan::io::save_safetensors(files_dir + "/vae.safetensors",
                              all_tensors(TensorStore::open(tiny(wan::io::CheckpointDir::kVaeName))));
    // The upstream layout: the same DiT values (bf16, written above), the tiny folder's other files.
    for (const char* f : {wan::io::CheckpointDir::kConfigName, wan::io::CheckpointDir::kT5Name,
                          wan::io::CheckpointDir::kVaeName, "google"}) {
        ASSERT_EQ(std::system(("cp -r '" + tiny(f) + "' '" + folder + "/'").c_str()), 0);
    }

    const wan::GenerationRequest r = wan::test::small_request();
    auto run = [&](const std::string& ckpt_dir, const wan::ComponentPaths& components) {
        wan::pipeline::EngineConfig cfg;
        cfg.ckpt_dir = ckpt_dir;
        cfg.components = components;
        cfg.device = "cpu";
        wan::pipeline::T2VPipeline pipe(cfg);
        return pipe.generate(r);
    };
    wan::ComponentPaths files;
    files.dit = files_dir + "/dit.safetensors";
    files.dit_config = tiny(wan::io::CheckpointDir::kConfigName);
    files.t5 = files_dir + "/umt5.safetensors";
    files.vae = files_dir + "/vae.safetensors";
    const auto got = run("", files);
    const auto want = run(folder, {});
    EXPECT_EQ(max_abs_diff(got.latent, want.latent), 0.0);
    EXPECT_EQ(max_abs_diff(got.video, want.video), 0.0);
}

// ---- bad files --------------------------------------------------------------------------------------------

TEST(ComponentFiles, FilesOfOtherModelsAreNamed) {
    const std::string dir = wan::test::make_temp_dir("bad");
    const TensorStore dit = TensorStore::open(tiny(wan::io::CheckpointDir::kDitName));
    auto i2v = all_tensors(dit);
    i2v.emplace_back("img_emb.proj.1.weight", at::zeros({4, 4}));
    wan::io::save_safetensors(dir + "/i2v.safetensors", i2v);
    EXPECT_HAS(error_of([&] { wan::io::open_dit_file(dir + "/i2v.safetensors"); }), "image-to-video");

    wan::io::save_safetensors(dir + "/vae22.safetensors",
                              {{"conv2.weight", at::zeros({48, 48, 1, 1, 1})},
                               {"decoder.conv1.weight", at::zeros({384, 48, 3, 3, 3})}});
    const std::string vae22 = error_of([&] { wan::io::open_vae_file(dir + "/vae22.safetensors"); });
    EXPECT_HAS(vae22, "Wan2.2 VAE");
    EXPECT_HAS(vae22, "vae22.safetensors");

    wan::io::save_safetensors(dir + "/clip.safetensors", {{"visual.conv1.weight", at::zeros({4, 3, 2, 2})}});
    EXPECT_HAS(error_of([&] { wan::io::open_dit_file(dir + "/clip.safetensors"); }), "CLIP");

    const std::string t5_as_dit = error_of([&] { wan::io::open_dit_file(tiny(wan::io::CheckpointDir::kT5Name)); });
    EXPECT_HAS(t5_as_dit, "UMT5");
    EXPECT_HAS(t5_as_dit, "--t5");

    // A quantisation other than fp8 · scale is refused, naming the layer and its format.
    std::vector<RawTensor> nv;
    for (const auto& [n, t] : all_tensors(dit)) nv.push_back(raw_of(n, t));
    const std::string q = R"({"format": "nvfp4"})";
    nv.push_back({"blocks.0.ffn.0.comfy_quant", "U8", {static_cast<int64_t>(q.size())}, q});
    write_raw_safetensors(dir + "/nvfp4.safetensors", nv);
    const std::string nvfp4 = error_of([&] { wan::io::open_dit_file(dir + "/nvfp4.safetensors"); });
    EXPECT_HAS(nvfp4, "nvfp4");
    EXPECT_HAS(nvfp4, "blocks.0.ffn.0");

    // Without the folder, every missing part is listed with the option that gives it.
    wan::ComponentPaths only_dit;
    only_dit.dit = tiny(wan::io::CheckpointDir::kDitName);
    const std::string missing = error_of([&] { ModelComponents::locate("", only_dit); });
    EXPECT_HAS(missing, "--t5");
    EXPECT_HAS(missing, "--vae");

    // A head dim other than 128 cannot be inferred: the message says what to pass.
    wan::io::save_safetensors(dir + "/odd.safetensors", {{"head.modulation", at::zeros({1, 2, 96})}});
    EXPECT_HAS(error_of([&] { wan::io::infer_dit_config(TensorStore::open(dir + "/odd.safetensors"), "odd"); }),
               "--dit-config");

    // The plain store never hands out fp8 bytes as numbers.
    std::vector<RawTensor> f8 = {{"w", "F8_E4M3", {2}, std::string("\x38\xb8", 2)}};
    write_raw_safetensors(dir + "/f8.safetensors", f8);
    const TensorStore st = TensorStore::open(dir + "/f8.safetensors");
    EXPECT_EQ(st.info("w").dtype, at::kByte);
    EXPECT_EQ(max_abs_diff(st.load("w", c10::Device(c10::kCPU), at::kFloat), at::tensor({1.0f, -1.0f})), 0.0);
}

}  // namespace
