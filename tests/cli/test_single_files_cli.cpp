// `wanstudio --prompt` with every component given as its own file (--dit with ComfyUI's prefix in bf16,
// --dit-config, --t5, --vae as safetensors, --tokenizer) gives the same final latent (--save-latents) as the
// upstream folder holding the same values; --offload-dit and --max-vram (blocks streamed from host memory,
// which on the CPU are clones) give the same latent as resident weights. Wan2.2 A14B's experts as two files
// (--dit-high / --dit-low) give the two-expert folder's latent, and per-expert LoRAs (--lora-high / --lora-low)
// are recorded in the sidecar with their expert.
// Origin of the inputs: tests/data/golden/tiny-ckpt and tests/data/wan22/tiny-ckpt (the upstream folder layouts,
// see their READMEs), tests/data/accel (LoRA files); the single files are written here from them. The binary
// comes from $WANSTUDIO (set by CMake).
#include "golden.h"

#include "io/io.h"

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <dirent.h>
#include <sys/wait.h>
#include <fstream>
#include <sstream>

namespace {

using wan::io::TensorStore;

std::string tiny(const std::string& file) { return wan::test::tiny_ckpt_dir() + "/" + file; }

std::string read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

wan::io::NamedTensors all_tensors(const TensorStore& store, const std::string& prefix, at::ScalarType dtype) {
    wan::io::NamedTensors out;
    for (const auto& n : store.names()) out.emplace_back(prefix + n, store.load(n, c10::Device(c10::kCPU), dtype));
    return out;
}

// Runs one short job (videos into dir/videos, or `videos` when given); returns its final latent.
at::Tensor latent_of(const std::string& args, const std::string& dir, const std::string& tag,
                     const std::string& videos = "") {
    const char* bin = std::getenv("WANSTUDIO");
    EXPECT_TRUE(bin && *bin) << "WANSTUDIO is not set";
    const std::string latents = dir + "/" + tag + ".safetensors", log = dir + "/" + tag + ".log";
    const std::string cmd = std::string("'") + (bin ? bin : "wanstudio") +
                            "' --prompt 'a red fox running through snow' --device cpu --size 32*32 --frame-num 5"
                            " --sample-steps 2 --base-seed 7 --output-dir '" + (videos.empty() ? dir + "/videos" : videos) +
                            "' --save-latents '" +
                            latents + "' " + args + " >'" + log + "' 2>&1";
    const int status = std::system(cmd.c_str());
    EXPECT_EQ(status, 0) << cmd << "\n" << read_all(log);
    if (status != 0) return at::Tensor();
    return TensorStore::open(latents).load("latent", c10::Device(c10::kCPU), at::kFloat);
}

TEST(SingleFilesCli, ComponentFilesGiveTheFolderLatent) {
    const std::string dir = wan::test::make_temp_dir("cli_files");
    // The folder: the tiny checkpoint with its DiT rounded to bf16 (the values the bf16 single file holds).
    const std::string folder = dir + "/folder";
    ASSERT_EQ(std::system(("mkdir -p '" + folder + "' && cp -r '" + tiny("config.json") + "' '" +
                           tiny("models_t5_umt5-xxl-enc-bf16.pth") + "' '" + tiny("Wan2.1_VAE.pth") + "' '" +
                           tiny("google") + "' '" + folder + "/'").c_str()),
              0);
    const TensorStore dit = TensorStore::open(tiny("diffusion_pytorch_model.safetensors"));
    wan::io::save_safetensors(folder + "/diffusion_pytorch_model.safetensors", all_tensors(dit, "", at::kBFloat16));
    // The single files, as ComfyUI users have them.
    wan::io::save_safetensors(dir + "/wan_tiny_bf16.safetensors",
                              all_tensors(dit, "model.diffusion_model.", at::kBFloat16));
    wan::io::save_safetensors(dir + "/wan_vae.safetensors",
                              all_tensors(TensorStore::open(tiny("Wan2.1_VAE.pth")), "", at::kFloat));
    const std::string files = "--dit '" + dir + "/wan_tiny_bf16.safetensors' --dit-config '" + tiny("config.json") +
                              "' --t5 '" + tiny("models_t5_umt5-xxl-enc-bf16.pth") + "' --vae '" + dir +
                              "/wan_vae.safetensors' --tokenizer '" + tiny("google/umt5-xxl/spiece.model") + "'";

    const at::Tensor want = latent_of("--ckpt-dir '" + folder + "'", dir, "folder");
    ASSERT_TRUE(want.defined());
    const at::Tensor got = latent_of(files, dir, "files");
    ASSERT_TRUE(got.defined());
    EXPECT_TRUE(at::equal(got, want));
    // Underscore spellings and one override next to --ckpt-dir.
    const at::Tensor mixed =
        latent_of("--ckpt_dir '" + folder + "' --vae='" + dir + "/wan_vae.safetensors'", dir, "mixed");
    ASSERT_TRUE(mixed.defined());
    EXPECT_TRUE(at::equal(mixed, want));

    // Streamed DiT blocks: all of them, and as many as a tiny budget keeps resident (none here).
    const at::Tensor offload = latent_of("--ckpt-dir '" + folder + "' --offload-dit", dir, "offload");
    ASSERT_TRUE(offload.defined());
    EXPECT_TRUE(at::equal(offload, want));
    const at::Tensor budget = latent_of(files + " --max-vram 0.001", dir, "max_vram");
    ASSERT_TRUE(budget.defined());
    EXPECT_TRUE(at::equal(budget, want));
}

std::string wan22(const std::string& file) { return wan::test::test_data_dir() + "/wan22/tiny-ckpt/" + file; }

/// The one JSON sidecar in `dir`.
nlohmann::json sidecar_in(const std::string& dir) {
    std::vector<std::string> found;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            const std::string n = e->d_name;
            if (n.size() > 5 && n.compare(n.size() - 5, 5, ".json") == 0) found.push_back(dir + "/" + n);
        }
        ::closedir(d);
    }
    EXPECT_EQ(found.size(), 1u) << "sidecars in " << dir;
    return found.empty() ? nlohmann::json() : nlohmann::json::parse(read_all(found.front()));
}

