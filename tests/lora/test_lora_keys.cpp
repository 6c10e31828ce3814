// LoRA key styles → upstream parameter names (KeyMapper), the LoraSpec / preset parsing, and SHA-256.
#include "core/lora_spec.h"
#include "dit/dit.h"
#include "lora/lora.h"

#include "error_of.h"
#include "golden.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

namespace {

using wan::test::error_of;
std::vector<std::string> tiny_parameter_names() {
    const auto config = wan::io::WanConfig::from_json_file(wan::test::tiny_ckpt_dir() + "/config.json");
    std::vector<std::string> names;
    for (const auto& s : wan::dit::expected_parameter_shapes(config)) names.push_back(s.name);
    return names;
}

struct Case {
    const char* key;
    const char* target;
    wan::lora::KeyPart part;
    const char* style;
};

TEST(LoraKeys, EveryStyleMapsToUpstreamNames) {
    using P = wan::lora::KeyPart;
    const wan::lora::KeyMapper mapper(tiny_parameter_names());
    const Case cases[] = {
        // native / ComfyUI, three prefixes, both part spellings, alpha
        {"diffusion_model.blocks.0.self_attn.q.lora_A.weight", "blocks.0.self_attn.q.weight", P::Down, "native"},
        {"model.diffusion_model.blocks.1.cross_attn.o.lora_B.weight", "blocks.1.cross_attn.o.weight", P::Up, "native"},
        {"blocks.1.ffn.2.lora_down.weight", "blocks.1.ffn.2.weight", P::Down, "native"},
        {"blocks.0.ffn.0.lora_up.weight", "blocks.0.ffn.0.weight", P::Up, "native"},
        {"diffusion_model.blocks.0.self_attn.k.alpha", "blocks.0.self_attn.k.weight", P::Alpha, "native"},
        {"diffusion_model.head.head.lora_A.weight", "head.head.weight", P::Down, "native"},
        {"diffusion_model.time_projection.1.lora_B.weight", "time_projection.1.weight", P::Up, "native"},
        // full deltas
        {"diffusion_model.blocks.0.norm3.diff", "blocks.0.norm3.weight", P::Diff, "native"},
        {"diffusion_model.blocks.1.self_attn.norm_q.diff", "blocks.1.self_attn.norm_q.weight", P::Diff, "native"},
        {"diffusion_model.blocks.0.ffn.0.diff_b", "blocks.0.ffn.0.bias", P::DiffBias, "native"},
        {"diffusion_model.blocks.1.diff_m", "blocks.1.modulation", P::DiffModulation, "native"},
        {"diffusion_model.patch_embedding.diff", "patch_embedding.weight", P::Diff, "native"},
        // kohya / musubi, VideoX-Fun's double underscore
        {"lora_unet_blocks_0_self_attn_q.lora_down.weight", "blocks.0.self_attn.q.weight", P::Down, "kohya"},
        {"lora_unet_blocks_1_ffn_2.lora_up.weight", "blocks.1.ffn.2.weight", P::Up, "kohya"},
        {"lora_unet_blocks_1_cross_attn_v.alpha", "blocks.1.cross_attn.v.weight", P::Alpha, "kohya"},
        {"lora_unet__blocks_0_cross_attn_k.lora_down.weight", "blocks.0.cross_attn.k.weight", P::Down, "kohya"},
        {"lora_unet_text_embedding_0.lora_up.weight", "text_embedding.0.weight", P::Up, "kohya"},
        {"lora_unet_head_head.lora_up.weight", "head.head.weight", P::Up, "kohya"},
        // diffusers / PEFT
        {"transformer.blocks.0.attn1.to_q.lora_A.weight", "blocks.0.self_attn.q.weight", P::Down, "diffusers"},
        {"transformer.blocks.0.attn1.to_out.0.lora_B.weight", "blocks.0.self_attn.o.weight", P::Up, "diffusers"},
        {"transformer.blocks.1.attn2.to_k.lora_A.default.weight", "blocks.1.cross_attn.k.weight", P::Down, "diffusers"},
        {"base_model.model.blocks.1.attn2.to_v.lora_B.default.weight", "blocks.1.cross_attn.v.weight", P::Up, "diffusers"},
        {"transformer.blocks.0.ffn.net.0.proj.lora_A.weight", "blocks.0.ffn.0.weight", P::Down, "diffusers"},
        {"transformer.blocks.0.ffn.net.2.lora_B.weight", "blocks.0.ffn.2.weight", P::Up, "diffusers"},
        {"transformer.proj_out.lora_A.weight", "head.head.weight", P::Down, "diffusers"},
        {"transformer.condition_embedder.time_embedder.linear_1.lora_A.weight", "time_embedding.0.weight", P::Down, "diffusers"},
        {"transformer.condition_embedder.time_embedder.linear_2.lora_B.weight", "time_embedding.2.weight", P::Up, "diffusers"},
        {"transformer.condition_embedder.time_proj.lora_A.weight", "time_projection.1.weight", P::Down, "diffusers"},
        {"transformer.condition_embedder.text_embedder.linear_1.lora_A.weight", "text_embedding.0.weight", P::Down, "diffusers"},
        {"transformer.condition_embedder.text_embedder.linear_2.lora_B.weight", "text_embedding.2.weight", P::Up, "diffusers"},
        {"transformer.blocks.1.norm2.diff_b", "blocks.1.norm3.bias", P::DiffBias, "diffusers"},
        {"transformer.blocks.0.attn1.norm_q.diff", "blocks.0.self_attn.norm_q.weight", P::Diff, "diffusers"},
        {"blocks.0.attn2.to_q.lora_A.weight", "blocks.0.cross_attn.q.weight", P::Down, "diffusers"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.key);
        const wan::lora::MappedKey m = mapper.map(c.key, "f.safetensors");
        EXPECT_FALSE(m.image_to_video);
        EXPECT_EQ(m.target, c.target);
        EXPECT_EQ(m.part, c.part);
        EXPECT_EQ(m.style, c.style);
    }
}

TEST(LoraKeys, ImageToVideoKeysAreFlagged) {
    const wan::lora::KeyMapper mapper(tiny_parameter_names());
    for (const char* key : {"diffusion_model.blocks.0.cross_attn.k_img.lora_A.weight",
                            "diffusion_model.blocks.0.cross_attn.v_img.alpha",
                            "blocks.3.cross_attn.norm_k_img.diff", "diffusion_model.img_emb.proj.1.lora_B.weight",
                            "lora_unet_blocks_0_cross_attn_k_img.lora_down.weight",
                            "transformer.blocks.0.attn2.add_k_proj.lora_A.weight",
                            "transformer.blocks.0.attn2.norm_added_k.diff",
                            "transformer.condition_embedder.image_embedder.ff.net.0.proj.lora_A.weight"}) {
        SCOPED_TRACE(key);
        EXPECT_TRUE(mapper.map(key, "f.safetensors").image_to_video);
    }
}

TEST(LoraKeys, UnknownKeysNameFileAndKey) {
    const wan::lora::KeyMapper mapper(tiny_parameter_names());
    for (const char* key : {"lora_unet_blocks_0_self_attn_zz.lora_down.weight", "diffusion_model.blocks.7.self_attn.q.lora_A.weight",
                            "transformer.blocks.0.attn3.to_q.lora_A.weight", "diffusion_model.blocks.0.norm1.diff"}) {
        const std::string msg = error_of([&] { mapper.map(key, "/x/my.safetensors"); });
        EXPECT_NE(msg.find("LoRA file '/x/my.safetensors': key '" + std::string(key) + "' matches no module"),
                  std::string::npos)
            << msg;
    }
    const std::string msg = error_of([&] { mapper.map("diffusion_model.blocks.0.self_attn.q.hada_w1_a", "a.safetensors"); });
    EXPECT_NE(msg.find("LoRA file 'a.safetensors': key 'diffusion_model.blocks.0.self_attn.q.hada_w1_a' is not a LoRA tensor"),
              std::string::npos)
        << msg;
}

TEST(LoraSpec, ParseAndFormat) {
    EXPECT_EQ(wan::parse_lora_spec("a.safetensors"), (wan::LoraSpec{"a.safetensors", 1.0}));
    EXPECT_EQ(wan::parse_lora_spec("/d/a.safetensors:0.8"), (wan::LoraSpec{"/d/a.safetensors", 0.8}));
    EXPECT_EQ(wan::parse_lora_spec("a.safetensors:-1.5"), (wan::LoraSpec{"a.safetensors", -1.5}));
    EXPECT_EQ(wan::parse_lora_spec("C:\\loras\\a.safetensors"), (wan::LoraSpec{"C:\\loras\\a.safetensors", 1.0}));
    EXPECT_EQ(wan::parse_lora_spec("C:\\loras\\a.safetensors:2"), (wan::LoraSpec{"C:\\loras\\a.safetensors", 2.0}));
    EXPECT_EQ(wan::parse_lora_spec("dir:v2/a.safetensors"), (wan::LoraSpec{"dir:v2/a.safetensors", 1.0}));
    EXPECT_EQ(wan::parse_lora_spec("a:inf"), (wan::LoraSpec{"a:inf", 1.0}));
    EXPECT_NE(error_of([] { wan::parse_lora_spec(":0.5"); }).find("--lora ':0.5': expected PATH[:STRENGTH]"), std::string::npos);
    for (const wan::LoraSpec& s : {wan::LoraSpec{"/a/b.safetensors", 0.1}, wan::LoraSpec{"x", -0.75}, wan::LoraSpec{"y", 1.0 / 3}})
        EXPECT_EQ(wan::parse_lora_spec(wan::format_lora_spec(s)), s);
    EXPECT_EQ(wan::format_lora_spec({"a.safetensors", 0.8}), "a.safetensors:0.8");
}

TEST(Sha256, KnownVectors) {
    // FIPS 180-4 examples and the one-million-'a' vector.
    EXPECT_EQ(wan::lora::sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(wan::lora::sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    EXPECT_EQ(wan::lora::sha256_hex(two_blocks.data(), two_blocks.size()),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const std::string million(1000000, 'a');
    EXPECT_EQ(wan::lora::sha256_hex(million.data(), million.size()),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    // A file larger than the 1 MiB read buffer, not a multiple of the block size.
    const std::string path = wan::test::make_temp_dir("sha") + "/a.bin";
    std::string data(3 * (1 << 20) + 77, '\0');
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131) ^ (i >> 9));
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(data.data(), 1, data.size(), f);
    std::fclose(f);
    EXPECT_EQ(wan::lora::sha256_file(path), wan::lora::sha256_hex(data.data(), data.size()));
    // The accel files, against sha256sum.
    EXPECT_EQ(wan::lora::sha256_file(wan::test::test_data_dir() + "/accel/lora_native.safetensors"),
              "7f7990d76608504f6c6c4539ba1470b19296ca01e761b94f66f33d8e3bfaa0a5");
    EXPECT_NE(error_of([] { wan::lora::sha256_file("/nonexistent/x.safetensors"); }).find("'/nonexistent/x.safetensors'"),
              std::string::npos);
    EXPECT_NE(error_of([] { wan::lora::sha256_file_cached("/nonexistent/x.safetensors"); }).find("'/nonexistent/x.safetensors'"),
              std::string::npos);
    // An empty file (nothing to map).
    const std::string empty = wan::test::make_temp_dir("sha") + "/empty.bin";
    std::fclose(std::fopen(empty.c_str(), "wb"));
    EXPECT_EQ(wan::lora::sha256_file(empty), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    std::printf("SHA-256 by %s\n", wan::lora::sha256_implementation());
}

}  // namespace