TEST(SingleFilesCli, ExpertFilesGiveTheTwoExpertFolderLatent) {
    const std::string dir = wan::test::make_temp_dir("cli_expert_files");
    // ComfyUI's form: one prefixed file per expert (float32: the folder's values exactly).
    for (const char* expert : {"high", "low"}) {
        const TensorStore dit = TensorStore::open(wan22(std::string(expert) + "_noise_model/diffusion_pytorch_model.safetensors"));
        wan::io::save_safetensors(dir + "/wan2.2_t2v_" + expert + "_noise_tiny.safetensors",
                                  all_tensors(dit, "model.diffusion_model.", at::kFloat));
    }
    const std::string files = "--dit-high '" + dir + "/wan2.2_t2v_high_noise_tiny.safetensors' --dit-low '" + dir +
                              "/wan2.2_t2v_low_noise_tiny.safetensors' --dit-config '" + wan22("low_noise_model/config.json") +
                              "' --t5 '" + wan22("models_t5_umt5-xxl-enc-bf16.pth") + "' --vae '" + wan22("Wan2.1_VAE.pth") +
                              "' --tokenizer '" + wan22("google/umt5-xxl/spiece.model") + "'";
    const at::Tensor want = latent_of("--ckpt-dir '" + wan22("") + "'", dir, "folder");
    ASSERT_TRUE(want.defined());
    const at::Tensor got = latent_of(files, dir, "files");
    ASSERT_TRUE(got.defined());
    EXPECT_TRUE(at::equal(got, want));

    // Per-expert LoRAs: the sidecar lists each with its expert, after the LoRA of both.
    const std::string accel = wan::test::test_data_dir() + "/accel/";
    const at::Tensor lora = latent_of(files + " --lora '" + accel + "lora_diffusers.safetensors:0.5' --lora-high '" +
                                          accel + "lora_native.safetensors' --lora-low '" + accel +
                                          "lora_kohya.safetensors:0.7'",
                                      dir, "loras", dir + "/lora_videos");
    ASSERT_TRUE(lora.defined());
    EXPECT_FALSE(at::equal(lora, want));
    const nlohmann::json j = sidecar_in(dir + "/lora_videos");
    ASSERT_TRUE(j.contains("lora_files")) << j.dump(2);
    const nlohmann::json& f = j.at("lora_files");
    ASSERT_EQ(f.size(), 3u) << f.dump(2);
    EXPECT_EQ(f[0].at("file_name"), "lora_diffusers.safetensors");
    EXPECT_FALSE(f[0].contains("expert"));
    EXPECT_EQ(f[1].at("file_name"), "lora_native.safetensors");
    EXPECT_EQ(f[1].at("expert"), "high");
    EXPECT_EQ(f[2].at("file_name"), "lora_kohya.safetensors");
    EXPECT_EQ(f[2].at("expert"), "low");
    EXPECT_EQ(f[2].at("strength"), 0.7);
    EXPECT_EQ(j.at("loras_high").at(0).at("path"), accel + "lora_native.safetensors");
    EXPECT_EQ(j.at("loras_low").at(0).at("strength"), 0.7);
}

TEST(SingleFilesCli, ExpertFileErrorsExitBeforeLoading) {
    const char* bin = std::getenv("WANSTUDIO");
    ASSERT_TRUE(bin && *bin);
    const std::string dir = wan::test::make_temp_dir("cli_expert_errors");
    auto run = [&](const std::string& args, const std::string& tag) {
        const std::string log = dir + "/" + tag + ".log";
        const int status = std::system(("'" + std::string(bin) + "' --prompt x --device cpu " + args + " >'" + log + "' 2>&1").c_str());
        return std::make_pair(WEXITSTATUS(status), read_all(log));
    };
    const auto one = run("--dit-high /nowhere/high.safetensors", "one");
    EXPECT_EQ(one.first, 2) << one.second;
    EXPECT_NE(one.second.find("--dit-high was given without --dit-low"), std::string::npos) << one.second;
    // A one-DiT model refuses per-expert LoRAs before any step.
    const auto lora = run("--lora-high '" + wan::test::test_data_dir() + "/accel/lora_native.safetensors'", "lora");
    EXPECT_NE(lora.first, 0) << lora.second;
    EXPECT_NE(lora.second.find("per-expert LoRAs need a two-expert model"), std::string::npos) << lora.second;
}

}  // namespace
